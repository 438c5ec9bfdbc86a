# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The placement ledger on a storage node, and the host lock every changing module holds.

The ledger is a small JSON file, replicated on every storage node, that records where each managed volume
lives (``{"generation": N, "volumes": {name: {"host", "pool_id", "status"}}, "written_by", "written_at"}``).
The LV tags stay the truth for a node's own volumes; the ledger is how the plan knows that a volume exists on a
node that does not answer (see docs/design.md, "Placement ledger"). It is written atomically (temp file, fsync,
rename, fsync of the directory) so a crash leaves either the old or the new file.

The host lock is ``flock`` on ``/run/ember-blockstore/lock``, taken by a module for the duration of its batch
(reads included), so two runs never interleave their changes on one host; the holder writes who it is into the
file so that a waiting run can say who holds it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from contextlib import contextmanager

from ansible_collections.ember.blockstore.plugins.module_utils._files import write_atomic

__all__ = ["LEDGER_PATH", "LOCK_PATH", "LEDGER_FORMAT", "LedgerError", "LockTimeout", "empty_ledger",
           "validate_ledger", "read_ledger", "write_ledger", "host_lock", "same_content"]

LEDGER_PATH = "/var/lib/ember-blockstore/ledger.json"
LOCK_PATH = "/run/ember-blockstore/lock"
LEDGER_FORMAT = 1
STATUSES = ("creating", "available", "deleting")


class LedgerError(ValueError):
    """The ledger file or a ledger value is not what this version writes."""


class LockTimeout(Exception):
    """Another run held the host lock for longer than the timeout."""


def empty_ledger():
    return {"format": LEDGER_FORMAT, "generation": 0, "volumes": {}, "written_by": None, "written_at": None}


def validate_ledger(data, where="ledger"):
    """Check the shape of a ledger dict; return a normalised copy. Raises :class:`LedgerError`."""
    if not isinstance(data, dict):
        raise LedgerError("%s: expected a JSON object, got %s" % (where, type(data).__name__))
    if data.get("format", LEDGER_FORMAT) != LEDGER_FORMAT:
        raise LedgerError("%s: format %r is not %d (written by a newer ember.blockstore?)"
                          % (where, data.get("format"), LEDGER_FORMAT))
    generation = data.get("generation", 0)
    if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
        raise LedgerError("%s.generation: %r is not a non-negative integer" % (where, generation))
    volumes = data.get("volumes") or {}
    if not isinstance(volumes, dict):
        raise LedgerError("%s.volumes: expected an object of volume name -> placement" % where)
    clean = {}
    for name, entry in volumes.items():
        field = "%s.volumes.%s" % (where, name)
        if not isinstance(entry, dict):
            raise LedgerError("%s: expected an object with host, pool_id and status" % field)
        for key in ("host", "pool_id"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise LedgerError("%s.%s: %r is not a non-empty string" % (field, key, entry.get(key)))
        if entry.get("status") not in STATUSES:
            raise LedgerError("%s.status: %r is not one of %s" % (field, entry.get("status"), ", ".join(STATUSES)))
        clean[str(name)] = {"host": entry["host"], "pool_id": entry["pool_id"], "status": entry["status"]}
    return {"format": LEDGER_FORMAT, "generation": generation, "volumes": clean,
            "written_by": data.get("written_by"), "written_at": data.get("written_at")}


def same_content(one, other):
    """Whether two ledgers record the same placements (generation and writer aside)."""
    return (one or {}).get("volumes", {}) == (other or {}).get("volumes", {})


def read_ledger(path=LEDGER_PATH):
    """The ledger at ``path`` (an empty one, generation 0, when the file does not exist).
    Raises :class:`LedgerError` naming the file when it cannot be read or parsed."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return empty_ledger()
        raise LedgerError("%s: cannot read: %s" % (path, exc)) from None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise LedgerError("%s: not valid JSON (%s); restore it from another storage node's copy" % (path, exc)) \
            from None
    return validate_ledger(data, path)


def write_ledger(ledger, path=LEDGER_PATH):
    """Write ``ledger`` atomically (:func:`_files.write_atomic`), mode 0644 (placements are not secret)."""
    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
    write_atomic(path, json.dumps(ledger, indent=1, sort_keys=True) + "\n", 0o644)


def _holder(handle):
    try:
        handle.seek(0)
        return handle.read().strip() or "unknown holder"
    except OSError:
        return "unknown holder"


@contextmanager
def host_lock(what, timeout=1800, path=LOCK_PATH, poll=1.0):
    """Hold the host lock while the block runs. ``what`` says who takes it (module name and item count).
    Waits up to ``timeout`` seconds for another holder, then raises :class:`LockTimeout` naming that holder."""
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    handle = os.fdopen(fd, "r+")
    deadline = time.monotonic() + max(0, timeout)
    try:
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockTimeout("another ember.blockstore run holds the lock on %s (%s); waited %d s. "
                                      "Let it finish, or raise lock_timeout"
                                      % (socket.gethostname(), _holder(handle), timeout)) from None
                time.sleep(poll)
        handle.seek(0)
        handle.truncate()
        handle.write("%s, pid %d, since %s\n" % (what, os.getpid(), time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                  time.gmtime())))
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the flock

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NFS driver: volumes are raw files on NFS shares the storage node mounts (issue 14), after Cinder's NFS driver
(``cinder/volume/drivers/nfs.py``, ``remotefs.py``).

Layout of a share (the directory the storage node mounts at ``<mount_point_base>/<hash of the share>``):

- ``volume-<name>``: the volume's data, a raw file (a consumer attaches it with a loop device); sparse or fully
  allocated as the backend's ``sparse`` says (Cinder's ``nfs_sparsed_volumes``);
- ``volume-<name>.info``: its sidecar, JSON written atomically (temp file, fsync, rename): the mark that makes the
  file the project's and the volume's state (name, size, type, description, metadata, creation time, status, source,
  snapshots), the equivalent of an LV's tags. A ``volume-<name>`` file without its sidecar is never touched;
- ``volume-<name>.snap-<snapshot>``: a snapshot, a sparse copy of the volume (``cp --reflink=auto
  --sparse=always``: instant and sharing blocks where the server's filesystem has reflink), recorded in the
  volume's sidecar;
- ``.volume-<name>.tmp`` and ``.volume-<name>.snap-<snapshot>.tmp``: data being written; renamed into place only
  when complete, so a ``volume-*`` file is always whole. A failure removes the temp file (and a sidecar the
  operation created), and the error names the share and its free bytes;
- ``.bktmp-<name>+<backup>``: the backup module's temporary copy of an attached volume (:func:`backup_copy_file`),
  read by the backup and removed after it (a copy left by a run that died is removed by the next backup of the
  volume, or by its delete). ``+`` is in no volume or backup name, and the name does not start with ``volume-``,
  so it is never another file of the layout nor a file without a sidecar (a clash) for ``backend_info``.

The sidecar's ``status`` is ``creating``, ``available`` or ``deleting``, or, while the backup module reads the
volume or writes a backup onto it, Cinder's ``backing-up`` or ``restoring-backup`` (the volume module refuses to
extend or delete it then); its ``restored`` (``<volume>+<backup>``) names the backup last restored onto the volume.

So that these names never collide, a volume on an NFS backend may not be named ``<x>.info`` or contain ``.snap-``
(:func:`validate_nfs_volume_name`).

Every command runs through :class:`_runner.Runner`. Only the two that can hang on a server that does not answer
are bounded: ``mount`` (:data:`MOUNT_TIMEOUT`) and the ``stat -f`` probe of a mount point (:data:`PROBE_TIMEOUT`),
both under ``timeout --kill-after``; a share is probed before it is read or written, so an unreachable server fails
the module within those bounds, naming the share. Mounts are found in ``/proc/self/mountinfo`` (no name lookup);
capacity comes from ``statvfs`` of the mount point.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import time

from ansible_collections.ember.blockstore.plugins.module_utils._argspec import canonical_share
from ansible_collections.ember.blockstore.plugins.module_utils._files import write_atomic
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    LV_PREFIX,
    NameError_,
    is_volume_name,
    show_value,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils._size import MIB, format_size

__all__ = ["NfsError", "Nfs", "NfsShare", "ShareState", "mount_point", "volume_file", "info_file", "snapshot_file",
           "temp_file", "validate_nfs_volume_name", "parse_mountinfo", "read_mountinfo", "find_mount", "statvfs",
           "capacity", "read_share", "parse_info", "MOUNTINFO", "PROBE_TIMEOUT", "MOUNT_TIMEOUT", "SIZE_STEP",
           "INFO_MARK", "STATUSES", "BUSY_STATUSES", "BACKUP_COPY_PREFIX", "backup_copy_file"]

MOUNTINFO = "/proc/self/mountinfo"
# Seconds a probe (stat -f of a mount point) and a mount may take; then SIGTERM, and SIGKILL KILL_AFTER later (an
# NFS client waits for a hard-mounted server in a killable sleep).
PROBE_TIMEOUT = 15
MOUNT_TIMEOUT = 60
KILL_AFTER = 5
# Volume files are whole MiB (a loop device needs whole 512-byte sectors; MiB keeps sizes round and the dd fallback
# in whole blocks); backend_info reports it as the pool's extent size, so the plan rounds as the driver does.
SIZE_STEP = MIB
INFO_SUFFIX = ".info"
SNAP_INFIX = ".snap-"
TMP_SUFFIX = ".tmp"
BACKUP_COPY_PREFIX = ".bktmp-"
# The sidecar's mark: {"ember.blockstore": "nfs-volume", "version": 1, ...}.
MARK_KEY = "ember.blockstore"
INFO_MARK = "nfs-volume"
INFO_VERSION = 1
# Cinder's statuses of a volume the backup module reads (backing-up) or writes a backup onto (restoring-backup).
BUSY_STATUSES = ("backing-up", "restoring-backup")
STATUSES = ("creating", "available", "deleting") + BUSY_STATUSES
SNAPSHOT_STATUSES = ("creating", "available")
NFS_FSTYPES = ("nfs", "nfs4")
MAX_INFO_BYTES = 1024 * 1024
FILE_MODE = 0o600
# What fallocate(1) prints when the filesystem (an NFS server without NFS 4.2 ALLOCATE) cannot preallocate.
_NOT_SUPPORTED = ("not supported", "operation not supported", "eopnotsupp")
_NO_SPACE = ("no space left", "enospc", "quota exceeded")
_TIMED_OUT = (124, 137)
_ESCAPE = re.compile(r"\\([0-7]{3})")


class NfsError(RuntimeError):
    """A share that cannot be used (not mounted, unreachable, full) or an operation on it that failed; the message
    names the share. ``context()`` carries the failed command's, when there was one (for ``fail_json``)."""

    def __init__(self, msg, share=None, command=None):
        super().__init__(msg)
        self.share = share
        self.command = command

    def context(self):
        return self.command.context() if self.command is not None else {}


def mount_point(share, base):
    """Where ``share`` (canonical ``server:/export``) is mounted: ``<base>/<hash>``, the first 32 hex digits of the
    share's SHA-256 (as Cinder's ``_get_mount_point_for_share`` puts an md5 of the share under its
    ``nfs_mount_point_base``): stable, and free of the characters a share may hold."""
    return os.path.join(base, hashlib.sha256(share.encode("utf-8")).hexdigest()[:32])


def volume_file(name):
    """``volume-<name>``: the volume's data file."""
    return LV_PREFIX + name


def info_file(name):
    """``volume-<name>.info``: the volume's sidecar."""
    return volume_file(name) + INFO_SUFFIX


def snapshot_file(volume, snapshot):
    """``volume-<volume>.snap-<snapshot>``: a snapshot's data file."""
    return volume_file(volume) + SNAP_INFIX + snapshot


def temp_file(final):
    """``.<final>.tmp``: the temp file data is written to before it is renamed to ``final`` (hidden, and never a
    ``volume-`` name)."""
    return "." + final + TMP_SUFFIX


def backup_copy_file(volume, backup):
    """``.bktmp-<volume>+<backup>``: the backup module's temporary copy of an attached volume."""
    return "%s%s+%s" % (BACKUP_COPY_PREFIX, volume, backup)


def validate_nfs_volume_name(name, field="name"):
    """A volume name that can live on an NFS share: a volume name (:func:`_naming.validate_volume_name`) that does
    not end in ``.info`` or contain ``.snap-`` (its file would be another volume's sidecar or snapshot)."""
    validate_volume_name(name, field)
    if name.endswith(INFO_SUFFIX) or SNAP_INFIX in name:
        raise NameError_("%s: %r cannot be the name of a volume on an nfs backend: its file %s would be read as %s; "
                         "choose a name that does not end in '.info' or contain '.snap-'"
                         % (field, name, volume_file(name),
                            "a sidecar" if name.endswith(INFO_SUFFIX) else "a snapshot of another volume"))
    return name


# --- mounts ----------------------------------------------------------------------------------------------------------

def _unescape(text):
    """mountinfo writes space, tab, newline and backslash in paths as octal escapes (``\\040``)."""
    return _ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), text)


def parse_mountinfo(text):
    """``[{"mount_point", "fstype", "source", "options"}]`` of ``/proc/self/mountinfo`` (proc(5)): fields 5 (mount
    point) and, after the ``-`` separator, the filesystem type and the mount source."""
    mounts = []
    for line in (text or "").splitlines():
        fields = line.split(" ")
        if "-" not in fields[6:]:
            continue
        sep = fields.index("-", 6)
        if len(fields) < sep + 3 or len(fields) < 5:
            continue
        mounts.append({"mount_point": _unescape(fields[4]), "fstype": fields[sep + 1],
                       "source": _unescape(fields[sep + 2]), "options": fields[5]})
    return mounts


def read_mountinfo(path=None):
    with open(path or MOUNTINFO) as handle:
        return parse_mountinfo(handle.read())


def find_mount(mounts, path):
    """The mount on ``path`` (the last one: a later mount hides an earlier one there), or None."""
    found = None
    for mount in mounts:
        if mount["mount_point"] == path:
            found = mount
    return found


def _same_share(source, share):
    try:
        return canonical_share(source) == share
    except (NameError_, ValueError):
        return False


# --- capacity and state ---------------------------------------------------------------------------------------------

def statvfs(path):
    """``os.statvfs`` (a module attribute, so the tests give a share's numbers)."""
    return os.statvfs(path)


def capacity(path):
    """``{"total_bytes", "free_bytes"}`` of the filesystem at ``path``: blocks and blocks available to an
    unprivileged user (root on an NFS client is squashed on the server), times the fragment size, as ``stat -f``
    gives Cinder's ``_get_capacity_info``."""
    st = statvfs(path)
    return {"total_bytes": st.f_frsize * st.f_blocks, "free_bytes": st.f_frsize * st.f_bavail}


class InfoError(ValueError):
    """A sidecar that cannot be read or is not the project's."""


def _int(value, field, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InfoError("%s: %s is not an integer >= %d" % (field, show_value(value), minimum))
    return value


def _text(value, field):
    if value is not None and not isinstance(value, str):
        raise InfoError("%s: %s is not a string" % (field, show_value(value)))
    return value


def parse_info(text, name):
    """The persisted record of volume ``name``'s sidecar (JSON). Raises :class:`InfoError` for one that is not
    JSON, is not marked as the project's, names another volume or holds a field of the wrong kind."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InfoError("not JSON (%s)" % exc) from None
    if not isinstance(data, dict) or data.get(MARK_KEY) != INFO_MARK:
        raise InfoError("no %r: %r mark" % (MARK_KEY, INFO_MARK))
    if data.get("name") != name:
        raise InfoError("it names volume %s, not %s" % (show_value(data.get("name")), name))
    if data.get("status") not in STATUSES:
        raise InfoError("status: %s is not one of %s" % (show_value(data.get("status")), ", ".join(STATUSES)))
    _int(data.get("size_bytes"), "size_bytes")
    _int(data.get("created_at", 0), "created_at")
    _int(data.get("sequence", 0), "sequence")
    for key in ("volume_type", "backend", "description", "reverting", "restored"):
        _text(data.get(key), key)
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in metadata.items()):
        raise InfoError("metadata: not a dict of strings")
    source = data.get("source")
    if source is not None and (not isinstance(source, dict) or not isinstance(source.get("volume"), str)
                               or not isinstance(source.get("snapshot") or "", str)):
        raise InfoError("source: %s is not {volume, snapshot}" % show_value(source))
    snapshots = data.get("snapshots") or {}
    if not isinstance(snapshots, dict):
        raise InfoError("snapshots: not a dict")
    for snap, entry in snapshots.items():
        where = "snapshots.%s" % snap
        if not isinstance(snap, str) or not is_volume_name(snap) or not isinstance(entry, dict):
            raise InfoError("%s: not a snapshot name with a dict" % where)
        if entry.get("status") not in SNAPSHOT_STATUSES:
            raise InfoError("%s.status: %s is not one of %s" % (where, show_value(entry.get("status")),
                                                                ", ".join(SNAPSHOT_STATUSES)))
        _int(entry.get("volume_size_bytes"), where + ".volume_size_bytes")
        _int(entry.get("created_at", 0), where + ".created_at")
        _int(entry.get("sequence", 0), where + ".sequence")
        _text(entry.get("description"), where + ".description")
        if not isinstance(entry.get("reverted", False), bool):
            raise InfoError("%s.reverted: not a boolean" % where)
    record = {"name": name, "size_bytes": data["size_bytes"], "volume_type": data.get("volume_type"),
              "backend": data.get("backend"), "description": data.get("description"), "metadata": dict(metadata),
              "created_at": data.get("created_at", 0), "status": data["status"],
              "source": None if source is None else {"volume": source["volume"],
                                                     "snapshot": source.get("snapshot") or None},
              "snapshots": {snap: {"volume_size_bytes": entry["volume_size_bytes"],
                                   "created_at": entry.get("created_at", 0), "sequence": entry.get("sequence", 0),
                                   "description": entry.get("description"), "reverted": entry.get("reverted", False),
                                   "status": entry["status"]}
                            for snap, entry in sorted(snapshots.items())},
              "reverting": data.get("reverting"), "sequence": data.get("sequence", 0),
              "restored": data.get("restored")}
    return record


def render_info(record):
    """The sidecar text of ``record`` (its persisted keys only), with the mark, keys sorted."""
    data = {MARK_KEY: INFO_MARK, "version": INFO_VERSION}
    for key in ("name", "size_bytes", "volume_type", "backend", "description", "metadata", "created_at", "status",
                "source", "reverting", "sequence", "restored"):
        data[key] = record.get(key)
    data["metadata"] = dict(record.get("metadata") or {})
    data["snapshots"] = {snap: {key: entry.get(key) for key in ("volume_size_bytes", "created_at", "sequence",
                                                                "description", "reverted", "status")}
                         for snap, entry in sorted((record.get("snapshots") or {}).items())}
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


def new_record(name, size_bytes, volume_type=None, backend=None, description=None, metadata=None, source=None,
               status="creating"):
    return {"name": name, "size_bytes": size_bytes, "volume_type": volume_type, "backend": backend,
            "description": description, "metadata": dict(metadata or {}), "created_at": int(time.time()),
            "status": status, "source": dict(source) if source else None, "snapshots": {}, "reverting": None,
            "sequence": 0, "restored": None}


def _stat(path):
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return {"size_bytes": st.st_size, "allocated_bytes": st.st_blocks * 512}


class ShareState:
    """What one mounted share holds (:func:`read_share`).

    ``volumes``: ``{name: record}``, each the sidecar's record plus ``path`` (the data file), ``file``
    (``{"size_bytes", "allocated_bytes"}`` of the data file, or None when it is missing) and, per snapshot,
    ``path`` and ``file``. ``broken``: ``{name: why}`` of sidecars that cannot be read (their volume is unknown,
    never absent). ``foreign``: ``{name: path}`` of ``volume-<name>`` files without a sidecar (not the project's:
    never touched). ``temps``: leftover temp files. ``files``: every name in the directory."""

    def __init__(self, share, path, volumes, broken, foreign, temps, files):
        self.share = share
        self.mount_point = path
        self.volumes = volumes
        self.broken = broken
        self.foreign = foreign
        self.temps = temps
        self.files = files

    @classmethod
    def empty(cls, share, path):
        """A share not mounted yet (check mode predicts it as empty)."""
        return cls(share, path, {}, {}, {}, [], set())

    def provisioned_bytes(self):
        """Sum of the apparent sizes of the volume and snapshot files (what they may take when fully written)."""
        return sum((r["file"] or {}).get("size_bytes", 0) + sum((s["file"] or {}).get("size_bytes", 0)
                                                                for s in r["snapshots"].values())
                   for r in self.volumes.values())

    def allocated_bytes(self):
        """Sum of the blocks the volume and snapshot files hold (``st_blocks * 512``)."""
        return sum((r["file"] or {}).get("allocated_bytes", 0) + sum((s["file"] or {}).get("allocated_bytes", 0)
                                                                     for s in r["snapshots"].values())
                   for r in self.volumes.values())


def read_share(share, path):
    """:class:`ShareState` of the share mounted at ``path`` (one directory listing, the sidecars, one ``stat`` per
    data file). Sidecars larger than 1 MiB are not read (broken)."""
    files = set(os.listdir(path))
    volumes, broken, foreign = {}, {}, {}
    for entry in sorted(files):
        if not (entry.startswith(LV_PREFIX) and entry.endswith(INFO_SUFFIX)):
            continue
        name = entry[len(LV_PREFIX):-len(INFO_SUFFIX)]
        if not is_volume_name(name):
            continue
        full = os.path.join(path, entry)
        try:
            if os.path.getsize(full) > MAX_INFO_BYTES:
                raise InfoError("larger than %d bytes" % MAX_INFO_BYTES)
            with open(full) as handle:
                record = parse_info(handle.read(), name)
        except (OSError, UnicodeDecodeError, InfoError) as exc:
            broken[name] = "sidecar %s on share %s cannot be read: %s" % (full, share, exc)
            continue
        record["path"] = os.path.join(path, volume_file(name))
        record["file"] = _stat(record["path"])
        for snap, entry_ in record["snapshots"].items():
            entry_["path"] = os.path.join(path, snapshot_file(name, snap))
            entry_["file"] = _stat(entry_["path"])
        volumes[name] = record
    for entry in sorted(files):
        if not entry.startswith(LV_PREFIX) or entry.endswith(INFO_SUFFIX) or SNAP_INFIX in entry:
            continue
        name = entry[len(LV_PREFIX):]
        if is_volume_name(name) and name not in volumes and name not in broken:
            foreign[name] = os.path.join(path, entry)
    temps = sorted(e for e in files if e.startswith("." + LV_PREFIX) and e.endswith(TMP_SUFFIX))
    return ShareState(share, path, volumes, broken, foreign, temps, files)


def _text_of(exc):
    if isinstance(exc, CommandError):
        return (exc.err or exc.out or "").strip() or str(exc)
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


def _no_space(exc):
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return any(marker in _text_of(exc).lower() for marker in _NO_SPACE)


class Nfs:
    """Mounts and probes shares through a :class:`_runner.Runner`."""

    def __init__(self, runner):
        self.runner = runner

    def _bounded(self, seconds, args):
        return ["timeout", "--kill-after=%d" % KILL_AFTER, str(seconds)] + list(args)

    def mounted(self, share, path):
        """Whether ``share`` is mounted at ``path`` (``/proc/self/mountinfo``). Something else mounted there (another
        share, another filesystem) raises :class:`NfsError`."""
        mount = find_mount(read_mountinfo(), path)
        if mount is None:
            return False
        if mount["fstype"] not in NFS_FSTYPES or not _same_share(mount["source"], share):
            raise NfsError("share %s: its mount point %s holds %s (%s), not the share; unmount it or set another "
                           "mount_point_base" % (share, path, mount["source"], mount["fstype"]), share)
        return True

    def probe(self, share, path):
        """``stat -f`` of the mount point within :data:`PROBE_TIMEOUT` seconds: a server that does not answer (a
        hard mount waits for it) fails here, naming the share, instead of hanging the module."""
        rc, _out, err = self.runner.run(self._bounded(PROBE_TIMEOUT, ["stat", "--file-system", "--format=%T", path]),
                                        check=False)
        if rc in _TIMED_OUT:
            raise NfsError("share %s (mounted at %s) does not answer within %d s: the NFS server is unreachable or "
                           "hung; nothing was read or changed there" % (share, path, PROBE_TIMEOUT), share)
        if rc != 0:
            raise NfsError("share %s (mounted at %s) cannot be read: %s" % (share, path, (err or "").strip()), share)

    def mount(self, share, path, options):
        """``mount -t nfs -o <options> <share> <path>`` within :data:`MOUNT_TIMEOUT` seconds (the mount point is
        created first), then checked in ``/proc/self/mountinfo``."""
        os.makedirs(path, mode=0o755, exist_ok=True)
        args = self._bounded(MOUNT_TIMEOUT, ["mount", "-t", "nfs", "-o", ",".join(options), share, path])
        rc, out, err = self.runner.run(args, check=False)
        if rc in _TIMED_OUT:
            raise NfsError("share %s: mount did not finish within %d s: the NFS server is unreachable or does not "
                           "answer" % (share, MOUNT_TIMEOUT), share, CommandError(args, rc, out, err))
        if rc != 0:
            hint = ""
            if "helper program" in (err or "") or "unknown filesystem type" in (err or ""):
                hint = " (is the NFS client installed? Debian: nfs-common)"
            raise NfsError("share %s: mount at %s failed: %s%s" % (share, path, (err or out or "").strip(), hint),
                           share, CommandError(args, rc, out, err))
        if not self.mounted(share, path):
            raise NfsError("share %s: mount reported success but %s is not in %s" % (share, path, MOUNTINFO), share)

    def unmount(self, share, path):
        """``umount <path>`` within :data:`MOUNT_TIMEOUT` seconds (a server that does not answer can block an unmount
        too); nothing when ``share`` is not mounted there."""
        if not self.mounted(share, path):
            return
        args = self._bounded(MOUNT_TIMEOUT, ["umount", path])
        rc, out, err = self.runner.run(args, check=False)
        if rc in _TIMED_OUT:
            raise NfsError("share %s: umount of %s did not finish within %d s: the NFS server does not answer; "
                           "umount -f -l %s when it is gone for good" % (share, path, MOUNT_TIMEOUT, path), share,
                           CommandError(args, rc, out, err))
        if rc != 0:
            raise NfsError("share %s: umount of %s failed: %s" % (share, path, (err or out or "").strip()), share,
                           CommandError(args, rc, out, err))

    def ensure_mounted(self, share, path, options, check_mode=False):
        """Mount ``share`` at ``path`` unless it is; probe it. Returns ``"mounted"`` (it was), ``"mount"`` (mounted
        now) or, in check mode, ``"would mount"`` (nothing done)."""
        if self.mounted(share, path):
            self.probe(share, path)
            return "mounted"
        if check_mode:
            return "would mount"
        self.mount(share, path, options)
        self.probe(share, path)
        return "mount"


class NfsShare:
    """The volume operations on one mounted share (``nfs``: :class:`Nfs`). Each writes data to a temp file and
    renames it into place when complete; a failure removes the temp file (and a sidecar it created) and raises
    :class:`NfsError` naming the share and its free bytes."""

    def __init__(self, nfs, share, path):
        self.nfs = nfs
        self.runner = nfs.runner
        self.share = share
        self.path = path

    # --- helpers ---

    def _p(self, name):
        return os.path.join(self.path, name)

    def free_bytes(self):
        try:
            return capacity(self.path)["free_bytes"]
        except OSError:
            return None

    def _error(self, what, exc, after="nothing partial was left behind"):
        free = self.free_bytes()
        room = "free space unknown" if free is None else "%d bytes (%s) free" % (free, format_size(free))
        reason = "no space left" if _no_space(exc) else _text_of(exc)
        return NfsError("%s on share %s failed: %s; the share has %s; %s"
                        % (what, self.share, reason, room, after), self.share,
                        exc if isinstance(exc, CommandError) else None)

    def _finish(self, what, record, after="its data is complete; the next run records it"):
        """The sidecar of a volume once its data is done; a failure here leaves the sidecar as it was (the next
        run finishes it) and is reported naming the share."""
        try:
            self.write_info(record)
        except OSError as exc:
            raise self._error("recording %s" % what, exc, after) from None

    def _remove(self, name):
        try:
            os.unlink(self._p(name))
        except FileNotFoundError:
            pass

    def _sync_dir(self):
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _new_file(self, name):
        self._remove(name)
        os.close(os.open(self._p(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))

    def write_info(self, record):
        """The sidecar of ``record["name"]``, atomically (temp file, fsync, rename, fsync of the directory)."""
        write_atomic(self._p(info_file(record["name"])), render_info(record), FILE_MODE)

    def _allocate(self, path, offset, length):
        """Allocate ``length`` bytes at ``offset`` of ``path`` (growing it): ``fallocate``; where the share cannot
        (an NFS server without 4.2 ALLOCATE) zeros are written with ``dd``, exactly ``length`` bytes. Returns
        ``"fallocate"`` or ``"dd"``."""
        if length <= 0:
            return None
        args = ["fallocate", "--offset", str(offset), "--length", str(length), path]
        rc, out, err = self.runner.run(args, check=False)
        if rc == 0:
            return "fallocate"
        if not any(marker in (err or "").lower() for marker in _NOT_SUPPORTED):
            raise CommandError(args, rc, out, err)
        self.runner.run(["dd", "if=/dev/zero", "of=%s" % path, "bs=1M", "seek=%d" % offset, "count=%d" % length,
                         "oflag=seek_bytes", "iflag=count_bytes", "conv=notrunc,fsync", "status=none"])
        return "dd"

    def _grow(self, path, old_size, size, sparse):
        """Grow ``path`` from ``old_size`` to ``size``: ``truncate`` (sparse) or :meth:`_allocate` of the tail.
        Returns the allocation method (``"sparse"``, ``"fallocate"``, ``"dd"``) or None when nothing grew."""
        if size <= old_size:
            return None
        if sparse:
            self.runner.run(["truncate", "--size", str(size), path])
            return "sparse"
        return self._allocate(path, old_size, size - old_size)

    def _check_room(self, what, size, sparse):
        """A preallocated file needs its size free on the share before it starts."""
        if sparse:
            return
        free = self.free_bytes()
        if free is not None and free < size:
            raise NfsError("%s on share %s needs %d bytes (%s) allocated; the share has %d bytes (%s) free; nothing "
                           "was written" % (what, self.share, size, format_size(size), free, format_size(free)),
                           self.share)

    # --- volumes ---

    def create_volume(self, record, sparse):
        """Create the volume of ``record`` (its ``size_bytes``): the sidecar with status ``creating`` first (it
        claims the name), then ``.volume-<name>.tmp`` made with ``truncate`` (sparse) or allocated
        (:meth:`_allocate`), renamed to ``volume-<name>``, then the sidecar ``available``. Returns the allocation
        method."""
        size = record["size_bytes"]

        def fill(tmp):
            self._new_file(tmp)
            return self._grow(self._p(tmp), 0, size, sparse) or "sparse"
        return self._create(record, "creating volume %s (%s)" % (record["name"], format_size(size)), sparse, fill)

    def _create(self, record, what, sparse, fill):
        """The steps every new volume file takes: refused when ``volume-<name>`` exists, the room checked, the
        sidecar ``creating``, ``fill(temp file name)`` (returns the allocation method), the temp file renamed into
        place, the sidecar ``available``; any failure removes the temp file and the sidecar."""
        name, size = record["name"], record["size_bytes"]
        final, tmp = volume_file(name), temp_file(volume_file(name))
        if os.path.lexists(self._p(final)):
            raise NfsError("volume %s on share %s: %s exists already; it is never overwritten"
                           % (name, self.share, self._p(final)), self.share)
        self._check_room(what, size, sparse)
        record["status"] = "creating"
        try:
            self.write_info(record)
            method = fill(tmp)
            os.rename(self._p(tmp), self._p(final))
            self._sync_dir()
        except (CommandError, OSError) as exc:
            self._remove(tmp)
            self._remove(info_file(name))
            raise self._error(what, exc) from None
        record["status"] = "available"
        self._finish("volume %s" % name, record)
        return method

    def copy_volume(self, record, source_path, source_size, sparse):
        """Create the volume of ``record`` from the data file ``source_path`` (a clone of a volume, or a volume from
        a snapshot): sidecar ``creating``, ``cp --reflink=auto --sparse=always`` (``--sparse=never`` on a backend
        that preallocates, so the copy holds all its blocks) to the temp file, its tail grown to ``size_bytes``,
        renamed into place, sidecar ``available``. Returns the allocation method of the tail (or of the copy)."""
        name, size = record["name"], record["size_bytes"]

        def fill(tmp):
            self._remove(tmp)
            self.runner.run(["cp", "--reflink=auto", "--sparse=%s" % ("always" if sparse else "never"), source_path,
                             self._p(tmp)])
            os.chmod(self._p(tmp), FILE_MODE)
            return self._grow(self._p(tmp), source_size, size, sparse) or ("sparse" if sparse else "copy")
        return self._create(record, "copying %s to volume %s (%s)" % (os.path.basename(source_path), name,
                                                                      format_size(size)), sparse, fill)

    def extend_volume(self, record, old_size, size, sparse):
        """Grow the volume's file from ``old_size`` to ``size`` (never shrink): ``truncate`` (sparse) or the tail
        allocated. A failure puts the file back to ``old_size``. The sidecar gets the new size. Returns the
        allocation method."""
        name = record["name"]
        path = self._p(volume_file(name))
        what = "extending volume %s from %s to %s" % (name, format_size(old_size), format_size(size))
        if size <= old_size:
            raise NfsError("volume %s on share %s: %d bytes is not more than its %d bytes; volumes are never shrunk"
                           % (name, self.share, size, old_size), self.share)
        self._check_room(what, size - old_size, sparse)
        try:
            method = self._grow(path, old_size, size, sparse)
        except (CommandError, OSError) as exc:
            try:
                if os.path.getsize(path) > old_size:
                    os.truncate(path, old_size)
            except OSError:
                pass
            raise self._error(what, exc) from None
        record["size_bytes"] = size
        self._finish("the new size of volume %s" % name, record)
        return method

    def delete_volume(self, record):
        """Delete the volume: sidecar ``deleting`` (a run interrupted here is finished by the next), its snapshot
        files, its data file and leftover temp files (a backup's temporary copy too), then the sidecar."""
        name = record["name"]
        record["status"] = "deleting"
        try:
            self.write_info(record)
            for snap in sorted(record.get("snapshots") or {}):
                self._remove(snapshot_file(name, snap))
                self._remove(temp_file(snapshot_file(name, snap)))
            self._remove(volume_file(name))
            self._remove(temp_file(volume_file(name)))
            for copy in self.backup_copies(name):
                self._remove(copy)
            self._remove(info_file(name))
            self._sync_dir()
        except OSError as exc:
            raise self._error("deleting volume %s" % name, exc, "run again to finish the delete") from None

    # --- snapshots ---

    def create_snapshot(self, record, snapshot, description=None):
        """Snapshot ``snapshot`` of the volume: recorded ``creating`` in the sidecar, ``cp --reflink=auto
        --sparse=always`` of the data file to ``.volume-<name>.snap-<snapshot>.tmp``, renamed to
        ``volume-<name>.snap-<snapshot>``, recorded ``available`` with the volume's size and the time. A failure
        removes the temp file and the record."""
        name = record["name"]
        final = snapshot_file(name, snapshot)
        tmp = temp_file(final)
        what = "snapshot %s of volume %s" % (snapshot, name)
        size = (_stat(self._p(volume_file(name))) or {}).get("size_bytes", record["size_bytes"])
        record["sequence"] = max([record.get("sequence") or 0]
                                 + [s.get("sequence") or 0 for s in record["snapshots"].values()]) + 1
        record["snapshots"][snapshot] = {"volume_size_bytes": size, "created_at": int(time.time()),
                                         "sequence": record["sequence"], "description": description,
                                         "reverted": False, "status": "creating"}
        try:
            self.write_info(record)
            self._remove(tmp)
            self._remove(final)
            self.runner.run(["cp", "--reflink=auto", "--sparse=always", self._p(volume_file(name)), self._p(tmp)])
            os.chmod(self._p(tmp), FILE_MODE)
            os.rename(self._p(tmp), self._p(final))
            self._sync_dir()
        except (CommandError, OSError) as exc:
            self._remove(tmp)
            record["snapshots"].pop(snapshot, None)
            try:
                self.write_info(record)
            except OSError:
                pass
            raise self._error(what, exc) from None
        record["snapshots"][snapshot]["status"] = "available"
        self._finish(what, record)

    def delete_snapshot(self, record, snapshot):
        """Remove the snapshot's file (and a leftover temp file), then its record."""
        try:
            self._remove(snapshot_file(record["name"], snapshot))
            self._remove(temp_file(snapshot_file(record["name"], snapshot)))
        except OSError as exc:
            raise self._error("deleting snapshot %s of volume %s" % (snapshot, record["name"]), exc) from None
        record["snapshots"].pop(snapshot, None)
        self._finish("the deletion of snapshot %s of volume %s" % (snapshot, record["name"]), record,
                     "its file is gone; run again to finish the delete")

    def revert_volume(self, record, snapshot, sparse):
        """Revert the volume to ``snapshot``: the sidecar records ``reverting`` (an interrupted revert is finished
        by the next run), the snapshot is copied to ``.volume-<name>.tmp`` and renamed over ``volume-<name>``
        (the volume has the old or the new content, never a mix), then the snapshot is marked ``reverted`` (the
        others not) and the marker removed. The snapshot stays."""
        name = record["name"]
        tmp, final = temp_file(volume_file(name)), volume_file(name)
        what = "reverting volume %s to snapshot %s" % (name, snapshot)
        record["reverting"] = snapshot
        try:
            self.write_info(record)
            self._remove(tmp)
            self.runner.run(["cp", "--reflink=auto", "--sparse=%s" % ("always" if sparse else "never"),
                             self._p(snapshot_file(name, snapshot)), self._p(tmp)])
            os.chmod(self._p(tmp), FILE_MODE)
            os.rename(self._p(tmp), self._p(final))
            self._sync_dir()
        except (CommandError, OSError) as exc:
            self._remove(tmp)
            record["reverting"] = None
            try:
                self.write_info(record)
            except OSError:
                pass
            raise self._error(what, exc) from None
        record["reverting"] = None
        record["size_bytes"] = record["snapshots"][snapshot]["volume_size_bytes"]
        for snap, entry in record["snapshots"].items():
            entry["reverted"] = snap == snapshot
        self._finish(what, record)

    # --- backups (the backup module) ---

    def backup_copies(self, volume):
        """The names of the backup module's temporary copies of ``volume`` on the share (``.bktmp-<volume>+*``:
        one exists only while a backup runs, or after a run that died)."""
        prefix = BACKUP_COPY_PREFIX + volume + "+"
        return sorted(entry for entry in os.listdir(self.path) if entry.startswith(prefix))

    def copy_for_backup(self, volume, backup):
        """A temporary sparse copy of the volume's file for the backup ``backup`` of an attached volume (``cp
        --reflink=auto --sparse=always``, instant where the server's filesystem has reflink): crash-consistent, as
        a snapshot of an attached NFS volume. Returns its path; the caller removes it
        (:meth:`remove_backup_copy`). A failure removes it and raises :class:`NfsError` naming the share and its
        free bytes."""
        copy = backup_copy_file(volume, backup)
        try:
            self._remove(copy)
            self.runner.run(["cp", "--reflink=auto", "--sparse=always", self._p(volume_file(volume)), self._p(copy)])
            os.chmod(self._p(copy), FILE_MODE)
        except (CommandError, OSError) as exc:
            self._remove(copy)
            raise self._error("a temporary copy of volume %s for backup %s" % (volume, backup), exc) from None
        return self._p(copy)

    def remove_backup_copy(self, name):
        """Remove a temporary copy (a name :meth:`backup_copies` lists); one already gone is no error."""
        try:
            self._remove(name)
        except OSError as exc:
            raise self._error("removing the temporary copy %s" % name, exc,
                              "the next backup of the volume removes it") from None

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generic volume migration between storage nodes (the ``migration`` module), after Cinder's
``_migrate_volume_generic`` (cinder/volume/manager.py): create the destination volume, copy the data over iSCSI
(Cinder's ``copy_volume_data`` attaches both ends and runs ``volume_utils.copy_volume``), then switch the
volume's identity to the destination and delete the source.

Steps, each one idempotent and each run on one node (the ``blockstore`` role's ``migrate.yml`` orders them across
the two nodes; docs/design.md, "Migration", has the recovery table):

``target`` (destination)
    ``lvcreate`` of ``migrate-<name>`` (the volume's size) tagged ``ember.blockstore``,
    ``ember.migrating=<name>`` and ``ember.migration_source=<source pool id>``; never ``ember.volume=<name>``, so
    the planner does not see the volume on two pools.
``export`` (source)
    a live-only tgt target ``<prefix>migrate-<name>`` with LUN 1 on the source LV, read-only (tgt's ``readonly``
    LU parameter), an ACL of exactly the destination's storage address and a CHAP account of its own with a fresh
    random secret (returned, never logged: ``no_log``). Made again from scratch on every run (tgt cannot show a
    secret back).
``copy`` (destination)
    open-iscsi login (the node record carries the secret, ``node.startup manual``), reading 4 MiB blocks with
    O_DIRECT from the LUN and writing them with O_DIRECT to the destination LV (on a thin destination a block of
    zeros is not written: the thin LV reads as zeros there already), the SHA-256 of what was read; logout, node
    record deleted; the digest is recorded on the LV (``ember.migration_sha256=<hex>``).
``verify`` (source)
    the SHA-256 of the source LV over the same bytes; a mismatch fails (the destination stays a migration target,
    the source untouched).
``switch_destination`` (destination)
    only a copy whose recorded digest is the verified one: renamed ``volume-<name>`` and retagged as the volume
    (``ember.volume=<name>``, its type, backend, description and metadata, ``ember.migrated_from=<source pool>``).
``switch_source`` (source)
    the temporary target removed (and, with ``force``, the volume's own export), the LV retagged
    ``ember.migrated=<destination pool>`` without ``ember.volume=`` and renamed ``migrated-<name>``.
``cleanup`` (source) / ``rollback`` (destination)
    the switched-away source, or an unfinished destination copy, wiped as its backend's ``volume_clear`` says
    (thin LVs are not: the pool zeroes blocks before reuse) and removed.

The retag comes before the rename on both nodes, and :func:`migration_lvs` recognises an LV by its tags, so a crash
between the two commands leaves a state the next plan reads correctly.
"""

from __future__ import annotations

import errno
import hashlib
import mmap
import os

from ansible_collections.ember.blockstore.plugins.module_utils._metadata import description_tags, metadata_tags
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    BACKEND_TAG,
    MANAGED_TAG,
    TYPE_TAG,
    VOLUME_TAG,
    decode_tag_text,
    encode_tag_text,
    lv_name,
)

__all__ = [
    "BLOCK", "MIGRATED_FROM_TAG", "MIGRATED_LV_PREFIX", "MIGRATED_TAG", "MIGRATING_TAG", "MIGRATION_SHA_TAG",
    "MIGRATION_SOURCE_TAG", "STEPS", "TARGET_LV_PREFIX", "MigrationError", "device_path", "digest",
    "is_migration_lv", "migration_lvs", "stream_copy", "target_lv_name", "migrated_lv_name", "temp_target_iqn",
]

MIGRATING_TAG = "ember.migrating="
MIGRATION_SOURCE_TAG = "ember.migration_source="
MIGRATION_SHA_TAG = "ember.migration_sha256="
MIGRATED_TAG = "ember.migrated="
MIGRATED_FROM_TAG = "ember.migrated_from="
TARGET_LV_PREFIX = "migrate-"
MIGRATED_LV_PREFIX = "migrated-"
BLOCK = 4 * 1024 * 1024  # the copy's block (Cinder's copy_volume uses dd with bs=1M; 4 MiB halves the requests)
STEPS = ("target", "export", "copy", "verify", "switch_destination", "switch_source", "cleanup", "rollback")


class MigrationError(RuntimeError):
    """A step that cannot be done as asked; the message names the volume and what to do."""


def target_lv_name(name):
    return TARGET_LV_PREFIX + name


def migrated_lv_name(name):
    return MIGRATED_LV_PREFIX + name


def temp_target_iqn(prefix, name):
    """The temporary target of a migration's source: ``<prefix>migrate-<name>`` (never a volume's IQN, which is
    ``<prefix>volume-<name>``)."""
    return prefix + TARGET_LV_PREFIX + name


def device_path(vg, lv):
    """The device of an LV (the unit tests point it at files)."""
    return "/dev/%s/%s" % (vg, lv)


def _tag_value(tags, prefix):
    return next((t[len(prefix):] for t in tags if t.startswith(prefix)), None)


def is_migration_lv(lv):
    """Whether an LV is a migration's (a destination copy or a switched-away source): it carries
    ``ember.blockstore`` and ``ember.migrating=`` or ``ember.migrated=``. It is never a volume clash."""
    tags = lv.get("tags") or []
    return MANAGED_TAG in tags and any(t.startswith((MIGRATING_TAG, MIGRATED_TAG)) for t in tags)


def migration_lvs(lvm_state, vg, thin_pool=None):
    """The migration LVs of one backend (``backend_info``'s ``migration_lvs``), sorted by name: ``name`` (the
    volume), ``lv_name``, ``role`` (``target``: a destination copy, ``migrated``: a switched-away source),
    ``size_bytes``, ``source_pool_id`` and ``sha256`` (targets: the digest of a finished copy, else None),
    ``destination_pool_id`` (migrated)."""
    out = []
    for lv in lvm_state.lvs:
        if lv["vg"] != vg or not is_migration_lv(lv) or lv.get("managed"):
            continue  # a volume (both tags, its name) is a volume, whatever migration tags it still carries
        if (thin_pool is None) != (not lv["pool_lv"]) or (thin_pool is not None and lv["pool_lv"] != thin_pool):
            continue
        tags = lv["tags"]
        migrating = _tag_value(tags, MIGRATING_TAG)
        item = {"lv_name": lv["name"], "size_bytes": lv["size_bytes"], "path": lv.get("path")}
        if migrating is not None:
            source = _tag_value(tags, MIGRATION_SOURCE_TAG)
            item.update(name=migrating, role="target", sha256=_tag_value(tags, MIGRATION_SHA_TAG),
                        source_pool_id=None if source is None else decode_tag_text(source))
        else:
            dest = _tag_value(tags, MIGRATED_TAG)
            name = lv["name"][len(MIGRATED_LV_PREFIX):] if lv["name"].startswith(MIGRATED_LV_PREFIX) else (
                _tag_value(tags, VOLUME_TAG) or lv["name"][len(lv_name("")):])
            item.update(name=name, role="migrated", destination_pool_id=decode_tag_text(dest))
        out.append(item)
    return sorted(out, key=lambda item: (item["name"], item["lv_name"]))


def migrated_from(tags):
    """The source pool a volume LV records it was migrated from (``ember.migrated_from=``), or None."""
    value = _tag_value(tags or [], MIGRATED_FROM_TAG)
    return None if value is None else decode_tag_text(value)


def _open(path, flags, direct):
    """``os.open`` with O_DIRECT when asked and the file system takes it (block devices do; tmpfs refuses it with
    EINVAL, and then the file is opened without it)."""
    if direct and hasattr(os, "O_DIRECT"):
        try:
            return os.open(path, flags | os.O_DIRECT)
        except OSError as exc:
            if exc.errno != errno.EINVAL:
                raise
    return os.open(path, flags)


def _blocks(fd, size, block):
    """Read ``size`` bytes of ``fd`` in ``block``-sized pieces into one page-aligned buffer (O_DIRECT needs
    aligned memory); yields ``(offset, memoryview)``. A short read fails."""
    buf = mmap.mmap(-1, block)
    view = memoryview(buf)
    try:
        offset = 0
        while offset < size:
            count = min(block, size - offset)
            piece = view[:count]
            try:
                got = os.preadv(fd, [piece], offset)
                if got != count:
                    raise MigrationError("short read: %d of %d bytes at offset %d" % (got, count, offset))
                yield offset, piece
            finally:
                piece.release()
            offset += count
    finally:
        view.release()
        buf.close()


def digest(path, size, block=BLOCK, direct=True):
    """SHA-256 (hex) of the first ``size`` bytes of ``path``, read in ``block`` pieces with O_DIRECT."""
    sha = hashlib.sha256()
    fd = _open(path, os.O_RDONLY, direct)
    try:
        for _offset, data in _blocks(fd, size, block):
            sha.update(data)
    finally:
        os.close(fd)
    return sha.hexdigest()


def stream_copy(source, target, size, skip_zero=False, block=BLOCK, direct=True):
    """Copy the first ``size`` bytes of ``source`` onto ``target`` (both opened with O_DIRECT when they take it),
    ``block`` bytes at a time, and fsync ``target``. With ``skip_zero`` (a thin destination, which reads as
    zeros where nothing was written) a block of zeros is not written. Returns ``{"sha256": <hex of what was
    read>, "bytes": size, "written_bytes", "skipped_zero_bytes"}``."""
    sha = hashlib.sha256()
    zero = bytes(block)
    written = skipped = 0
    src = _open(source, os.O_RDONLY, direct)
    try:
        dst = _open(target, os.O_WRONLY, direct)
        try:
            for offset, data in _blocks(src, size, block):
                sha.update(data)
                if skip_zero and data == zero[:len(data)]:
                    skipped += len(data)
                    continue
                done = os.pwritev(dst, [data], offset)
                if done != len(data):
                    raise MigrationError("short write: %d of %d bytes at offset %d" % (done, len(data), offset))
                written += len(data)
            os.fsync(dst)
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return {"sha256": sha.hexdigest(), "bytes": size, "written_bytes": written, "skipped_zero_bytes": skipped}


def target_tags(name, source_pool_id):
    return [MANAGED_TAG, MIGRATING_TAG + name, MIGRATION_SOURCE_TAG + encode_tag_text(source_pool_id)]


def volume_tags(item):
    """The tags the destination LV ends with as the volume (what the volume module gives a volume, plus
    ``ember.migrated_from=<source pool>``)."""
    tags = [MANAGED_TAG, VOLUME_TAG + item["name"]]
    if item.get("volume_type"):
        tags.append(TYPE_TAG + item["volume_type"])
    if item.get("backend"):
        tags.append(BACKEND_TAG + item["backend"])
    tags += description_tags(item.get("description")) + metadata_tags(item.get("metadata") or {})
    tags.append(MIGRATED_FROM_TAG + encode_tag_text(item["source_pool_id"]))
    return tags

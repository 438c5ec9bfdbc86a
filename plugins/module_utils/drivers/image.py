# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disk images on a storage node: read them into volumes and write volumes out to them, with ``qemu-img``.

What Cinder does and what is kept (``cinder/image/image_utils.py``):

- ``fetch_to_raw`` / ``fetch_verify_image``: the image is fetched to a local file first, its format is read with
  ``qemu-img info`` (under ``prlimit``, Cinder's ``QEMU_IMG_LIMITS``: 1 GiB of address space, 30 s of CPU, since a
  crafted image can make ``qemu-img info`` run away), an image with a backing file is refused (it would read a
  file of the host), and the virtual size must fit the volume; then ``qemu-img convert -O raw`` writes the volume.
  Here only the formats ``raw`` and ``qcow2`` are taken (a qcow2 with an external data file is refused as a backing
  file is), and the convert writes into the existing volume (``-n``), sparse (``-S 4k``), with O_DIRECT on the
  volume (``-t none``; ``-T none`` when the image module reads a volume). ``--target-is-zero`` (qemu-img 5.0
  and later; Debian 12 ships 7.2) tells it that a new thin LV reads as zeros, so it writes no zeros at all.
- ``upload_volume``: the volume is converted to the image's format (``qemu-img convert -O qcow2``, ``-c`` to
  compress). Here it goes to a temporary name in the image store, is fsynced and renamed, with two sidecars:
  ``<image>.sha256`` (``sha256sum`` format) and ``<image>.json`` (:func:`image_record`).

Checksums are sha256 (Glance's ``os_hash_algo`` default) written ``sha256:<64 hex digits>``; a download is hashed
while it is written (:func:`download`).
"""

from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import re
import tempfile

from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, show_value
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError

__all__ = ["FORMATS", "STAGING_DIR", "DOWNLOAD_TIMEOUT", "ImageError", "validate_location", "validate_checksum",
           "validate_format", "parse_info", "QemuImg", "sha256_file", "sha256_device", "download", "image_record",
           "read_record", "write_image_files", "remove_image_files", "temp_image_path", "staged_path", "short_sha",
           "QEMU_IMG_LIMITS"]

FORMATS = ("raw", "qcow2")
# Where a storage node keeps images while it writes them into volumes: the role copies controller files here
# (``upload-<volume>``), the volume module downloads URLs here (``download-<volume>``); both are removed after.
STAGING_DIR = "/var/lib/ember-blockstore/images"
# Seconds one network operation of a download may take (connect, or one read): a server that stops sending fails
# the download instead of holding the host lock.
DOWNLOAD_TIMEOUT = 60
# Cinder's image_utils.QEMU_IMG_LIMITS (oslo.concurrency ProcessLimits): address space 1 GiB, CPU time 30 s.
QEMU_IMG_LIMITS = ["prlimit", "--as=1073741824", "--cpu=30"]
_CHUNK = 1024 * 1024
_SHA_RE = re.compile(r"^sha256:([0-9a-fA-F]{64})$")
_URL_RE = re.compile(r"^https?://[^\s/?#]+[^\s]*$")
_PATH_RE = re.compile(r"^/[^\x00-\x1f\x7f]*$")


class ImageError(Exception):
    """An image that cannot be used (its format, its size, its checksum, a failed download or write)."""


def staged_path(volume, kind="download"):
    """The staging file of ``volume``'s image: ``<STAGING_DIR>/<kind>-<volume>`` (kind ``upload``: copied from the
    controller by the role; ``download``: fetched by the module)."""
    return "%s/%s-%s" % (STAGING_DIR, kind, volume)


def short_sha(sha256_hex):
    """The first 16 hex digits of a sha256: what a volume's ``ember.source=image:<short>`` tag records."""
    return sha256_hex[:16]


def validate_location(value, field):
    """``{"url": ...}`` for an ``http://`` or ``https://`` URL, ``{"path": ...}`` for an absolute path (no ``..``
    component, no control character), else raise :class:`NameError_` naming ``field`` and the value."""
    if isinstance(value, str) and len(value) <= 4096:
        if _URL_RE.match(value):
            return {"url": value, "path": None}
        if _PATH_RE.match(value) and "/../" not in value + "/" and not value.endswith("/"):
            return {"url": None, "path": value}
    raise NameError_("%s: %s is not an image location: an absolute path on the storage node (/srv/images/x.qcow2) "
                     "or an http:// or https:// URL it can reach" % (field, show_value(value)))


def validate_checksum(value, field):
    """The lowercase hex digest of ``sha256:<64 hex digits>`` (None for None), else raise :class:`NameError_`."""
    if value is None:
        return None
    match = _SHA_RE.match(value) if isinstance(value, str) else None
    if not match:
        raise NameError_("%s: %s is not a checksum written sha256:<64 hex digits>" % (field, show_value(value)))
    return match.group(1).lower()


def validate_format(value, field):
    if value is not None and value not in FORMATS:
        raise NameError_("%s: %s is not one of %s" % (field, show_value(value), ", ".join(FORMATS)))
    return value


def parse_info(text, path, expected=None):
    """``{"format", "virtual_size_bytes", "actual_size_bytes"}`` from ``qemu-img info --output=json``; raises
    :class:`ImageError` for another format than raw or qcow2 (or than ``expected``), a backing file or an external
    data file (they would make the convert read other files of the host: Cinder refuses a backing file too)."""
    try:
        info = json.loads(text)
        fmt, virtual = info["format"], int(info["virtual-size"])
    except (ValueError, KeyError, TypeError):
        raise ImageError("qemu-img info of %s printed no format and virtual size" % path) from None
    if fmt not in FORMATS:
        raise ImageError("image %s is in format %s; only %s are taken" % (path, fmt, " and ".join(FORMATS)))
    if expected is not None and fmt != expected:
        raise ImageError("image %s is in format %s, not %s as given" % (path, fmt, expected))
    if info.get("backing-filename") or info.get("full-backing-filename"):
        raise ImageError("image %s has a backing file (%s); refusing it (it would read another file of the host)"
                         % (path, info.get("backing-filename") or info.get("full-backing-filename")))
    data_file = ((info.get("format-specific") or {}).get("data") or {}).get("data-file")
    if data_file:
        raise ImageError("image %s has an external data file (%s); refusing it" % (path, data_file))
    return {"format": fmt, "virtual_size_bytes": virtual, "actual_size_bytes": info.get("actual-size")}


class QemuImg:
    """``qemu-img`` through a :class:`_runner.Runner`."""

    def __init__(self, runner):
        self.runner = runner

    def info(self, path, fmt=None):
        """:func:`parse_info` of ``qemu-img info --output=json`` (``-f fmt`` when the format is given: no probing)."""
        args = QEMU_IMG_LIMITS + ["qemu-img", "info", "--output=json"] + (["-f", fmt] if fmt else []) + [path]
        try:
            _rc, out, _err = self.runner.run(args)
        except CommandError as exc:
            raise ImageError("qemu-img info of %s failed: %s" % (path, (exc.err or exc.out or "").strip())) from None
        return parse_info(out, path, fmt)

    def to_device(self, source, fmt, device, target_is_zero=False, direct=True):
        """``qemu-img convert -f <fmt> -O raw -n -t none -S 4k [--target-is-zero] source device``: the image's data
        into the existing volume (``-t none``: O_DIRECT on the volume; ``direct=False`` for a target file on a file
        system without it); zeros are written only where the volume may hold other data. The staged image is read
        through the page cache (it may sit on a file system without O_DIRECT)."""
        args = ["qemu-img", "convert", "-f", fmt, "-O", "raw", "-n"] + (["-t", "none"] if direct else []) + \
            ["-S", "4k"]
        if target_is_zero:
            args.append("--target-is-zero")
        self.runner.run(args + [source, device])
        return "qemu-img convert"

    def from_device(self, device, fmt, target, compress=False, direct=True):
        """``qemu-img convert -f raw -O <fmt> [-c] -T none device target``: a volume into a new image file
        (``-T none``: O_DIRECT on the volume; ``direct=False`` for a source on a file system without it)."""
        args = ["qemu-img", "convert", "-f", "raw", "-O", fmt] + (["-c"] if compress else []) + \
            (["-T", "none"] if direct else [])
        self.runner.run(args + [device, target])


def sha256_file(path, limit=None):
    """Hex sha256 of a file's content (of its first ``limit`` bytes when given)."""
    digest = hashlib.sha256()
    left = limit
    with open(path, "rb") as handle:
        while left is None or left > 0:
            block = handle.read(_CHUNK if left is None else min(_CHUNK, left))
            if not block:
                break
            digest.update(block)
            if left is not None:
                left -= len(block)
    return digest.hexdigest()


def sha256_device(path, size_bytes):
    """Hex sha256 of the first ``size_bytes`` of a block device (or file): a volume's raw content."""
    return sha256_file(path, size_bytes)


def download(url, dest, max_bytes, timeout=DOWNLOAD_TIMEOUT, opener=None):
    """Fetch ``url`` into ``dest`` (written as ``dest.part``, fsynced, renamed; mode 0600), hashing it on the way;
    returns ``(sha256 hex, bytes)``. Each network operation is bounded by ``timeout`` seconds; a body longer than
    ``max_bytes`` is refused. Raises :class:`ImageError` (the partial file removed). ``opener``: ansible's
    ``module_utils.urls.open_url`` (given by the caller so that this file imports without it)."""
    if opener is None:
        from ansible.module_utils.urls import open_url as opener
    part = dest + ".part"
    digest, total = hashlib.sha256(), 0
    try:
        response = opener(url, timeout=timeout, follow_redirects="safe")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            while True:
                block = response.read(_CHUNK)
                if not block:
                    break
                total += len(block)
                if total > max_bytes:
                    raise ImageError("download of %s: more than %d bytes, more than an image of this volume can be"
                                     % (url, max_bytes))
                digest.update(block)
                handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(part, dest)
    except ImageError:
        _unlink(part)
        raise
    except Exception as exc:  # urllib's HTTPError/URLError, socket timeouts, OSError of the disk
        _unlink(part)
        raise ImageError("download of %s failed: %s" % (url, exc)) from None
    return digest.hexdigest(), total


def _unlink(path):
    try:
        os.unlink(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_record(volume, vg, size_bytes, fmt, compress, volume_sha256, file_sha256, file_size, created=None):
    """The JSON sidecar of an image the image module wrote: ``volume``, ``vg`` (or the share), ``size_bytes``
    (the volume's, = the image's virtual size), ``format``, ``compress``, ``created`` (UTC, ISO 8601),
    ``volume_sha256`` (of the volume's raw content), ``file_sha256`` and ``file_size`` (of the image file)."""
    return {"volume": volume, "vg": vg, "size_bytes": size_bytes, "format": fmt, "compress": bool(compress),
            "created": created or utc_now(), "volume_sha256": volume_sha256, "file_sha256": file_sha256,
            "file_size": file_size}


def read_record(path):
    """``(record, problem)`` of image file ``path``: the JSON sidecar when it, the ``.sha256`` sidecar and the file
    agree (the sidecar's file_sha256 equals the ``.sha256`` one, the file has the recorded size), else
    ``(record or None, why not)``. ``(None, None)`` when no file and no sidecar exist."""
    exists = os.path.exists(path)
    try:
        with open(path + ".json") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        return None, ("%s exists without its sidecar %s.json" % (path, path)) if exists else None
    except (OSError, ValueError) as exc:
        return None, "sidecar %s.json cannot be read: %s" % (path, exc)
    needed = ("volume", "format", "file_sha256", "file_size", "size_bytes")
    if not isinstance(record, dict) or not all(key in record for key in needed):
        return None, "sidecar %s.json is not an image record" % path
    if not exists:
        return record, "%s is missing (its sidecar is there)" % path
    try:
        with open(path + ".sha256") as handle:
            listed = handle.read().split()[:1]
    except OSError:
        listed = []
    if listed != [record["file_sha256"]]:
        return record, "%s.sha256 does not hold the sha256 its JSON sidecar records" % path
    if os.path.getsize(path) != record["file_size"]:
        return record, "%s is %d bytes, its sidecar records %s" % (path, os.path.getsize(path), record["file_size"])
    return record, None


def temp_image_path(path):
    """``<dir>/.<name>.tmp``: where an image is written before its rename (a leftover of a run that died is
    overwritten by the next one)."""
    directory, name = os.path.split(path)
    return os.path.join(directory, ".%s.tmp" % name)


def _fsync_dir(directory):
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_small(path, text):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ember-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise


def write_image_files(qemu, device, path, fmt, compress, record_fields, direct=True):
    """Write the volume at ``device`` to image ``path``: ``qemu-img convert`` into ``.<name>.tmp`` in the
    same directory, fsync, rename, then the ``.sha256`` and ``.json`` sidecars (each written atomically; the JSON
    last, so an image counts as written only when everything is there), and an fsync of the directory. A failure
    removes the temporary file. ``record_fields``: :func:`image_record`'s arguments but the file's. Returns the
    record."""
    directory, name = os.path.split(path)
    tmp = temp_image_path(path)
    try:
        qemu.from_device(device, fmt, tmp, compress, direct)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(tmp, 0o644)
        file_sha = sha256_file(tmp)
        size = os.path.getsize(tmp)
        for stale in (path + ".json", path + ".sha256"):  # an image being replaced is no longer described
            _unlink(stale)
        os.rename(tmp, path)
    except BaseException:
        _unlink(tmp)
        raise
    record = image_record(file_sha256=file_sha, file_size=size, **record_fields)
    _write_small(path + ".sha256", "%s  %s\n" % (file_sha, name))
    _write_small(path + ".json", json.dumps(record, indent=1, sort_keys=True) + "\n")
    _fsync_dir(directory)
    return record


def remove_image_files(path):
    """Remove an image and its sidecars (the JSON one first: an image without it is no longer counted as written).
    Returns the paths removed."""
    removed = []
    for one in (path + ".json", path, path + ".sha256"):
        if os.path.exists(one):
            os.unlink(one)
            removed.append(one)
    if removed:
        _fsync_dir(os.path.dirname(path))
    return removed

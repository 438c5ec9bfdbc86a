# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup store: a content-addressed chunk store in a directory (local or an NFS mount), pure Python.

Layout under the store directory::

    chunks/<aa>/<sha256>                  one file per distinct chunk; <aa> = the first two hex digits
    backups/<volume>/<backup name>.json   one manifest per backup
    lock                                  flock(2) target (shared: backup, restore, verify; exclusive: prune, GC)

A chunk is named by the sha256 of its UNCOMPRESSED bytes, so identical chunks are stored once whatever the
codec that wrote them (dedup across volumes, backups and codecs). A chunk file is a 16-byte header,
``struct ">4sBBxxQ"``: magic ``EMBK``, format 1, codec (0 raw, 1 zlib, 2 zstd), two pad bytes, the uncompressed
length; then the payload. New chunks are compressed with zstd (level 1) when the ``zstandard`` package imports,
else zlib (level 1), and stored raw when compression does not make them smaller. A chunk is written to a temp
file in its directory (``.tmp-<sha256>-<run token>``), fsynced and renamed; a chunk file that exists already is
not written again. A chunk of zeros is stored as nothing: ``null`` in the manifest.

The manifest (JSON, written atomically by :func:`_files.write_atomic`: temp file, fsync, rename, fsync of the
directory) holds ``format`` (1), ``name``, ``volume``, ``size_bytes``, ``chunk_size`` (the last chunk may be
short), ``chunks`` (sha256 hex per chunk, ``null`` for zeros), ``digest``, ``sha256``, ``parent``, ``incremental``,
``method``, ``created_at`` (UTC, ``2026-11-20T10:11:12Z``), ``metadata``, ``description``, ``stats``
(``bytes_read``, ``bytes_written``, ``chunks_new``, ``chunks_reused``, ``chunks_zero``), ``codec`` and
``source`` (what was read, free text).

``digest`` is the sha256 of the concatenation of the chunks' raw 32-byte sha256 digests in order, a zero chunk
contributing the sha256 of that many zero bytes: it identifies the content and is computed from the chunk list
alone (an incremental backup that read only the changed chunks has one too). ``sha256`` is the plain sha256 of
the whole volume (what ``sha256sum`` of the device prints) when the backup read every byte, else null; a restore
returns the plain sha256 of what it wrote, so the two compare directly.

Every manifest lists all its chunks: a backup never needs another to be restored. ``parent`` (the backup an
incremental one took unchanged chunk hashes from) is informational, so retention may delete any backup.

Concurrency: backups, restores and verifies take the store lock shared for their whole run; deleting backups and
garbage collection (deleting chunk files that no manifest references, and stale temp files) take it exclusive, so
a backup running meanwhile never loses a chunk it counts on. A failing backup (``ENOSPC``, a read error) removes
its temp files and writes no manifest; chunks it completed stay until the next GC; earlier backups stay valid.

Reading is streamed with bounded memory: one reader (``readinto`` a small pool of preallocated buffers,
``posix_fadvise(SEQUENTIAL)``), a thread pool (sha256 and compression release the GIL on large buffers) and at
most ``workers + 1`` chunks in flight.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import errno
import fcntl
import hashlib
import json
import os
import re
import struct
import threading
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.ember.blockstore.plugins.module_utils._files import write_atomic

try:
    import zstandard
except ImportError:  # optional: zlib is used without it
    zstandard = None

__all__ = ["StoreError", "StoreFull", "MissingChunks", "StoreLockTimeout", "ChunkStore", "FORMAT",
           "DEFAULT_CHUNK_SIZE", "MIN_CHUNK_SIZE", "MAX_CHUNK_SIZE", "CODECS", "best_codec", "validate_chunk_size",
           "chunk_count", "chunk_length", "changed_chunks", "manifest_digest", "zero_sha256", "retained",
           "parse_created_at", "validate_manifest", "utc_now"]

FORMAT = 1
MIB = 1024 * 1024
DEFAULT_CHUNK_SIZE = 4 * MIB
MIN_CHUNK_SIZE = 64 * 1024
MAX_CHUNK_SIZE = 64 * MIB
CODECS = ("raw", "zlib", "zstd")
_HEADER = struct.Struct(">4sBBxxQ")
_MAGIC = b"EMBK"
_CHUNK_FORMAT = 1
_ZSTD_LEVEL = 1
BLKDISCARD = 0x1277  # linux/fs.h _IO(0x12, 119): discard a byte range of a block device
_ZLIB_LEVEL = 1
# Bytes compressed first to tell an incompressible chunk (stored raw) cheaply.
_SAMPLE = 64 * 1024
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_TEMP_PREFIX = ".tmp-"
_MANIFEST_TEMP = re.compile(r"^\.ember-.*\.tmp$")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$")
STAT_KEYS = ("bytes_read", "bytes_written", "chunks_new", "chunks_reused", "chunks_zero")


class StoreError(Exception):
    """A store operation failed; the message says what, where and why."""


class StoreFull(StoreError):
    """The store's file system is full (ENOSPC, EDQUOT): the message names the store and its free bytes."""


class StoreLockTimeout(StoreError):
    """Another run holds the store lock in a mode that excludes this one."""


class MissingChunks(StoreError):
    """Chunks a backup needs are missing or corrupt. ``problems``: ``[{"sha256", "path", "problem"}]``."""

    def __init__(self, msg, problems):
        super().__init__(msg)
        self.problems = problems


def best_codec():
    """``zstd`` when the ``zstandard`` package imports, else ``zlib``."""
    return "zstd" if zstandard is not None else "zlib"


def utc_now():
    """Now as the manifests write it: ``2026-11-20T10:11:12Z``."""
    return time.strftime(_TIME_FORMAT, time.gmtime())


def parse_created_at(text):
    """A manifest's ``created_at`` as an aware UTC datetime; ValueError for another format."""
    return datetime.datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=datetime.timezone.utc)


def validate_chunk_size(size, field="chunk_size"):
    """``size`` (bytes) when it is a multiple of 4 KiB within 64 KiB..64 MiB, else ValueError naming ``field``."""
    if isinstance(size, bool) or not isinstance(size, int) or not MIN_CHUNK_SIZE <= size <= MAX_CHUNK_SIZE \
            or size % 4096:
        raise ValueError("%s: %r is not a multiple of 4 KiB from 64 KiB to 64 MiB (default 4 MiB)" % (field, size))
    return size


def chunk_count(size_bytes, chunk_size):
    return -(-size_bytes // chunk_size)


def chunk_length(index, size_bytes, chunk_size):
    """Length of chunk ``index`` of a volume of ``size_bytes`` (the last one may be short)."""
    return min(chunk_size, size_bytes - index * chunk_size)


def zero_sha256(length, cache=None):
    """Raw sha256 digest of ``length`` zero bytes (``cache``: a dict reused across calls)."""
    if cache is not None and length in cache:
        return cache[length]
    digest = hashlib.sha256(bytes(length)).digest()
    if cache is not None:
        cache[length] = digest
    return digest


def manifest_digest(chunks, size_bytes, chunk_size):
    """The manifest ``digest``: sha256 over the raw 32-byte sha256 of every chunk in order, a ``None`` (zero) chunk
    contributing the sha256 of that many zero bytes. Computed from the chunk list alone, without the data."""
    outer = hashlib.sha256()
    zeros = {}
    for index, sha in enumerate(chunks):
        if sha is None:
            outer.update(zero_sha256(chunk_length(index, size_bytes, chunk_size), zeros))
        else:
            outer.update(bytes.fromhex(sha))
    return outer.hexdigest()


def changed_chunks(ranges, chunk_size, size_bytes):
    """Indexes of the chunks that overlap any ``(offset, length)`` byte range; ranges past ``size_bytes`` are
    clipped (thin_delta may report blocks beyond a volume that shrank, wyng-backup issue 56)."""
    indexes = set()
    for offset, length in ranges:
        end = min(offset + length, size_bytes)
        if length <= 0 or offset >= end:
            continue
        indexes.update(range(offset // chunk_size, (end - 1) // chunk_size + 1))
    return indexes


def validate_manifest(doc, where="manifest"):
    """``doc`` when it is a manifest of this format with consistent fields, else :class:`StoreError` naming
    ``where`` and the field."""
    def bad(field, why):
        raise StoreError("%s: %s %s" % (where, field, why))
    if not isinstance(doc, dict):
        bad("document", "is not a JSON object")
    if doc.get("format") != FORMAT:
        bad("format", "is %r; this version reads format %d" % (doc.get("format"), FORMAT))
    for key in ("name", "volume"):
        if not isinstance(doc.get(key), str) or not _NAME_RE.fullmatch(doc[key]):
            bad(key, "is not a valid name")
    size, chunk = doc.get("size_bytes"), doc.get("chunk_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        bad("size_bytes", "is not a byte count")
    try:
        validate_chunk_size(chunk, "chunk_size")
    except ValueError as exc:
        bad("chunk_size", "is invalid (%s)" % exc)
    chunks = doc.get("chunks")
    if not isinstance(chunks, list) or len(chunks) != chunk_count(size, chunk):
        bad("chunks", "does not list the %d chunks of %d bytes" % (chunk_count(size, chunk), size))
    for sha in chunks:
        if sha is not None and not (isinstance(sha, str) and _SHA_RE.fullmatch(sha)):
            bad("chunks", "holds %r, which is not a sha256" % (sha,))
    if doc.get("digest") != manifest_digest(chunks, size, chunk):
        bad("digest", "does not match the chunk list")
    try:
        parse_created_at(doc.get("created_at") or "")
    except (TypeError, ValueError):
        bad("created_at", "is not a UTC time such as 2026-11-20T10:11:12Z")
    return doc


def retained(manifests, keep_last=0, keep_daily=0, keep_weekly=0):
    """Names of the backups a retention policy keeps (restic's and borg's rules; times in UTC):

    - ``keep_last`` N: the N newest;
    - ``keep_daily`` N: the newest backup of each of the N most recent days that have backups;
    - ``keep_weekly`` N: the newest of each of the N most recent ISO weeks (Monday to Sunday) that have backups.

    A backup any rule keeps is kept. Parents need no protection: every manifest lists all its chunks."""
    ordered = sorted(manifests, key=lambda m: (m["created_at"], m["name"]), reverse=True)
    keep = {m["name"] for m in ordered[:max(0, keep_last or 0)]}
    buckets = ((keep_daily, lambda when: when.date()), (keep_weekly, lambda when: when.isocalendar()[:2]))
    for count, bucket in buckets:
        seen = set()
        for manifest in ordered:
            if len(seen) >= (count or 0):
                break
            key = bucket(parse_created_at(manifest["created_at"]))
            if key not in seen:
                seen.add(key)
                keep.add(manifest["name"])
    return keep


def _free_bytes(path):
    try:
        stat = os.statvfs(path)
        return stat.f_bavail * stat.f_frsize
    except OSError:
        return None


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Run:
    """State shared by the workers of one backup: chunks claimed (so two equal chunks in flight are written once),
    the directories written to, temp files to remove on failure."""

    def __init__(self):
        self.lock = threading.Lock()
        self.claimed = set()
        self.dirs = set()
        self.token = uuid.uuid4().hex[:12]


def _pread_all(fd, offset, length):
    """``length`` bytes at ``offset`` of ``fd`` (short reads continued; fewer only at the end of the file)."""
    parts, done = [], 0
    while done < length:
        part = os.pread(fd, length - done, offset + done)
        if not part:
            break
        parts.append(part)
        done += len(part)
    return b"".join(parts)


class ChunkStore:
    """The store in directory ``path``. ``codec``: codec of new chunks (default :func:`best_codec`); ``workers``:
    threads that hash and compress (default: the CPU count, 2 to 4); ``lock_timeout``: seconds to wait for the
    store lock."""

    def __init__(self, path, codec=None, workers=None, lock_timeout=1800):
        self.path = os.path.abspath(path)
        self.codec = codec or best_codec()
        if self.codec not in CODECS or (self.codec == "zstd" and zstandard is None):
            raise StoreError("codec %r is not available (zstd needs the zstandard package)" % self.codec)
        self.workers = workers or max(2, min(4, os.cpu_count() or 2))
        self.lock_timeout = lock_timeout
        self._local = threading.local()

    # --- layout --------------------------------------------------------------------------------------------------

    def exists(self):
        return os.path.isdir(os.path.join(self.path, "backups"))

    def create(self):
        """Make the store's directories (mode 0700: they hold volume data); True when anything was made."""
        made = False
        for sub in ("", "chunks", "backups"):
            directory = os.path.join(self.path, sub)
            if not os.path.isdir(directory):
                os.makedirs(directory, mode=0o700, exist_ok=True)
                made = True
        return made

    def chunk_path(self, sha):
        return os.path.join(self.path, "chunks", sha[:2], sha)

    def manifest_path(self, volume, name):
        return os.path.join(self.path, "backups", volume, name + ".json")

    # --- lock ----------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self, exclusive=False, timeout=None):
        """Hold the store lock (``flock`` on ``<store>/lock``) shared or exclusive while the block runs; waits up
        to ``timeout`` (default ``lock_timeout``) seconds, then raises :class:`StoreLockTimeout`."""
        timeout = self.lock_timeout if timeout is None else timeout
        fd = os.open(os.path.join(self.path, "lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + max(0, timeout)
        try:
            while True:
                try:
                    fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EACCES):
                        raise
                    if time.monotonic() >= deadline:
                        raise StoreLockTimeout(
                            "backup store %s is locked by another run (backups, restores and verifies hold it "
                            "shared, a prune or garbage collection exclusive); waited %s s"
                            % (self.path, timeout)) from None
                    time.sleep(min(0.2, max(0.01, timeout / 10.0)))
            yield
        finally:
            os.close(fd)

    # --- manifests -----------------------------------------------------------------------------------------------

    def load(self, volume, name):
        """The manifest of backup ``name`` of ``volume``, or None when there is none; :class:`StoreError` for one
        that cannot be read or is not valid."""
        path = self.manifest_path(volume, name)
        try:
            with open(path, "rb") as handle:
                text = handle.read()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError("cannot read %s: %s" % (path, exc.strerror or exc)) from None
        try:
            doc = json.loads(text.decode("utf-8"))
        except ValueError as exc:
            raise StoreError("%s is not a JSON manifest: %s" % (path, exc)) from None
        doc = validate_manifest(doc, path)
        if doc["name"] != name or doc["volume"] != volume:
            raise StoreError("%s: names backup %s/%s, not %s/%s" % (path, doc["volume"], doc["name"], volume, name))
        return doc

    def manifests(self, volume=None, errors=None):
        """Every manifest (of ``volume`` when given), oldest first (by ``created_at``, then name). A manifest that
        cannot be read raises :class:`StoreError`, unless ``errors`` is a list: then ``{"path", "error"}`` is
        appended to it and the manifest skipped."""
        root = os.path.join(self.path, "backups")
        volumes = [volume] if volume is not None else sorted(os.listdir(root)) if os.path.isdir(root) else []
        out = []
        for vol in volumes:
            directory = os.path.join(root, vol)
            if not os.path.isdir(directory):
                continue
            for entry in sorted(os.listdir(directory)):
                if not entry.endswith(".json") or entry.startswith("."):
                    continue
                try:
                    doc = self.load(vol, entry[:-len(".json")])
                except StoreError as exc:
                    if errors is None:
                        raise
                    errors.append({"path": os.path.join(directory, entry), "error": str(exc)})
                    continue
                if doc is not None:
                    out.append(doc)
        return sorted(out, key=lambda m: (m["created_at"], m["volume"], m["name"]))

    # --- chunks --------------------------------------------------------------------------------------------------

    def write_bytes(self, fd, data):
        """Write all of ``data`` to ``fd``: the one place chunk bytes are written (tests replace it to fail)."""
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def _compress(self, view):
        """``(codec id, payload)`` for the chunk ``view``: the store's codec, or raw when that is not smaller.
        A sample (the first 64 KiB) that does not shrink by 1/32 marks the chunk incompressible without compressing
        all of it (random or encrypted data: zlib would spend most of a backup's time on it)."""
        if self.codec != "raw" and len(view) > 2 * _SAMPLE:
            sample = view[:_SAMPLE]
            if len(self._compress_with(sample)[1]) > _SAMPLE - _SAMPLE // 32:
                return 0, view
        codec, payload = self._compress_with(view)
        if len(payload) >= len(view):
            return 0, view
        return codec, payload

    def _compress_with(self, view):
        if self.codec == "zstd":
            compressor = getattr(self._local, "zstd", None)
            if compressor is None:
                compressor = self._local.zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
            return 2, compressor.compress(view)
        if self.codec == "zlib":
            return 1, zlib.compress(view, _ZLIB_LEVEL)
        return 0, view

    def _full(self, exc, what):
        free = _free_bytes(self.path)
        return StoreFull("backup store %s is full (%s bytes free): %s failed: %s"
                         % (self.path, "unknown" if free is None else free, what, exc.strerror or exc))

    def _write_chunk(self, sha, view, run):
        """Write a new chunk file (temp file, fsync, rename); returns the bytes written."""
        path = self.chunk_path(sha)
        directory = os.path.dirname(path)
        codec, payload = self._compress(view)
        tmp = os.path.join(directory, "%s%s-%s" % (_TEMP_PREFIX, sha, run.token))
        try:
            os.makedirs(directory, mode=0o700, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            try:
                self.write_bytes(fd, _HEADER.pack(_MAGIC, _CHUNK_FORMAT, codec, len(view)))
                self.write_bytes(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self._full(exc, "writing chunk %s" % sha) from None
            raise StoreError("writing chunk %s failed: %s" % (path, exc.strerror or exc)) from None
        with run.lock:
            run.dirs.add(directory)
        return _HEADER.size + len(payload)

    def _store_chunk(self, view, run, zeros):
        """Hash one chunk and write it when it is new: ``(sha hex or None, raw digest, kind, bytes written)``,
        kind ``zero``, ``reused`` or ``new``."""
        digest = hashlib.sha256(view).digest()
        if digest == zeros.get(len(view)):
            return None, digest, "zero", 0
        sha = digest.hex()
        with run.lock:
            claimed = sha in run.claimed
            run.claimed.add(sha)
        if claimed or os.path.exists(self.chunk_path(sha)):
            return sha, digest, "reused", 0
        return sha, digest, "new", self._write_chunk(sha, view, run)

    def read_chunk(self, sha):
        """The uncompressed bytes of chunk ``sha``, checked against its name. Raises FileNotFoundError when the
        file is missing and :class:`StoreError` (``corrupt: ...``) when it cannot be decoded or does not match."""
        path = self.chunk_path(sha)
        with open(path, "rb") as handle:
            data = handle.read()
        if len(data) < _HEADER.size:
            raise StoreError("corrupt: %d bytes, shorter than the chunk header" % len(data))
        magic, version, codec, length = _HEADER.unpack_from(data)
        if magic != _MAGIC or version != _CHUNK_FORMAT or codec > 2:
            raise StoreError("corrupt: not a chunk file of this format (header %r)" % data[:8])
        payload = memoryview(data)[_HEADER.size:]
        try:
            if codec == 2:
                if zstandard is None:
                    raise StoreError("chunk is zstd-compressed and the zstandard package is not installed")
                out = zstandard.ZstdDecompressor().decompress(payload, max_output_size=length)
            elif codec == 1:
                out = zlib.decompress(payload)
            else:
                out = payload.tobytes()
        except StoreError:
            raise
        except Exception as exc:  # zlib.error, zstandard.ZstdError: a damaged payload
            raise StoreError("corrupt: cannot decompress (%s)" % exc) from None
        if len(out) != length:
            raise StoreError("corrupt: %d bytes after decompression, the header says %d" % (len(out), length))
        if hashlib.sha256(out).hexdigest() != sha:
            raise StoreError("corrupt: its content does not match its sha256")
        return out

    # --- backup --------------------------------------------------------------------------------------------------

    def backup(self, device, volume, name, chunk_size=DEFAULT_CHUNK_SIZE, parent=None, ranges=None,
               incremental=None, metadata=None, description=None, created_at=None, source=None, method=None,
               whole_sha256=True):
        """Back up ``device`` (a block device or file, read to its end) as backup ``name`` of ``volume``; returns
        the manifest written.

        ``parent``: the manifest of the previous backup. With ``ranges`` (``[(offset, length)]`` in bytes, the
        regions that changed since ``parent`` was taken, from thin_delta), only chunks overlapping a range are read;
        the others take the parent's hashes (same chunk size and chunk length needed, else the chunk is read).
        Without ``ranges`` every chunk is read and only new ones are written. ``incremental`` defaults to whether a
        parent is given. Raises :class:`StoreError` (:class:`StoreFull` when the store is full) after removing
        its temp files; no manifest is written then.

        ``whole_sha256``: also hash the whole stream (the manifest's plain ``sha256``, when every chunk is read).
        It is a second SHA-256 pass over every byte, which halved the throughput on the lab (2 vCPUs under
        emulation: 43 % of ``dd | sha256sum`` with it); the backup module turns it off unless asked
        (``digest`` covers the whole volume anyway)."""
        validate_chunk_size(chunk_size)
        with self.locked():
            if self.load(volume, name) is not None:
                raise StoreError("backup %s of volume %s exists already in %s" % (name, volume, self.path))
            return self._backup(device, volume, name, chunk_size, parent, ranges, incremental, metadata,
                                description, created_at, source, method, whole_sha256)

    def _plan(self, size, chunk_size, parent, ranges):
        """``[(index, parent sha or False)]``: False = read the chunk."""
        count = chunk_count(size, chunk_size)
        if parent is None or ranges is None or parent["chunk_size"] != chunk_size:
            return [(index, False) for index in range(count)]
        changed = changed_chunks(ranges, chunk_size, size)
        plan = []
        for index in range(count):
            same_length = index < len(parent["chunks"]) and \
                chunk_length(index, parent["size_bytes"], chunk_size) == chunk_length(index, size, chunk_size)
            plan.append((index, parent["chunks"][index] if same_length and index not in changed else False))
        return plan

    def _backup(self, device, volume, name, chunk_size, parent, ranges, incremental, metadata, description,
                created_at, source, method, whole_sha256=False):
        created_at = created_at or utc_now()
        try:
            fd = os.open(device, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise StoreError("cannot open %s: %s" % (device, exc.strerror or exc)) from None
        run = _Run()
        try:
            size = os.lseek(fd, 0, os.SEEK_END)
            plan = self._plan(size, chunk_size, parent, ranges)
            full = all(sha is False for _index, sha in plan)
            if full:
                with contextlib.suppress(OSError, AttributeError):
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            chunks, stats, stream = self._stream(fd, device, size, chunk_size, plan, run, full and whole_sha256)
        except BaseException:
            self._remove_temps(run)
            raise
        finally:
            os.close(fd)
        manifest = {
            "format": FORMAT, "name": name, "volume": volume, "size_bytes": size, "chunk_size": chunk_size,
            "chunks": chunks, "digest": manifest_digest(chunks, size, chunk_size),
            "sha256": stream.hexdigest() if stream is not None else None,
            "parent": parent["name"] if parent else None,
            "incremental": bool(parent) if incremental is None else bool(incremental),
            "method": method or ("full" if full else "changed"),
            "created_at": created_at, "metadata": dict(metadata or {}), "description": description,
            "stats": stats, "codec": self.codec, "source": source,
        }
        path = self.manifest_path(volume, name)
        try:
            for directory in sorted(run.dirs):
                _fsync_dir(directory)
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            write_atomic(path, json.dumps(manifest, indent=1, sort_keys=True) + "\n", 0o600)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise self._full(exc, "writing manifest %s" % path) from None
            raise StoreError("writing manifest %s failed: %s" % (path, exc.strerror or exc)) from None
        return manifest

    def _stream(self, fd, device, size, chunk_size, plan, run, full):
        """Read the planned chunks through the worker pool; ``(chunks, stats, whole-device sha256 or None)``."""
        chunks = [sha if sha is not False else None for _index, sha in plan]
        stats = dict.fromkeys(STAT_KEYS, 0)
        zeros = {}
        for length in (chunk_size, size % chunk_size):
            if length:
                zero_sha256(length, zeros)
        stream = hashlib.sha256() if full else None
        for _index, sha in plan:
            if sha is not False:
                stats["chunks_zero" if sha is None else "chunks_reused"] += 1
        depth = self.workers + 1
        free = []
        inflight = collections.deque()

        def collect():
            index, buf, future = inflight.popleft()
            sha, _digest, kind, written = future.result()
            chunks[index] = sha
            stats["chunks_" + kind] += 1
            stats["bytes_written"] += written
            free.append(buf)

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="ember-backup") as pool:
            try:
                for index, sha in plan:
                    if sha is not False:
                        continue
                    if len(inflight) >= depth:
                        collect()
                    buf = free.pop() if free else bytearray(chunk_size)
                    length = chunk_length(index, size, chunk_size)
                    view = memoryview(buf)[:length]
                    self._read_into(fd, device, view, index * chunk_size)
                    stats["bytes_read"] += length
                    inflight.append((index, buf, pool.submit(self._store_chunk, view, run, zeros)))
                    if stream is not None:
                        stream.update(view)
                while inflight:
                    collect()
            except BaseException:
                for _index, _buf, future in inflight:
                    future.cancel()
                raise
        return chunks, stats, stream

    @staticmethod
    def _read_into(fd, device, view, offset):
        done = 0
        while done < len(view):
            try:
                got = os.preadv(fd, [view[done:]], offset + done)
            except OSError as exc:
                raise StoreError("reading %s at offset %d failed: %s" % (device, offset + done,
                                                                         exc.strerror or exc)) from None
            if got == 0:
                raise StoreError("%s ended at %d bytes while reading the chunk at %d"
                                 % (device, offset + done, offset))
            done += got

    def _remove_temps(self, run):
        """Remove the temp chunk files of a failed run (its workers remove their own; this catches the rest)."""
        root = os.path.join(self.path, "chunks")
        suffix = "-" + run.token
        for directory in sorted(run.dirs) or ([os.path.join(root, d) for d in os.listdir(root)]
                                              if os.path.isdir(root) else []):
            with contextlib.suppress(OSError):
                for entry in os.listdir(directory):
                    if entry.startswith(_TEMP_PREFIX) and entry.endswith(suffix):
                        os.unlink(os.path.join(directory, entry))

    # --- verify and restore --------------------------------------------------------------------------------------

    def _check_chunk(self, sha):
        try:
            return sha, len(self.read_chunk(sha)), None
        except FileNotFoundError:
            return sha, 0, "missing"
        except OSError as exc:
            return sha, 0, "unreadable: %s" % (exc.strerror or exc)
        except StoreError as exc:
            return sha, 0, str(exc)

    def verify(self, manifests):
        """Re-read every chunk the ``manifests`` reference (each distinct chunk once): decompress it and check its
        sha256. Returns ``{"chunks_checked", "bytes_checked", "problems": [{"sha256", "path", "problem",
        "backups"}]}``; ``problem`` is ``missing`` or says what is corrupt; ``backups`` names the backups
        (``<volume>/<name>``) that need the chunk."""
        users = {}
        for manifest in manifests:
            for sha in manifest["chunks"]:
                if sha is not None:
                    users.setdefault(sha, set()).add("%s/%s" % (manifest["volume"], manifest["name"]))
        result = {"chunks_checked": 0, "bytes_checked": 0, "problems": []}
        with self.locked(), ThreadPoolExecutor(max_workers=self.workers) as pool:
            for sha, length, problem in self._bounded_map(pool, self._check_chunk, sorted(users)):
                result["chunks_checked"] += 1
                result["bytes_checked"] += length
                if problem:
                    result["problems"].append({"sha256": sha, "path": self.chunk_path(sha), "problem": problem,
                                               "backups": sorted(users[sha])})
        return result

    def _bounded_map(self, pool, func, items):
        """``pool.map`` in order with at most ``workers + 1`` calls in flight (bounded memory)."""
        inflight = collections.deque()
        for item in items:
            if len(inflight) > self.workers:
                yield inflight.popleft().result()
            inflight.append(pool.submit(func, item))
        while inflight:
            yield inflight.popleft().result()

    def missing(self, manifest):
        """``[{"sha256", "path", "problem": "missing"}]`` for the chunks of ``manifest`` without a file."""
        out, seen = [], set()
        for sha in manifest["chunks"]:
            if sha is not None and sha not in seen:
                seen.add(sha)
                if not os.path.exists(self.chunk_path(sha)):
                    out.append({"sha256": sha, "path": self.chunk_path(sha), "problem": "missing"})
        return out

    def _restore_chunk(self, sha):
        try:
            return self.read_chunk(sha), None
        except FileNotFoundError:
            return None, "missing"
        except OSError as exc:
            return None, "unreadable: %s" % (exc.strerror or exc)
        except StoreError as exc:
            return None, str(exc)

    def restore(self, manifest, device, known_zero=False, discard_zero=False):
        """Write backup ``manifest`` onto ``device`` (which exists and is at least as large): each chunk at its
        offset, its sha256 checked before it is written; zero chunks written as zeros, or skipped when
        ``known_zero`` (the target reads as zeros already: a fresh thin volume), or with ``discard_zero`` (a thin
        volume) discarded (``BLKDISCARD``: dm-thin unmaps the blocks, which then read as zeros, instead of
        allocating them for zeros) and read back, and written as zeros where the range does not read as zeros
        (a device that does not discard, or blocks only partly covered). Nothing is written when any chunk
        file is missing (:class:`MissingChunks`); a chunk found corrupt while restoring raises
        :class:`MissingChunks` too (what was written before it stays). The device is fsynced at the end.

        Returns ``{"sha256", "bytes_written", "chunks_written", "chunks_zero"}``: ``sha256`` is the plain sha256
        of the ``size_bytes`` restored (zeros included), ``bytes_written`` what was actually written."""
        size, chunk_size = manifest["size_bytes"], manifest["chunk_size"]
        with self.locked():
            missing = self.missing(manifest)
            if missing:
                raise MissingChunks("backup %s of volume %s cannot be restored: %d chunk(s) missing from %s: %s"
                                    % (manifest["name"], manifest["volume"], len(missing), self.path,
                                       _names(missing)), missing)
            try:
                fd = os.open(device, (os.O_RDWR if discard_zero else os.O_WRONLY) | os.O_CLOEXEC)
            except OSError as exc:
                raise StoreError("cannot open %s for writing: %s" % (device, exc.strerror or exc)) from None
            try:
                target = os.lseek(fd, 0, os.SEEK_END)
                if target < size:
                    raise StoreError("%s is %d bytes, smaller than backup %s of volume %s (%d bytes)"
                                     % (device, target, manifest["name"], manifest["volume"], size))
                result = self._write_chunks(fd, device, manifest, size, chunk_size, known_zero, discard_zero)
                os.fsync(fd)
            finally:
                os.close(fd)
        if manifest.get("sha256") and manifest["sha256"] != result["sha256"]:
            raise StoreError("restore of backup %s onto %s wrote data whose sha256 %s differs from the backup's %s"
                             % (manifest["name"], device, result["sha256"], manifest["sha256"]))
        return result

    def _write_chunks(self, fd, device, manifest, size, chunk_size, known_zero, discard_zero=False):
        stream = hashlib.sha256()
        zero = bytes(chunk_size)
        result = {"sha256": None, "bytes_written": 0, "chunks_written": 0, "chunks_zero": 0}
        items = list(enumerate(manifest["chunks"]))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            def load(item):
                index, sha = item
                return (index, sha) + (self._restore_chunk(sha) if sha is not None else (None, None))
            for index, sha, data, problem in self._bounded_map(pool, load, items):
                offset = index * chunk_size
                length = chunk_length(index, size, chunk_size)
                if problem:
                    raise MissingChunks("restore of backup %s onto %s stopped at chunk %d (offset %d): %s: %s"
                                        % (manifest["name"], device, index, offset, self.chunk_path(sha), problem),
                                        [{"sha256": sha, "path": self.chunk_path(sha), "problem": problem}])
                if data is None:
                    data = memoryview(zero)[:length]
                    result["chunks_zero"] += 1
                    if known_zero or (discard_zero and self._discarded(fd, offset, length)):
                        stream.update(data)
                        continue
                else:
                    result["chunks_written"] += 1
                self._pwrite_all(fd, device, data, offset)
                result["bytes_written"] += length
                stream.update(data)
        result["sha256"] = stream.hexdigest()
        return result

    @staticmethod
    def _discarded(fd, offset, length):
        """Discard ``length`` bytes at ``offset`` of the block device ``fd`` (``BLKDISCARD``) and whether they read
        back as zeros (False, and nothing lost, when the device does not discard or keeps the data)."""
        try:
            fcntl.ioctl(fd, BLKDISCARD, struct.pack("QQ", offset, length))
            data = _pread_all(fd, offset, length)
        except OSError:
            return False
        return data.count(0) == len(data)

    @staticmethod
    def _pwrite_all(fd, device, data, offset):
        view = memoryview(data)
        done = 0
        while done < len(view):
            try:
                done += os.pwrite(fd, view[done:], offset + done)
            except OSError as exc:
                raise StoreError("writing %s at offset %d failed: %s" % (device, offset + done,
                                                                         exc.strerror or exc)) from None

    # --- delete, prune, garbage collection -----------------------------------------------------------------------

    def delete(self, manifests, gc=True):
        """Delete the backups ``manifests`` (their manifest files) and, with ``gc``, collect garbage, all under the
        exclusive lock. Returns ``{"deleted": ["<volume>/<name>"], "gc": gc() result or None}``."""
        with self.locked(exclusive=True):
            deleted = []
            for manifest in manifests:
                path = self.manifest_path(manifest["volume"], manifest["name"])
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
                    deleted.append("%s/%s" % (manifest["volume"], manifest["name"]))
            if deleted:
                for volume in sorted({m["volume"] for m in manifests}):
                    _fsync_dir(os.path.join(self.path, "backups", volume))
            return {"deleted": deleted, "gc": self._gc() if gc else None}

    def gc(self):
        """Garbage collection under the exclusive lock; see :meth:`_gc`."""
        with self.locked(exclusive=True):
            return self._gc()

    def _gc(self):
        """Delete chunk files no manifest references, and stale temp files (no backup runs: the lock is held
        exclusive). A manifest that cannot be read stops it before anything is deleted. Returns
        ``{"chunks_deleted", "bytes_freed", "temp_files_removed", "chunks_kept"}``."""
        referenced = set()
        for manifest in self.manifests():
            referenced.update(sha for sha in manifest["chunks"] if sha is not None)
        result = {"chunks_deleted": 0, "bytes_freed": 0, "temp_files_removed": 0, "chunks_kept": 0}
        backups = os.path.join(self.path, "backups")
        for volume in sorted(os.listdir(backups)) if os.path.isdir(backups) else []:
            directory = os.path.join(backups, volume)
            for entry in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
                if _MANIFEST_TEMP.match(entry):
                    os.unlink(os.path.join(directory, entry))
                    result["temp_files_removed"] += 1
        root = os.path.join(self.path, "chunks")
        for sub in sorted(os.listdir(root)) if os.path.isdir(root) else []:
            directory = os.path.join(root, sub)
            if not os.path.isdir(directory):
                continue
            for entry in sorted(os.listdir(directory)):
                path = os.path.join(directory, entry)
                if entry.startswith(_TEMP_PREFIX):
                    os.unlink(path)
                    result["temp_files_removed"] += 1
                elif _SHA_RE.fullmatch(entry) and entry not in referenced:
                    with contextlib.suppress(FileNotFoundError):
                        result["bytes_freed"] += os.lstat(path).st_size
                        os.unlink(path)
                        result["chunks_deleted"] += 1
                elif entry in referenced:
                    result["chunks_kept"] += 1
        return result


def _names(problems, limit=10):
    text = ", ".join("%s (%s)" % (p["path"], p["problem"]) for p in problems[:limit])
    return text + (" and %d more" % (len(problems) - limit) if len(problems) > limit else "")

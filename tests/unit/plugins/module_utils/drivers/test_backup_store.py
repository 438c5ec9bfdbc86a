# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup store on real files in tmp directories (no mock of the file system): a file stands for the device.

Chunks of 64 KiB keep the files small; the memory bound is measured with 1 MiB chunks over 64 MiB.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import threading
import tracemalloc

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import backup_store
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.backup_store import (
    ChunkStore,
    MissingChunks,
    StoreError,
    StoreFull,
    StoreLockTimeout,
    changed_chunks,
    manifest_digest,
    retained,
    validate_chunk_size,
    validate_manifest,
)

CHUNK = 64 * 1024


def pattern(index, length=CHUNK):
    """Distinct, compressible content for chunk ``index``."""
    line = ("chunk %08d " % index).encode()
    return (line * (length // len(line) + 1))[:length]


def random_bytes(seed, length=CHUNK):
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(b"%d-%d" % (seed, counter)).digest()
        counter += 1
    return bytes(out[:length])


def make_device(path, chunks, tail=b""):
    """A file of ``chunks`` (each CHUNK bytes or None for zeros) plus ``tail`` (a short last chunk)."""
    with open(path, "wb") as handle:
        for data in chunks:
            handle.write(data if data is not None else bytes(CHUNK))
        handle.write(tail)
    return str(path)


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def chunk_files(store):
    root = os.path.join(store.path, "chunks")
    return sorted(name for sub in os.listdir(root) for name in os.listdir(os.path.join(root, sub)))


def temp_files(store):
    out = []
    for directory, _dirs, files in os.walk(store.path):
        out.extend(os.path.join(directory, f) for f in files if f.startswith((".tmp-", ".ember-")))
    return out


@pytest.fixture()
def store(tmp_path):
    one = ChunkStore(str(tmp_path / "store"), workers=2)
    one.create()
    return one


@pytest.fixture()
def device(tmp_path):
    return make_device(tmp_path / "dev", [pattern(0), None, random_bytes(1), pattern(3)], tail=pattern(4, 1000))


# --- backup ------------------------------------------------------------------------------------------------------

def test_backup_of_a_file_writes_chunks_and_a_manifest(store, device):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK, created_at="2026-11-20T10:00:00Z")
    assert manifest["size_bytes"] == 4 * CHUNK + 1000
    assert manifest["chunk_size"] == CHUNK
    assert len(manifest["chunks"]) == 5 and manifest["chunks"][1] is None
    assert manifest["chunks"][0] == hashlib.sha256(pattern(0)).hexdigest()
    assert manifest["sha256"] == sha256_file(device)
    assert manifest["stats"] == {"bytes_read": 4 * CHUNK + 1000, "bytes_written": manifest["stats"]["bytes_written"],
                                 "chunks_new": 4, "chunks_reused": 0, "chunks_zero": 1}
    assert manifest["parent"] is None and manifest["incremental"] is False and manifest["method"] == "full"
    on_disk = json.loads(open(store.manifest_path("db01", "first")).read())
    assert on_disk == manifest
    assert validate_manifest(on_disk) == manifest
    assert chunk_files(store) == sorted(s for s in manifest["chunks"] if s)
    assert temp_files(store) == []
    assert oct(os.stat(store.manifest_path("db01", "first")).st_mode & 0o777) == "0o600"


def test_compressible_chunks_are_compressed_random_ones_stored_raw(store, device):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    sizes = {sha: os.path.getsize(store.chunk_path(sha)) for sha in manifest["chunks"] if sha}
    assert sizes[manifest["chunks"][0]] < CHUNK // 4
    assert sizes[manifest["chunks"][2]] == CHUNK + 16  # raw: the header and the bytes
    assert manifest["stats"]["bytes_written"] == sum(sizes.values())
    assert manifest["codec"] == backup_store.best_codec()


@pytest.mark.parametrize("codec", ["raw", "zlib", "zstd"])
def test_every_codec_round_trips(tmp_path, device, codec):
    if codec == "zstd":
        pytest.importorskip("zstandard")
    one = ChunkStore(str(tmp_path / codec), codec=codec)
    one.create()
    manifest = one.backup(device, "db01", "b", chunk_size=CHUNK)
    assert one.verify([manifest])["problems"] == []
    for sha in manifest["chunks"]:
        if sha:
            assert hashlib.sha256(one.read_chunk(sha)).hexdigest() == sha


def test_an_unavailable_codec_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(backup_store, "zstandard", None)
    assert backup_store.best_codec() == "zlib"
    with pytest.raises(StoreError, match="zstandard"):
        ChunkStore(str(tmp_path), codec="zstd")


def test_the_digest_is_computed_from_the_chunk_list(store, device):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    outer = hashlib.sha256()
    with open(device, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            outer.update(hashlib.sha256(block).digest())  # a zero chunk counts as the sha256 of its zeros
    assert manifest["digest"] == outer.hexdigest()
    assert manifest_digest(manifest["chunks"], manifest["size_bytes"], CHUNK) == manifest["digest"]


def test_a_second_identical_backup_writes_no_chunk(store, device):
    first = store.backup(device, "db01", "first", chunk_size=CHUNK)
    before = chunk_files(store)
    second = store.backup(device, "db01", "second", chunk_size=CHUNK, parent=first)
    assert chunk_files(store) == before
    assert second["stats"]["bytes_written"] == 0 and second["stats"]["chunks_new"] == 0
    assert second["stats"]["chunks_reused"] == 4 and second["stats"]["chunks_zero"] == 1
    assert second["incremental"] is True and second["parent"] == "first"
    assert second["digest"] == first["digest"] and second["sha256"] == first["sha256"]


def test_dedup_across_volumes_and_equal_chunks_in_one_backup(store, tmp_path):
    dev = make_device(tmp_path / "same", [pattern(7)] * 6)
    manifest = store.backup(dev, "db01", "b", chunk_size=CHUNK)
    assert manifest["stats"]["chunks_new"] == 1 and manifest["stats"]["chunks_reused"] == 5
    other = store.backup(dev, "db02", "b", chunk_size=CHUNK)
    assert other["stats"]["chunks_new"] == 0
    assert len(chunk_files(store)) == 1


def test_an_existing_backup_name_is_refused(store, device):
    store.backup(device, "db01", "first", chunk_size=CHUNK)
    with pytest.raises(StoreError, match="exists already"):
        store.backup(device, "db01", "first", chunk_size=CHUNK)


def test_incremental_reads_only_the_chunks_in_changed_ranges(store, tmp_path, device):
    first = store.backup(device, "db01", "first", chunk_size=CHUNK)
    with open(device, "r+b") as handle:
        handle.seek(3 * CHUNK + 10)
        handle.write(b"changed")
        handle.seek(CHUNK)  # chunk 1 was zeros: written now, and not named by the ranges below
        handle.write(b"unreported")
    second = store.backup(device, "db01", "second", chunk_size=CHUNK, parent=first,
                          ranges=[(3 * CHUNK + 10, 7)], method="changed")
    assert second["stats"]["bytes_read"] == CHUNK
    assert second["stats"]["chunks_new"] == 1 and second["stats"]["chunks_reused"] == 3
    assert second["chunks"][3] == hashlib.sha256(open(device, "rb").read()[3 * CHUNK:4 * CHUNK]).hexdigest()
    # what the ranges do not name is taken from the parent (the unreported write is not seen: by design)
    assert second["chunks"][:3] == first["chunks"][:3] and second["chunks"][4] == first["chunks"][4]
    assert second["sha256"] is None  # not every byte was read
    assert second["method"] == "changed" and second["incremental"] is True


def test_incremental_reads_chunks_the_parent_does_not_have(store, tmp_path):
    small = make_device(tmp_path / "small", [pattern(0), pattern(1)], tail=pattern(2, 100))
    first = store.backup(small, "db01", "first", chunk_size=CHUNK)
    grown = make_device(tmp_path / "grown", [pattern(0), pattern(1), pattern(2), pattern(3)])
    second = store.backup(grown, "db01", "second", chunk_size=CHUNK, parent=first, ranges=[])
    # chunk 2 was 100 bytes in the parent: read again with chunk 3
    assert second["stats"]["bytes_read"] == 2 * CHUNK
    assert second["chunks"][:2] == first["chunks"][:2]
    assert second["digest"] == store.backup(grown, "db01", "full", chunk_size=CHUNK)["digest"]


def test_incremental_with_another_chunk_size_reads_everything(store, device):
    first = store.backup(device, "db01", "first", chunk_size=CHUNK)
    second = store.backup(device, "db01", "second", chunk_size=2 * CHUNK, parent=first, ranges=[])
    assert second["stats"]["bytes_read"] == second["size_bytes"]
    assert second["sha256"] == first["sha256"]


def test_changed_chunks_maps_byte_ranges_to_chunk_indexes():
    assert changed_chunks([(0, 1)], CHUNK, 10 * CHUNK) == {0}
    assert changed_chunks([(CHUNK - 1, 2)], CHUNK, 10 * CHUNK) == {0, 1}
    assert changed_chunks([(2 * CHUNK, CHUNK)], CHUNK, 10 * CHUNK) == {2}
    assert changed_chunks([(0, 0)], CHUNK, 10 * CHUNK) == set()
    # a range past the end (thin_delta after a shrink) is clipped
    assert changed_chunks([(9 * CHUNK, 5 * CHUNK), (20 * CHUNK, 1)], CHUNK, 10 * CHUNK) == {9}


def test_zero_chunks_are_stored_as_nothing(store, tmp_path):
    dev = make_device(tmp_path / "zeros", [None, None, None], tail=bytes(10))
    manifest = store.backup(dev, "db01", "b", chunk_size=CHUNK)
    assert manifest["chunks"] == [None, None, None, None]
    assert manifest["stats"]["chunks_zero"] == 4 and manifest["stats"]["bytes_written"] == 0
    assert chunk_files(store) == []
    assert manifest["sha256"] == sha256_file(dev)


def test_an_empty_device(store, tmp_path):
    dev = make_device(tmp_path / "empty", [])
    manifest = store.backup(dev, "db01", "b", chunk_size=CHUNK)
    assert manifest["chunks"] == [] and manifest["sha256"] == hashlib.sha256(b"").hexdigest()


def test_a_missing_device_is_named(store, tmp_path):
    with pytest.raises(StoreError, match="cannot open .*/nothing"):
        store.backup(str(tmp_path / "nothing"), "db01", "b", chunk_size=CHUNK)


@pytest.mark.parametrize("size", [0, 4096, 1000 * 1000, 128 * 1024 * 1024, True, "4MiB"])
def test_bad_chunk_sizes_are_refused(size):
    with pytest.raises(ValueError, match="chunk_size"):
        validate_chunk_size(size)


# --- failure -----------------------------------------------------------------------------------------------------

class FullStore(ChunkStore):
    """A store whose file system fills up after ``room`` writes."""

    def __init__(self, path, room):
        super().__init__(path, workers=2)
        self.room = room
        self.lock_ = threading.Lock()

    def write_bytes(self, fd, data):
        with self.lock_:
            self.room -= 1
            full = self.room < 0
        if full:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        super().write_bytes(fd, data)


def test_enospc_mid_backup_writes_no_manifest_and_keeps_earlier_backups(tmp_path, device):
    path = str(tmp_path / "store")
    good = ChunkStore(path)
    good.create()
    first = good.backup(device, "db01", "first", chunk_size=CHUNK)
    big = make_device(tmp_path / "big", [random_bytes(n) for n in range(20)])
    full = FullStore(path, room=9)  # a header and a payload per chunk: the fifth new chunk fails
    with pytest.raises(StoreFull, match=r"backup store %s is full \(\d+ bytes free\): writing chunk [0-9a-f]{64}"
                       % path):
        full.backup(big, "db01", "second", chunk_size=CHUNK)
    assert full.load("db01", "second") is None
    assert temp_files(good) == []
    assert good.verify([first])["problems"] == []
    assert [m["name"] for m in good.manifests("db01")] == ["first"]
    # the completed chunks of the failed run are garbage: the next GC removes them
    assert good.gc()["chunks_deleted"] >= 1
    assert good.verify([first])["problems"] == []


def test_a_read_error_names_the_device_and_offset(store, device, monkeypatch):
    def failing(fd, buffers, offset):
        raise OSError(errno.EIO, "Input/output error")
    monkeypatch.setattr(backup_store.os, "preadv", failing)
    with pytest.raises(StoreError, match=r"reading .*/dev at offset 0 failed: Input/output error"):
        store.backup(device, "db01", "b", chunk_size=CHUNK)
    assert store.load("db01", "b") is None and temp_files(store) == []


# --- verify and restore ------------------------------------------------------------------------------------------

def corrupt(store, sha):
    path = store.chunk_path(sha)
    data = bytearray(open(path, "rb").read())
    data[-1] ^= 0xFF
    with open(path, "wb") as handle:
        handle.write(data)
    return path


def test_verify_names_missing_and_corrupt_chunks(store, device):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    bad = corrupt(store, manifest["chunks"][2])
    os.unlink(store.chunk_path(manifest["chunks"][0]))
    result = store.verify([manifest])
    assert result["chunks_checked"] == 4
    problems = {p["path"]: p for p in result["problems"]}
    assert set(problems) == {bad, store.chunk_path(manifest["chunks"][0])}
    assert problems[store.chunk_path(manifest["chunks"][0])]["problem"] == "missing"
    assert problems[bad]["problem"].startswith("corrupt")
    assert problems[bad]["sha256"] == manifest["chunks"][2] and problems[bad]["backups"] == ["db01/first"]


def test_verify_all_backups_checks_each_chunk_once(store, device):
    first = store.backup(device, "db01", "first", chunk_size=CHUNK)
    second = store.backup(device, "db01", "second", chunk_size=CHUNK)
    result = store.verify(store.manifests("db01"))
    assert result["chunks_checked"] == 4 and result["problems"] == []
    assert {m["name"] for m in (first, second)} == {"first", "second"}


def test_restore_writes_the_backup_and_returns_its_sha256(store, device, tmp_path):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    target = tmp_path / "target"
    target.write_bytes(b"\xff" * (manifest["size_bytes"] + 5000))  # larger, with data
    result = store.restore(manifest, str(target))
    assert result["sha256"] == manifest["sha256"]
    assert result["bytes_written"] == manifest["size_bytes"]
    assert result["chunks_written"] == 4 and result["chunks_zero"] == 1
    data = target.read_bytes()
    assert hashlib.sha256(data[:manifest["size_bytes"]]).hexdigest() == manifest["sha256"]
    assert data[manifest["size_bytes"]:] == b"\xff" * 5000


def test_restore_onto_a_known_zero_target_skips_zero_chunks(store, device, tmp_path):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    target = tmp_path / "target"
    target.write_bytes(bytes(manifest["size_bytes"]))
    result = store.restore(manifest, str(target), known_zero=True)
    assert result["bytes_written"] == manifest["size_bytes"] - CHUNK
    assert result["sha256"] == manifest["sha256"] == sha256_file(target)


def test_discarding_zero_chunks_falls_back_to_zeros_where_the_range_keeps_data(store, device, tmp_path):
    # A plain file does not take BLKDISCARD (ENOTTY): the zero chunk is written as zeros over the old data, so a
    # thin target's restore is right whatever the device does with the discard.
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    target = tmp_path / "target"
    target.write_bytes(b"\xaa" * manifest["size_bytes"])
    result = store.restore(manifest, str(target), discard_zero=True)
    assert result["sha256"] == manifest["sha256"] == sha256_file(target)
    assert result["bytes_written"] == manifest["size_bytes"] and result["chunks_zero"] == 1


def test_a_discarded_range_that_reads_as_zeros_is_not_written(store, device, tmp_path, monkeypatch):
    # Where the discard leaves zeros (dm-thin unmaps the blocks), nothing is written: the pool does not allocate
    # blocks for zeros.
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    target = tmp_path / "target"
    target.write_bytes(bytes(manifest["size_bytes"]))
    calls = []
    monkeypatch.setattr(backup_store.fcntl, "ioctl", lambda fd, request, arg: calls.append((request, arg)))
    result = store.restore(manifest, str(target), discard_zero=True)
    assert [request for request, _arg in calls] == [backup_store.BLKDISCARD]
    assert result["bytes_written"] == manifest["size_bytes"] - CHUNK
    assert result["sha256"] == manifest["sha256"] == sha256_file(target)


def test_restore_of_an_incremental_backup(store, device, tmp_path):
    first = store.backup(device, "db01", "first", chunk_size=CHUNK)
    with open(device, "r+b") as handle:
        handle.seek(5)
        handle.write(b"new")
    second = store.backup(device, "db01", "second", chunk_size=CHUNK, parent=first, ranges=[(5, 3)])
    target = tmp_path / "target"
    target.write_bytes(bytes(second["size_bytes"]))
    assert store.restore(second, str(target))["sha256"] == sha256_file(device)


def test_restore_refuses_before_writing_when_a_chunk_is_missing(store, device, tmp_path):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    os.unlink(store.chunk_path(manifest["chunks"][3]))
    target = tmp_path / "target"
    target.write_bytes(b"\xee" * manifest["size_bytes"])
    with pytest.raises(MissingChunks, match="1 chunk\\(s\\) missing") as info:
        store.restore(manifest, str(target))
    assert info.value.problems == [{"sha256": manifest["chunks"][3], "path": store.chunk_path(manifest["chunks"][3]),
                                    "problem": "missing"}]
    assert target.read_bytes() == b"\xee" * manifest["size_bytes"]  # nothing written


def test_restore_stops_at_a_corrupt_chunk(store, device, tmp_path):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    bad = corrupt(store, manifest["chunks"][3])
    target = tmp_path / "target"
    target.write_bytes(bytes(manifest["size_bytes"]))
    with pytest.raises(MissingChunks, match="stopped at chunk 3") as info:
        store.restore(manifest, str(target))
    assert info.value.problems[0]["path"] == bad
    assert target.read_bytes()[3 * CHUNK:4 * CHUNK] == bytes(CHUNK)  # the corrupt chunk was not written


def test_restore_refuses_a_smaller_target(store, device, tmp_path):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    target = tmp_path / "target"
    target.write_bytes(bytes(CHUNK))
    with pytest.raises(StoreError, match="smaller than backup first"):
        store.restore(manifest, str(target))


# --- manifests ---------------------------------------------------------------------------------------------------

def test_a_damaged_manifest_is_named(store, device):
    store.backup(device, "db01", "first", chunk_size=CHUNK)
    path = store.manifest_path("db01", "first")
    doc = json.loads(open(path).read())
    doc["chunks"][0] = "0" * 64
    open(path, "w").write(json.dumps(doc))
    with pytest.raises(StoreError, match="digest does not match"):
        store.load("db01", "first")
    errors = []
    assert store.manifests(errors=errors) == []
    assert errors[0]["path"] == path


def test_manifests_are_listed_oldest_first(store, device):
    for name, when in (("b", "2026-11-20T10:00:00Z"), ("a", "2026-11-21T10:00:00Z")):
        store.backup(device, "db01", name, chunk_size=CHUNK, created_at=when)
    store.backup(device, "db02", "c", chunk_size=CHUNK, created_at="2026-11-19T10:00:00Z")
    assert [m["name"] for m in store.manifests()] == ["c", "b", "a"]
    assert [m["name"] for m in store.manifests("db01")] == ["b", "a"]
    assert store.manifests("nothing") == []


# --- retention, delete and GC ------------------------------------------------------------------------------------

def manifest(name, when):
    return {"name": name, "created_at": when}


HISTORY = [manifest(n, w) for n, w in (
    ("mon-1", "2026-11-16T01:00:00Z"), ("mon-2", "2026-11-16T13:00:00Z"),  # Monday, ISO week 47
    ("tue", "2026-11-17T01:00:00Z"), ("sun", "2026-11-22T23:00:00Z"),      # Sunday: still week 47
    ("mon-next", "2026-11-23T01:00:00Z"),                                   # week 48
    ("old", "2026-11-01T01:00:00Z"),                                        # week 44
)]


def test_retention_keep_last():
    assert retained(HISTORY, keep_last=2) == {"mon-next", "sun"}


def test_retention_keep_daily_keeps_the_newest_of_each_day():
    assert retained(HISTORY, keep_daily=3) == {"mon-next", "sun", "tue"}
    assert retained(HISTORY, keep_daily=5) == {"mon-next", "sun", "tue", "mon-2", "old"}


def test_retention_keep_weekly_uses_iso_weeks():
    assert retained(HISTORY, keep_weekly=2) == {"mon-next", "sun"}
    assert retained(HISTORY, keep_weekly=3) == {"mon-next", "sun", "old"}


def test_retention_rules_add_up():
    assert retained(HISTORY, keep_last=1, keep_weekly=3) == {"mon-next", "sun", "old"}
    assert retained(HISTORY) == set()


def test_delete_and_gc_keep_the_chunks_other_backups_reference(store, device, tmp_path):
    first = store.backup(device, "db01", "first", chunk_size=CHUNK)
    other = make_device(tmp_path / "other", [pattern(0), pattern(9)])
    second = store.backup(other, "db01", "second", chunk_size=CHUNK)
    result = store.delete([first])
    assert result["deleted"] == ["db01/first"]
    assert result["gc"]["chunks_deleted"] == 3  # chunks 2, 3 and the tail; chunk 0 is second's too
    assert set(chunk_files(store)) == {s for s in second["chunks"] if s}
    assert store.verify([second])["problems"] == []
    assert store.delete([first])["deleted"] == []


def test_gc_removes_stale_temp_files(store, device):
    manifest = store.backup(device, "db01", "first", chunk_size=CHUNK)
    directory = os.path.dirname(store.chunk_path(manifest["chunks"][0]))
    open(os.path.join(directory, ".tmp-abc-123"), "w").close()
    open(os.path.join(store.path, "backups", "db01", ".ember-x.tmp"), "w").close()
    result = store.gc()
    assert result["temp_files_removed"] == 2 and result["chunks_deleted"] == 0
    assert temp_files(store) == []


def test_gc_stops_at_an_unreadable_manifest(store, device):
    store.backup(device, "db01", "first", chunk_size=CHUNK)
    open(store.manifest_path("db01", "broken"), "w").write("{")
    before = chunk_files(store)
    with pytest.raises(StoreError, match="broken.json is not a JSON manifest"):
        store.gc()
    assert chunk_files(store) == before


def test_gc_takes_the_exclusive_lock(store, device):
    store.backup(device, "db01", "first", chunk_size=CHUNK)
    with store.locked():  # a backup or restore running: shared
        with pytest.raises(StoreLockTimeout, match="is locked by another run"):
            ChunkStore(store.path, lock_timeout=0.2).gc()
        # shared holders do not exclude each other
        with ChunkStore(store.path, lock_timeout=0.2).locked():
            pass
    assert store.gc()["chunks_deleted"] == 0


def test_a_backup_waits_for_a_running_gc(store, device):
    with store.locked(exclusive=True):
        with pytest.raises(StoreLockTimeout):
            ChunkStore(store.path, lock_timeout=0.2).backup(device, "db01", "b", chunk_size=CHUNK)


# --- memory ------------------------------------------------------------------------------------------------------

def test_memory_stays_bounded_whatever_the_size(tmp_path):
    mib = 1024 * 1024
    path = tmp_path / "big"
    with open(path, "wb") as handle:
        for index in range(64):
            handle.write(random_bytes(index, 4096) * (mib // 4096))
    one = ChunkStore(str(tmp_path / "store"), workers=2, codec="zlib")
    one.create()
    tracemalloc.start()
    try:
        manifest = one.backup(str(path), "db01", "big", chunk_size=mib)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert manifest["stats"]["bytes_read"] == 64 * mib
    # workers + 1 buffers and the compressed output of each worker: a few chunks, never the volume
    assert peak < 8 * mib, peak


def test_without_the_whole_stream_hash_the_digest_still_covers_the_volume(store, device, tmp_path):
    # The module's default: one SHA-256 pass (per chunk), no plain sha256; the digest is the same as with it, and a
    # restore still returns the plain sha256 of what it wrote.
    light = store.backup(device, "db01", "light", chunk_size=CHUNK, whole_sha256=False)
    full = store.backup(device, "db01", "full", chunk_size=CHUNK)
    assert light["sha256"] is None and full["sha256"] == sha256_file(device)
    assert light["digest"] == full["digest"] and light["chunks"] == full["chunks"]
    target = tmp_path / "target"
    target.write_bytes(b"\x01" * light["size_bytes"])
    assert store.restore(light, str(target))["sha256"] == full["sha256"] == sha256_file(target)

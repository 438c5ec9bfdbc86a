# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup throughput against ``dd bs=4M | sha256sum`` of the same device (design section 9).

Reads DEVICE (a block device or a file; without one, a file of --size bytes is made: half random, half text, in
--dir) three ways and prints each time and its ratio to dd | sha256sum (goal: a backup at least 80 % of its rate):
``dd bs=4M | sha256sum``; a first backup into an empty store (every chunk hashed, compressed and written); the same
backup again (every chunk read and hashed, none written: what a thick incremental does). The page cache is not
dropped: run it on a device larger than the memory, or as root with --drop-caches.

    python3 benchmarks/backup.py [--device /dev/vg/lv] [--size 1GiB] [--chunk-size 4MiB] [--dir /var/tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, ".collections"))

from ansible_collections.ember.blockstore.plugins.module_utils._size import parse_size  # noqa: E402
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.backup_store import ChunkStore  # noqa: E402


def make_file(path, size):
    words = b"the quick brown fox jumps over the lazy dog %d\n"
    with open(path, "wb") as handle:
        done = 0
        while done < size:
            block = os.urandom(1 << 20) if (done // (1 << 20)) % 2 else b"".join(
                words % n for n in range(done, done + 30000))[:1 << 20]
            handle.write(block[:size - done])
            done += len(block[:size - done])


def timed(func):
    start = time.monotonic()
    func()
    return time.monotonic() - start


def drop_caches(enabled):
    if enabled:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as handle:
            handle.write("3\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device")
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--chunk-size", default="4MiB")
    parser.add_argument("--dir", default=tempfile.gettempdir())
    parser.add_argument("--drop-caches", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ember-backup-bench-", dir=args.dir)
    try:
        device = args.device
        if not device:
            device = os.path.join(work, "device")
            make_file(device, parse_size(args.size, "--size"))
        store = ChunkStore(os.path.join(work, "store"))
        store.create()
        chunk = parse_size(args.chunk_size, "--chunk-size")
        drop_caches(args.drop_caches)
        base = timed(lambda: subprocess.run("dd if=%s bs=4M status=none | sha256sum >/dev/null" % device,
                                            shell=True, check=True))
        drop_caches(args.drop_caches)
        # As the backup module runs it (whole_sha256 off: one hash pass per chunk).
        first = timed(lambda: store.backup(device, "bench", "first", chunk_size=chunk, whole_sha256=False))
        drop_caches(args.drop_caches)
        again = timed(lambda: store.backup(device, "bench", "again", chunk_size=chunk, whole_sha256=False))
        print("codec %s, workers %d, chunk %d bytes, device %s" % (store.codec, store.workers, chunk, device))
        for label, seconds in (("dd bs=4M | sha256sum", base), ("first backup", first), ("backup again", again)):
            print("%-22s %8.2f s   %5.0f %% of dd | sha256sum's rate" % (label, seconds, 100.0 * base / seconds))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

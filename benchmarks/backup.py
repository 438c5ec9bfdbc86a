# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup throughput against ``dd bs=4M | sha256sum`` of the same device (design section 9).

Reads DEVICE (a block device or a file; without one, a file of --size bytes is made: half random, half text, in
--dir) three ways and prints each time and its ratio to dd | sha256sum (goal: a backup at least 80 % of its rate):
``dd bs=4M | sha256sum``; a first backup into an empty store (every chunk hashed, compressed and written); the same
backup again (every chunk read and hashed, none written: what a thick incremental does). The page cache is not
dropped: run it on a device larger than the memory, or as root with --drop-caches. The three run --rounds times
(default 2), alternating, and the best time of each is compared (the lab's emulated VMs share two host CPUs: one
round's baseline varied from 45 to 82 s across runs).

    python3 benchmarks/backup.py [--device /dev/vg/lv] [--size 1GiB] [--chunk-size 4MiB] [--dir /var/tmp]
                                 [--rounds 2]
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
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="ember-backup-bench-", dir=args.dir)
    try:
        device = args.device
        if not device:
            device = os.path.join(work, "device")
            make_file(device, parse_size(args.size, "--size"))
        chunk = parse_size(args.chunk_size, "--chunk-size")
        times = {"dd bs=4M | sha256sum": [], "first backup": [], "backup again": []}
        codec = workers = None
        for round_ in range(args.rounds):
            # Each round: the baseline, a first backup into an empty store, the same backup again (rounds
            # alternate, so a slow spell of the machine hits both sides; the best of each is compared).
            store = ChunkStore(os.path.join(work, "store-%d" % round_))
            store.create()
            codec, workers = store.codec, store.workers
            drop_caches(args.drop_caches)
            times["dd bs=4M | sha256sum"].append(timed(lambda: subprocess.run(
                "dd if=%s bs=4M status=none | sha256sum >/dev/null" % device, shell=True, check=True)))
            drop_caches(args.drop_caches)
            # As the backup module runs it (whole_sha256 off: one hash pass per chunk).
            times["first backup"].append(timed(lambda: store.backup(device, "bench", "first", chunk_size=chunk,
                                                                    whole_sha256=False)))
            drop_caches(args.drop_caches)
            times["backup again"].append(timed(lambda: store.backup(device, "bench", "again", chunk_size=chunk,
                                                                    whole_sha256=False)))
            shutil.rmtree(store.path, ignore_errors=True)
        print("codec %s, workers %d, chunk %d bytes, device %s, %d rounds (best of each compared)"
              % (codec, workers, chunk, device, args.rounds))
        base = min(times["dd bs=4M | sha256sum"])
        for label, seconds in times.items():
            print("%-22s %8.2f s   %5.0f %% of dd | sha256sum's rate   (rounds: %s s)"
                  % (label, min(seconds), 100.0 * base / min(seconds), ", ".join("%.1f" % t for t in seconds)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scheduler scale benchmark: plan N new volumes (plus 1,000 existing ones to keep or extend) over 1,000 pools.

Prints, for N = 10,000 and 100,000: the wall time of plan() (best of ``--repeat`` runs, without tracing), its
peak Python memory (tracemalloc, in a separate run since tracing slows it down), and the ratio of the per-volume
times of the two sizes (1.0 = linear). Goal: under 1 s for 10,000 x 1,000.

    python3 benchmarks/scheduler.py [--repeat 3] [--sizes 10000,100000] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "ember", "blockstore")
if not os.path.islink(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.join("..", "..", ".."), LINK)
sys.path.insert(0, COLLECTIONS)

from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan  # noqa: E402

GiB, TiB = 2**30, 2**40
POOLS = 1000
TYPES = {
    "fast": {"extra_specs": {"thin_provisioning_support": "<is> True"}},
    "bulk": {"extra_specs": {"volume_backend_name": "lvm"}},
}


def workload(volumes):
    """1,000 pools over 3 zones (half thin with ratio 20 or auto, 10% reserved, 3 volumes each) and ``volumes``
    new volumes of 1-50 GiB, half thin, a fifth asking for a zone; 1,000 existing volumes (500 extended)."""
    pools = []
    for i in range(POOLS):
        thin = bool(i % 2)
        pools.append({
            "id": f"stor{i:04d}@{'lvm-thin' if thin else 'lvm'}", "host": f"stor{i:04d}",
            "backend": "lvm-thin" if thin else "lvm", "driver": "lvm_thin" if thin else "lvm", "vg": "ember",
            "thin_pool": "thinpool" if thin else None, "extent_size_bytes": 4 * 2**20,
            "total_bytes": 100 * TiB, "free_bytes": (50000 + i) * GiB,
            "allocated_bytes": 100 * TiB - (50000 + i) * GiB,
            "provisioned_bytes": 1000 * GiB if thin else 100 * TiB - (50000 + i) * GiB,
            "capabilities": {"volume_backend_name": "lvm-thin" if thin else "lvm", "thin_provisioning_support": thin,
                             "availability_zone": f"az{i % 3}", "reserved_percentage": 10,
                             "max_over_subscription_ratio": "auto" if i % 4 == 1 else 20.0},
            "volumes": [{"name": f"ex-{i}-{j}", "size_bytes": 10 * GiB, "volume_type": "fast"} for j in range(3)],
        })
    vols = [{"name": f"v{i:06d}", "size": 1 + i % 50, "volume_type": "fast" if i % 2 else "bulk",
             **({"availability_zone": f"az{i % 3}"} if i % 5 == 0 else {})} for i in range(volumes)]
    vols += [{"name": f"ex-{i}-0", "size": 10 + i % 2, "volume_type": "fast"} for i in range(POOLS)]
    return vols, pools


def timed(vols, pools, repeat):
    best = None
    for _run in range(repeat):
        gc.collect()
        start = time.perf_counter()
        result = plan(vols, pools, TYPES)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    creates = sum(v["action"] == "create" for v in result["volumes"])
    return best, creates


def peak_memory(vols, pools):
    gc.collect()
    tracemalloc.start()
    plan(vols, pools, TYPES)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--profile", action="store_true", help="print the top functions of a 10,000 run")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    per_volume = {}
    print(f"scheduler: N new volumes + {POOLS} existing over {POOLS} pools (python {sys.version.split()[0]})")
    for n in sizes:
        vols, pools = workload(n)
        seconds, creates = timed(vols, pools, args.repeat)
        assert creates == n, creates
        peak = peak_memory(vols, pools)
        per_volume[n] = seconds / n
        goal = "  (goal < 1 s)" if n == 10000 else ""
        print(f"{n:>7} x {POOLS}: {seconds:6.3f} s{goal}   peak memory {peak / 2**20:7.1f} MiB")
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        print(f"per-volume time {large} vs {small}: ratio {per_volume[large] / per_volume[small]:.2f} "
              "(1.0 = linear)")
    if args.profile:
        vols, pools = workload(sizes[0])
        profiler = cProfile.Profile()
        profiler.runcall(plan, vols, pools, TYPES)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    main()

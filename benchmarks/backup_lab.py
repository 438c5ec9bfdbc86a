# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups on the lab (issue 13's benchmark): throughput and incremental cost, measured in one run.

With the lab up (make lab), on one storage node:

1. a thin volume ``benchbk01`` of --size (default 1 GiB) is made with the volume module and filled with random data;
2. ``benchmarks/backup.py --device <it> --drop-caches`` runs on the node (the collection copied there): the backup
   store's full backup against ``dd bs=4M | sha256sum`` of the same device, as a ratio (goal >= 80 %);
3. the backup module takes a full backup (``is_incremental``, a kept thin base), --change (default 1 %) of the
   volume is overwritten with random data, and the module takes an incremental backup: its ``bytes_read`` and
   ``bytes_written`` as ratios of the volume's size (goals <= 5 % and <= 1.5 %);
4. the backups, the store and the volume are removed.

    python3 benchmarks/backup_lab.py [--node stor1] [--vg ember-thin] [--pool thinpool] [--size 1GiB] [--change 0.01]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STORE = "/var/tmp/ember-bench-store"
NAME = "benchbk01"


def ssh(node, command, check=True):
    proc = subprocess.run([os.path.join(ROOT, "lab", "ssh.sh"), node, command], capture_output=True, text=True,
                          check=False)
    if check and proc.returncode != 0:
        sys.exit("%s: %s failed: %s" % (node, command, proc.stderr.strip()))
    return proc.stdout


def module(node, name, args, work):
    """One module run on ``node`` (a playbook of one task, JSON callback); returns the task's result."""
    path = os.path.join(work, "task.yml")
    with open(path, "w") as handle:
        json.dump([{"hosts": node, "gather_facts": False,
                    "tasks": [{"name": "bench", "ember.blockstore.%s" % name: args}]}], handle)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json")
    proc = subprocess.run(["ansible-playbook", "-i", os.path.join(ROOT, "inventories", "lab"), path],
                          capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    data = json.loads(proc.stdout[proc.stdout.find("{"):])
    result = data["plays"][0]["tasks"][0]["hosts"][node]
    if result.get("failed"):
        sys.exit("%s on %s failed: %s" % (name, node, result.get("msg")))
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", default="stor1")
    parser.add_argument("--vg", default="ember-thin")
    parser.add_argument("--pool", default="thinpool")
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--change", type=float, default=0.01)
    args = parser.parse_args()
    node = args.node
    work = tempfile.mkdtemp(prefix="ember-bench-")
    volume = {"name": NAME, "vg": args.vg, "thin_pool": args.pool, "size": args.size}
    made = module(node, "volume", dict(volume, state="present"), work)
    size = made["volumes"][0]["size_bytes"] if "volumes" in made else made["volume"]["size_bytes"]
    device = "/dev/%s/volume-%s" % (args.vg, NAME)
    try:
        ssh(node, "dd if=/dev/urandom of=%s bs=4M count=%d oflag=direct status=none" % (device, size // (4 << 20)))
        # The store's engine on the node itself, against dd | sha256sum of the same device.
        remote = "/var/tmp/ember-bench-src"
        tar = subprocess.run("tar -C %s -cf - --exclude=.venv --exclude=.git --exclude=build --exclude=.collections "
                             "plugins benchmarks galaxy.yml" % ROOT, shell=True, capture_output=True, check=True)
        subprocess.run([os.path.join(ROOT, "lab", "ssh.sh"), node,
                        "rm -rf %s && mkdir -p %s/.collections/ansible_collections/ember && ln -s ../../.. %s/"
                        ".collections/ansible_collections/ember/blockstore && tar -C %s -xf -"
                        % (remote, remote, remote, remote)],
                       input=tar.stdout, check=True, capture_output=True)
        engine = ssh(node, "python3 %s/benchmarks/backup.py --device %s --drop-caches --dir /var/tmp"
                     % (remote, device))
        print(engine.rstrip())
        first = re.search(r"first backup\s+[\d.]+ s\s+(\d+) %", engine)
        # Incremental through the backup module: full, change, incremental.
        base = {"store": STORE, "volume": NAME, "vg": args.vg, "is_incremental": True}
        full = module(node, "backup", dict(base, name="full"), work)["backups"][0]
        changed_mib = max(1, int(size * args.change) // (1 << 20))
        ssh(node, "dd if=/dev/urandom of=%s bs=1M seek=%d count=%d oflag=direct conv=notrunc status=none"
            % (device, size // (1 << 20) // 2, changed_mib))
        incr = module(node, "backup", dict(base, name="incr"), work)["backups"][0]
        stats = incr["stats"]
        print("full backup by the module: read %d, wrote %d bytes"
              % (full["stats"]["bytes_read"], full["stats"]["bytes_written"]))
        print("incremental after changing %d MiB (%.2f %% of %d bytes): incremental=%s, parent=%s"
              % (changed_mib, 100.0 * changed_mib * (1 << 20) / size, size, incr["incremental"], incr["parent"]))
        print("  read    %10d bytes = %.2f %% of the volume (goal <= 5 %%)"
              % (stats["bytes_read"], 100.0 * stats["bytes_read"] / size))
        print("  written %10d bytes = %.2f %% of the volume (goal <= 1.5 %%)" % (
            stats["bytes_written"], 100.0 * stats["bytes_written"] / size))
        if first:
            print("full backup throughput: %s %% of dd bs=4M | sha256sum (goal >= 80 %%)" % first.group(1))
    finally:
        module(node, "backup", {"store": STORE, "volume": NAME, "vg": args.vg, "state": "absent", "keep_last": 1},
               work)
        ssh(node, "rm -rf %s /var/tmp/ember-bench-src; lvremove -q -y $(lvs --noheadings -o vg_name,lv_name "
                  "--separator / %s | tr -d ' ' | grep -E 'bk(base|tmp)-%s' ) 2>/dev/null; true"
            % (STORE, args.vg, NAME), check=False)
        module(node, "volume", dict(volume, state="absent", volume_clear="none"), work)


if __name__ == "__main__":
    main()

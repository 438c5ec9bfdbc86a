# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge benchmark on the lab: what a user waits for when site.yml creates N volumes, against baselines measured
in the same run.

For each N (default 20, 50, 100), N thick volumes of ``--size-mib`` MiB named ``bench<N>-<i>``, half on each storage
node (in the thick VG of the ``bulk`` volume type, ``ember-thick`` in the lab), timed as the wall clock of the whole
process:

  ping         a one-task ansible-playbook (ansible.builtin.ping) against the storage group
  lvol loop    a generated play looping community.general.lvol over each node's N/2 LVs (nodes in parallel)
  raw floor    the same LVs (same names, size and tags as the volume module) through one ``lvm`` shell per node
               over one SSH session each, nodes in parallel
  site create  playbooks/site.yml with the inventory's volumes plus the N new ones (extra vars, -e @file)
  site no-op   the same run again (must change nothing)
  site delete  site.yml with the N volumes ``state: absent`` (zeroes them first): reported, not in the ratios

The LVs of the lvol loop and the floor are removed after each (one SSH per node, not timed) and the site.yml rows
end with the delete, so the lab is back where it was. Prints the table, the ratios noop/ping, lvol/site and
site/(floor+ping), the marginal seconds per volume, and the acceptance checks at the largest N (exit status 2 when
one is missed, 1 when a step fails).

    python3 benchmarks/converge.py [--sizes 20,50,100] [--inventory inventories/lab] [--write docs/benchmarks.md]
                                   [--keep] [--dry-run] [--size-mib 32] [--mitogen PATH]

Needs the lab up (``make lab``) and the project's virtual environment (ansible-playbook is looked up in
$VIRTUAL_ENV, then .venv in the checkout, then PATH). ``--dry-run`` prints every command and generated file without
running anything against the hosts. ``--mitogen PATH`` (an unpacked mitogen 0.3.x release that supports the
installed ansible-core) repeats the ping and site.yml rows with its ``mitogen_linear`` strategy: a user option,
never a dependency. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "ember", "blockstore")
# Run as a script: the checkout is the collection (as in benchmarks/scheduler.py). Imported by the unit tests: the
# copy under test is already imported and sys.path is left alone.
if "ansible_collections.ember.blockstore" not in sys.modules:
    if not os.path.islink(LINK):
        os.makedirs(os.path.dirname(LINK), exist_ok=True)
        os.symlink(os.path.join("..", "..", ".."), LINK)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)

# The volume module's own naming and tags: the raw floor creates exactly the LVs site.yml creates.
from ansible_collections.ember.blockstore.plugins.module_utils._naming import lv_name  # noqa: E402
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm  # noqa: E402

DEFAULT_SIZES = (20, 50, 100)
# 64 MiB x 50 per node does not fit the lab's thick pools next to the inventory's own volumes (4 GiB disk, 5%
# reserved, scratch01 + logs01/web01: 48 fit on the fuller node); lvcreate of a thick LV costs the same at any size.
DEFAULT_SIZE_MIB = 32
VOLUME_TYPE = "bulk"
STORAGE_GROUP = "blockstore_storage"
# Used by --dry-run when the inventory has no hosts (no hosts.yml: the lab is down): the lab's facts.
LAB_FALLBACK_NODES = (("stor1", "az1", 2201), ("stor2", "az2", 2202))
LAB_FALLBACK_BACKEND = {"name": "lvm-thick", "vg": "ember-thick"}
TIMED = ("ping", "lvol", "floor", "site_create", "site_noop", "site_delete")
HEADINGS = {"ping": "ping", "lvol": "lvol loop", "floor": "raw floor", "site_create": "site create",
            "site_noop": "site no-op", "site_delete": "site delete"}
# Acceptance (issue 9) at the largest N: (ratio, comparison, bound).
GOALS = (("noop/ping", "<=", 2.0, "no-op site.yml <= 2x the ping play"),
         ("lvol/site", ">=", 8.0, "creating N volumes >= 8x faster than the lvol loop"),
         ("site/(floor+ping)", "<=", 1.5, "creating N volumes <= 1.5x the raw floor plus one ping play"))
BEGIN = "<!-- converge.py results: begin (replaced by benchmarks/converge.py --write) -->"
END = "<!-- converge.py results: end -->"
ANSIBLE_ENV = {"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json", "ANSIBLE_FORCE_COLOR": "0"}


class BenchError(Exception):
    pass


# ----------------------------------------------------------------------------------------------------------------
# Pure parts: names, generated files, commands, ratios, table (unit-tested in tests/unit/test_benchmark_converge.py)

def parse_sizes(text):
    sizes = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 2 or int(part) % 2:
            raise BenchError("--sizes: %r is not an even number >= 2 (half the volumes go to each node)" % part)
        sizes.append(int(part))
    if len(set(sizes)) != len(sizes):
        raise BenchError("--sizes: %s repeats a size" % text)
    return sorted(sizes)


def bench_names(n, nodes):
    """``{node: [volume names]}``: ``bench<n>-0`` .. ``bench<n>-<n-1>``, split in equal consecutive parts."""
    if n % len(nodes):
        raise BenchError("%d volumes do not split evenly over %d nodes" % (n, len(nodes)))
    per = n // len(nodes)
    return {node["name"]: ["bench%d-%d" % (n, i) for i in range(k * per, (k + 1) * per)]
            for k, node in enumerate(nodes)}


def bench_volume_pattern(n=None):
    """ERE matching the LV names of the benchmark's volumes (of one N, or of any N)."""
    return "^%sbench%s-[0-9]+$" % (lv_name(""), n if n is not None else "[0-9]+")


def clashing_names(inventory_volumes):
    """Inventory volumes whose names the benchmark would use (it refuses to run then)."""
    pattern = re.compile(r"^bench[0-9]+-[0-9]+$")
    return [v.get("name") for v in inventory_volumes if pattern.match(str(v.get("name", "")))]


def site_extra_vars(inventory_volumes, n, nodes, size_mib, state="present"):
    """Extra vars for site.yml: the inventory's volumes unchanged plus the benchmark's, each pinned to its node by
    the node's availability zone (``state: absent`` for the delete run)."""
    volumes = [dict(v) for v in inventory_volumes]
    names = bench_names(n, nodes)
    for node in nodes:
        for name in names[node["name"]]:
            vol = {"name": name, "size": "%dMiB" % size_mib, "volume_type": VOLUME_TYPE,
                   "availability_zone": node["zone"]}
            if state != "present":
                vol["state"] = state
            volumes.append(vol)
    return {"blockstore_volumes": volumes}


def vars_json(data):
    """JSON for ``-e @file`` with one list item per line (readable in --dry-run and in the work directory)."""
    lines = []
    for key, value in data.items():
        if isinstance(value, list):
            items = ",\n".join("    " + json.dumps(item, sort_keys=True) for item in value)
            lines.append("  %s: [\n%s\n  ]" % (json.dumps(key), items))
        else:
            lines.append("  %s: %s" % (json.dumps(key), json.dumps(value, sort_keys=True)))
    return "{\n" + ",\n".join(lines) + "\n}\n"


def lvol_extra_vars(n, nodes, size_mib):
    names = bench_names(n, nodes)
    return {"bench_size": "%dm" % size_mib,
            "bench_lvs": {node["name"]: {"vg": node["vg"], "lvs": [lv_name(v) for v in names[node["name"]]]}
                          for node in nodes}}


def ping_playbook():
    return """---
# Generated by benchmarks/converge.py: the baseline, one module run per storage node.
- name: Ping the storage nodes
  hosts: %s
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
""" % STORAGE_GROUP


def lvol_playbook():
    return """---
# Generated by benchmarks/converge.py: one community.general.lvol module run per LV, nodes in parallel.
- name: Create the benchmark LVs with community.general.lvol
  hosts: %s
  gather_facts: false
  tasks:
    - name: One lvol per LV
      community.general.lvol:
        vg: "{{ bench_lvs[inventory_hostname].vg }}"
        lv: "{{ item }}"
        size: "{{ bench_size }}"
      loop: "{{ bench_lvs[inventory_hostname].lvs }}"
""" % STORAGE_GROUP


def lvm_shell_script(names, vg, size_mib, backend):
    """stdin of ``lvm`` on one node: the ``lvcreate`` the volume module runs for each volume (drivers/lvm.py
    ``Lvm.create``: same options, tags and size in bytes), one line each."""
    lines = []
    for name in names:
        args = ["lvcreate", "--yes", "--wipesignatures", "y", "-n", lv_name(name)]
        for tag in Lvm.tags(name, VOLUME_TYPE, backend):
            args += ["--addtag", tag]
        args += ["--size", "%db" % (size_mib * 2**20), vg]
        lines.append(" ".join(args))
    return "\n".join(lines) + "\n"


# The floor: one SSH session per node, lvm reads the lvcreate lines from stdin; one udev settle at the end (the
# module settles after each LV).
FLOOR_REMOTE = "lvm >/dev/null && udevadm settle --timeout=30"


def bench_lvs_script(vg, pattern, remove):
    """``sh -s`` script for one node: counts the LVs of ``vg`` matching ``pattern`` and, with ``remove``, removes
    them (``lvremove -f``, retried after a udev settle as drivers/lvm.py does).
    Prints ``bench-lvs before=B after=A``."""
    lines = ["vg=%s" % shlex.quote(vg), "pattern=%s" % shlex.quote(pattern),
             "bench_lvs() { lvs --noheadings -o lv_name \"$vg\" | awk -v p=\"$pattern\" -v vg=\"$vg\" "
             "'$1 ~ p {print vg \"/\" $1}'; }",
             "vgs \"$vg\" >/dev/null || exit 3",
             "before=$(bench_lvs | wc -l)"]
    if remove:
        lines += ["for attempt in 1 2 3; do",
                  "  set -- $(bench_lvs)",
                  "  [ $# -eq 0 ] && break",
                  "  lvremove -f \"$@\" >/dev/null",
                  "  udevadm settle --timeout=30",
                  "done"]
    lines.append("echo \"bench-lvs before=$before after=$(bench_lvs | wc -l)\"")
    return "\n".join(lines) + "\n"


def parse_bench_lvs(stdout):
    """``(before, after)`` from the output of :func:`bench_lvs_script`, or None when it did not print its line."""
    match = re.search(r"^bench-lvs before=\s*(\d+) after=\s*(\d+)\s*$", stdout or "", re.M)
    return (int(match.group(1)), int(match.group(2))) if match else None


def ssh_argv(node, ssh_options, remote):
    target = "%s@%s" % (node["user"], node["host"])
    port = ["-o", "ConnectTimeout=10", "-p", str(node["port"])]
    return ["ssh", "-i", node["key"]] + list(ssh_options) + port + [target, remote]


def playbook_argv(ansible_playbook, inventory, playbook, extra_vars_file=None):
    argv = [ansible_playbook, "-i", inventory, playbook]
    if extra_vars_file:
        argv += ["-e", "@" + extra_vars_file]
    return argv


def mitogen_env(path):
    """Environment for Mitogen's strategy from an unpacked release (``<path>/ansible_mitogen/plugins/strategy``)."""
    return {"ANSIBLE_STRATEGY_PLUGINS": os.path.join(os.path.abspath(path), "ansible_mitogen", "plugins", "strategy"),
            "ANSIBLE_STRATEGY": "mitogen_linear"}


def inventory_facts(export, ssh_options_default, volume_type=VOLUME_TYPE):
    """What the benchmark needs from ``ansible-inventory --list --export``: the storage nodes (SSH address, port,
    user, key; the VG, backend name and zone of the backend that ``volume_type`` selects), the inventory's
    volumes and SSH options. Raises BenchError when the inventory has no storage node."""
    all_vars = export.get("all", {}).get("vars", {})
    hostvars = export.get("_meta", {}).get("hostvars", {})
    hosts = export.get(STORAGE_GROUP, {}).get("hosts", [])
    types = all_vars.get("blockstore_volume_types") or {}
    backend_name = ((types.get(volume_type) or {}).get("extra_specs") or {}).get("volume_backend_name")
    if not hosts:
        raise BenchError("the inventory has no host in %s" % STORAGE_GROUP)
    if not backend_name:
        raise BenchError("volume type %r has no extra_specs.volume_backend_name in the inventory" % volume_type)
    common = all_vars.get("ansible_ssh_common_args")
    nodes = []
    for host in sorted(hosts):
        hv = dict(all_vars, **hostvars.get(host, {}))
        matching = [b for b in hv.get("blockstore_backends") or []
                    if b.get("volume_backend_name", b.get("name")) == backend_name and b.get("driver", "lvm") == "lvm"]
        if len(matching) != 1:
            raise BenchError("%s: expected one thick backend with volume_backend_name %s, found %d"
                             % (host, backend_name, len(matching)))
        backend = matching[0]
        nodes.append({"name": host, "host": hv.get("ansible_host", host), "port": hv.get("ansible_port", 22),
                      "user": hv.get("ansible_user", "root"),
                      "key": os.path.expanduser(hv.get("ansible_ssh_private_key_file", "~/.ssh/id_rsa")),
                      "vg": backend["vg"], "backend": backend["name"],
                      "zone": backend.get("availability_zone", "nova")})
    zones = [n["zone"] for n in nodes]
    if len(set(zones)) != len(zones):
        raise BenchError("the storage nodes share availability zones (%s): the volumes cannot be pinned to a node"
                         % ", ".join(zones))
    return {"nodes": nodes, "volumes": all_vars.get("blockstore_volumes") or [],
            "ssh_options": shlex.split(common) if common else list(ssh_options_default)}


def fallback_facts(export, ssh_options_default):
    """--dry-run without a lab: the inventory's volumes with the lab's nodes (ports are placeholders)."""
    all_vars = export.get("all", {}).get("vars", {})
    nodes = [{"name": name, "host": "127.0.0.1", "port": port, "user": "root",
              "key": os.path.join(lab_cache_dir(), "id_ed25519"), "vg": LAB_FALLBACK_BACKEND["vg"],
              "backend": LAB_FALLBACK_BACKEND["name"], "zone": zone} for name, zone, port in LAB_FALLBACK_NODES]
    return {"nodes": nodes, "volumes": all_vars.get("blockstore_volumes") or [],
            "ssh_options": list(ssh_options_default)}


def lab_cache_dir():
    """$LAB_CACHE of lab/common.sh."""
    return os.environ.get("EMBER_LAB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ember-blockstore")


def lab_ssh_options(text):
    """The ``LAB_SSH_OPTS=( ... )`` block of lab/common.sh as a list."""
    match = re.search(r"^LAB_SSH_OPTS=\(\n(.*?)^\)", text, re.M | re.S)
    if not match:
        raise BenchError("no LAB_SSH_OPTS=( ... ) block in lab/common.sh")
    options = []
    for line in match.group(1).splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            options.extend(line.split())
    return options


def accelerator(qemu_cmdline):
    """KVM or TCG from a lab VM's QEMU command line ($LAB_RUN/<vm>.cmd, written by lab/up.sh)."""
    words = shlex.split(qemu_cmdline or "")
    for i, word in enumerate(words[:-1]):
        if word == "-accel":
            kind = words[i + 1].split(",")[0]
            return {"kvm": "KVM", "tcg": "TCG"}.get(kind, kind)
    return "unknown"


def vm_resources(qemu_cmdline):
    words = shlex.split(qemu_cmdline or "")
    found = {words[i]: words[i + 1] for i in range(len(words) - 1) if words[i] in ("-m", "-smp")}
    if not found:
        return ""
    return "%s vCPU, %s MiB" % (found.get("-smp", "?"), found.get("-m", "?"))


def ansible_core_version(text):
    match = re.search(r"\[core ([^\]]+)\]", text or "")
    return match.group(1) if match else "unknown"


def ratio(numerator, denominator):
    if numerator is None or denominator is None or denominator <= 0:
        return None
    return numerator / denominator


def row_ratios(row):
    floor_ping = None if row.get("floor") is None or row.get("ping") is None else row["floor"] + row["ping"]
    return {"noop/ping": ratio(row.get("site_noop"), row.get("ping")),
            "lvol/site": ratio(row.get("lvol"), row.get("site_create")),
            "site/(floor+ping)": ratio(row.get("site_create"), floor_ping)}


def slope(rows, key):
    """Marginal seconds per volume of ``key`` between the smallest and the largest N (None with one N)."""
    have = sorted((r["n"], r[key]) for r in rows if r.get(key) is not None)
    if len(have) < 2 or have[0][0] == have[-1][0]:
        return None
    (n0, t0), (n1, t1) = have[0], have[-1]
    return (t1 - t0) / (n1 - n0)


def _cell(value, width, digits=1):
    return ("-" if value is None else "%.*f" % (digits, value)).rjust(width)


def format_table(rows, columns=TIMED):
    """Plain-text table: N, the seconds of ``columns``, the three ratios; then the marginal seconds per volume."""
    ratio_names = [goal[0] for goal in GOALS]
    heads = ["N"] + [HEADINGS[c] for c in columns] + ratio_names
    widths = [max(5, len(h)) for h in heads]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths))]
    for row in rows:
        ratios = row_ratios(row)
        cells = [str(row["n"]).rjust(widths[0])]
        cells += [_cell(row.get(c), w) for c, w in zip(columns, widths[1:])]
        cells += [_cell(ratios[name], w, 2) for name, w in zip(ratio_names, widths[1 + len(columns):])]
        lines.append("  ".join(cells))
    slopes = [(HEADINGS[key], slope(rows, key)) for key in ("lvol", "floor", "site_create") if key in columns]
    slopes = [(name, value) for name, value in slopes if value is not None]
    if slopes:
        lines.append("marginal seconds per volume (N %d -> %d): %s" % (
            min(r["n"] for r in rows), max(r["n"] for r in rows),
            ", ".join("%s %.3f" % (name, value) for name, value in slopes)))
    return "\n".join(lines) + "\n"


def acceptance(rows):
    """``[(text, ratio name, value, ok)]`` of the issue's goals at the largest N (ok None when not measured)."""
    row = max(rows, key=lambda r: r["n"])
    ratios = row_ratios(row)
    out = []
    for name, op, bound, text in GOALS:
        value = ratios[name]
        ok = None if value is None else (value <= bound if op == "<=" else value >= bound)
        out.append(("N=%d: %s (%s %s %s)" % (row["n"], text, name, op, bound), name, value, ok))
    return out


def format_acceptance(rows):
    lines = []
    for text, _name, value, ok in acceptance(rows):
        verdict = "not measured" if ok is None else ("%.2f PASS" % value if ok else "%.2f FAIL" % value)
        lines.append("%s: %s" % (text, verdict))
    return "\n".join(lines) + "\n"


def results_section(meta, tables):
    """The block --write puts between the markers of docs/benchmarks.md."""
    text = [BEGIN, "", "Measured %(date)s on %(machine)s, %(cpus)s CPUs (%(cpu_model)s); lab VMs under %(accel)s "
            "(%(vm)s each); ansible-core %(ansible_core)s, Python %(python)s; %(size_mib)d MiB thick volumes, "
            "half on each of %(nodes)s." % meta, ""]
    for title, body in tables:
        text += ["%s:" % title, "", "```text", body.rstrip("\n"), "```", ""]
    text.append(END)
    return "\n".join(text) + "\n"


def replace_section(doc, section):
    """``doc`` with the text between BEGIN and END (markers included) replaced by ``section``, or with ``section``
    appended when the markers are missing."""
    start, end = doc.find(BEGIN), doc.find(END)
    if start >= 0 and end > start:
        return doc[:start] + section + doc[end + len(END):].lstrip("\n")
    return doc.rstrip("\n") + "\n\n" + section if doc.strip() else section


# ----------------------------------------------------------------------------------------------------------------
# Steps: what the run does, as data (printed by --dry-run, executed otherwise)

def step(label, kind, **fields):
    base = {"label": label, "kind": kind, "timed": None, "argv": None, "argvs": None, "stdin": None, "env": {},
            "expect_lvs": None, "expect_changed": None}
    base.update(fields)
    return base


def build_plan(facts, sizes, workdir, ansible_playbook, inventory, size_mib, mitogen=None):
    """``(files, phases)``: the files to write (``{path: text}``) and the phases; each phase is
    ``{"n", "name", "steps", "cleanup"}`` (cleanup runs when a step fails)."""
    nodes, ssh_options = facts["nodes"], facts["ssh_options"]
    site = os.path.join(ROOT, "playbooks", "site.yml")
    files = {os.path.join(workdir, "ping.yml"): ping_playbook(), os.path.join(workdir, "lvol.yml"): lvol_playbook()}

    def sh(pattern, remove, stem):
        """The count (or remove) script of each node, also written as a file (named after the VG) for reading."""
        scripts = {}
        for node in nodes:
            scripts[node["name"]] = bench_lvs_script(node["vg"], pattern, remove)
            files[os.path.join(workdir, "%s-%s.sh" % (stem, node["vg"]))] = scripts[node["name"]]
        return scripts

    def ssh_all(remote):
        return {node["name"]: ssh_argv(node, ssh_options, remote) for node in nodes}

    def pb(playbook, extra=None):
        return playbook_argv(ansible_playbook, inventory, playbook, extra)

    phases = [{"n": None, "name": "preflight", "cleanup": [], "steps": [
        step("SSH to each storage node; its VG; no benchmark LVs left from an earlier run", "ssh",
             argvs=ssh_all("sh -s"), stdin=sh(bench_volume_pattern(), False, "preflight-count"),
             expect_lvs=(0, 0)),
        step("warm-up: site.yml with the inventory as it is (converges it, opens the SSH control connections)",
             "playbook", argv=pb(site)),
    ]}]
    variants = [("", {})] + ([(" (mitogen)", mitogen_env(mitogen))] if mitogen else [])
    for n in sizes:
        per_node = n // len(nodes)
        pattern = bench_volume_pattern(n)
        lvol_vars = os.path.join(workdir, "n%d-lvol-vars.json" % n)
        files[lvol_vars] = vars_json(lvol_extra_vars(n, nodes, size_mib))
        names = bench_names(n, nodes)
        floor = {node["name"]: lvm_shell_script(names[node["name"]], node["vg"], size_mib, node["backend"])
                 for node in nodes}
        for node in nodes:
            files[os.path.join(workdir, "n%d-%s-floor.lvm" % (n, node["name"]))] = floor[node["name"]]
        create_vars = os.path.join(workdir, "n%d-site-create.json" % n)
        delete_vars = os.path.join(workdir, "n%d-site-delete.json" % n)
        files[create_vars] = vars_json(site_extra_vars(facts["volumes"], n, nodes, size_mib))
        files[delete_vars] = vars_json(site_extra_vars(facts["volumes"], n, nodes, size_mib, "absent"))
        remove = step("remove the N=%d LVs (lvremove -f, one SSH per node, not timed)" % n, "ssh",
                      argvs=ssh_all("sh -s"), stdin=sh(pattern, True, "n%d-remove" % n))
        site_delete_untimed = step("cleanup: site.yml with the N=%d volumes absent" % n, "playbook",
                                   argv=pb(site, delete_vars))
        phases.append({"n": n, "name": "ping", "cleanup": [], "steps": [
            step("ping play", "playbook", argv=pb(os.path.join(workdir, "ping.yml")), timed="ping")]})
        phases.append({"n": n, "name": "lvol", "cleanup": [remove], "steps": [
            step("lvol loop: %d LVs per node" % per_node, "playbook",
                 argv=pb(os.path.join(workdir, "lvol.yml"), lvol_vars),
                 timed="lvol", expect_changed=True),
            dict(remove, expect_lvs=(per_node, 0))]})
        phases.append({"n": n, "name": "floor", "cleanup": [remove], "steps": [
            step("raw floor: %d lvcreate per node through one lvm shell, nodes in parallel" % per_node, "ssh",
                 argvs=ssh_all(FLOOR_REMOTE), stdin=floor, timed="floor"),
            dict(remove, expect_lvs=(per_node, 0))]})
        for suffix, env in variants:
            count = step("count the N=%d LVs on each node (not timed)" % n, "ssh", argvs=ssh_all("sh -s"),
                         stdin=sh(pattern, False, "n%d-count" % n))
            steps = []
            if suffix:
                steps.append(step("ping play" + suffix, "playbook", argv=pb(os.path.join(workdir, "ping.yml")),
                                  env=env, timed="ping"))
            steps += [
                step("site.yml creating %d volumes%s" % (n, suffix), "playbook", argv=pb(site, create_vars), env=env,
                     timed="site_create", expect_changed=True),
                dict(count, expect_lvs=(per_node, per_node)),
                step("site.yml no-op re-run%s" % suffix, "playbook", argv=pb(site, create_vars), env=env,
                     timed="site_noop", expect_changed=False),
                step("site.yml deleting the %d volumes (state: absent)%s" % (n, suffix), "playbook",
                     argv=pb(site, delete_vars), env=env, timed="site_delete", expect_changed=True),
                dict(count, expect_lvs=(0, 0))]
            phases.append({"n": n, "name": "site" + suffix, "variant": suffix.strip(" ()"), "steps": steps,
                           "cleanup": [site_delete_untimed]})
    return files, phases


def _shell_line(argv, env=None):
    prefix = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted((env or {}).items()))
    return (prefix + " " if prefix else "") + " ".join(shlex.quote(a) for a in argv)


def describe(files, phases, workdir):
    """The --dry-run text: the generated files, then every command of every phase in order, as shell (ssh steps
    with more than one node run in parallel: ``&`` and ``wait``; a script on stdin is shown as a here-document)."""
    out = ["# generated files (in %s)" % workdir]
    for path, text in files.items():
        out += ["", "## %s" % os.path.relpath(path, workdir), text.rstrip("\n")]
    out += ["", "# commands (ansible-playbook with ANSIBLE_CONFIG=%s %s)" % (
        os.path.join(ROOT, "ansible.cfg"), " ".join("%s=%s" % kv for kv in sorted(ANSIBLE_ENV.items())))]
    by_text = {text: path for path, text in files.items()}
    for phase in phases:
        out += ["", "## %s%s" % ("N=%d " % phase["n"] if phase["n"] else "", phase["name"])]
        for st in phase["steps"]:
            out.append("# %s%s%s" % (st["label"], "  [timed: %s]" % st["timed"] if st["timed"] else "",
                                     "  [check: bench LVs before/after = %s/%s]" % tuple(st["expect_lvs"])
                                     if st["expect_lvs"] else ""))
            if st["kind"] == "playbook":
                out.append(_shell_line(st["argv"], st["env"]))
                continue
            parallel = " &" if len(st["argvs"]) > 1 else ""
            for node, argv in st["argvs"].items():
                text = (st["stdin"] or {}).get(node)
                if text is None:
                    out.append(_shell_line(argv) + parallel)
                elif text in by_text:
                    out.append("%s < %s%s" % (_shell_line(argv), os.path.relpath(by_text[text], workdir), parallel))
                else:
                    out += ["%s <<'EOF'%s" % (_shell_line(argv), parallel), text.rstrip("\n"), "EOF"]
            if parallel:
                out.append("wait")
        for st in phase["cleanup"]:
            out.append("# (if a step above fails: %s)" % st["label"])
    return "\n".join(out) + "\n"


# ----------------------------------------------------------------------------------------------------------------
# Running

def find_ansible_playbook():
    candidates = []
    if os.environ.get("VIRTUAL_ENV"):
        candidates.append(os.path.join(os.environ["VIRTUAL_ENV"], "bin", "ansible-playbook"))
    candidates.append(os.path.join(ROOT, ".venv", "bin", "ansible-playbook"))
    for path in candidates:
        if os.access(path, os.X_OK):
            return path
    found = shutil.which("ansible-playbook")
    if not found:
        raise BenchError("ansible-playbook not found: create the virtual environment with `make deps-python` "
                         "(or activate the one you use)")
    return found


def lab_run_dir():
    return os.environ.get("EMBER_LAB_RUN") or os.path.join(lab_cache_dir(), "run")


def read(path, default=""):
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return default


def machine_meta(ansible_playbook, nodes, size_mib):
    cmd = read(os.path.join(lab_run_dir(), "%s.cmd" % nodes[0]["name"]))
    model = re.search(r"^model name\s*:\s*(.+)$", read("/proc/cpuinfo"), re.M)
    version = subprocess.run([ansible_playbook, "--version"], capture_output=True, text=True, check=False).stdout
    return {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "cpu_model": model.group(1).strip() if model else "unknown model",
            "accel": accelerator(cmd) if cmd else "unknown (no %s.cmd in the lab run dir)" % nodes[0]["name"],
            "vm": vm_resources(cmd) or "unknown size", "ansible_core": ansible_core_version(version),
            "python": platform.python_version(), "size_mib": size_mib,
            "nodes": " and ".join(n["name"] for n in nodes)}


class Runner:
    def __init__(self, workdir, verbose=True):
        self.workdir = workdir
        self.verbose = verbose
        self.count = 0
        self.env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), **ANSIBLE_ENV)

    def log_path(self, label):
        self.count += 1
        slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:50]
        return os.path.join(self.workdir, "log-%03d-%s" % (self.count, slug))

    def run(self, st):
        """Runs one step; returns its wall-clock seconds. Raises BenchError when it fails or its check does not
        hold."""
        log = self.log_path(st["label"])
        start = time.monotonic()
        if st["kind"] == "playbook":
            with open(log + ".json", "w") as out:
                proc = subprocess.run(st["argv"], stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                      env=dict(self.env, **st["env"]), check=False)
            seconds = time.monotonic() - start
            if proc.returncode != 0:
                raise BenchError("%s failed (rc=%d): see %s.json" % (st["label"], proc.returncode, log))
            if st["expect_changed"] is not None:
                changed = changed_count(read(log + ".json"))
                if changed is None:
                    raise BenchError("%s: no JSON stats in %s.json" % (st["label"], log))
                if bool(changed) != st["expect_changed"]:
                    raise BenchError("%s: %d task(s) changed, expected %s (see %s.json)" % (
                        st["label"], changed, "some" if st["expect_changed"] else "none", log))
            return seconds
        procs = {}
        for node, argv in st["argvs"].items():
            out = open("%s-%s.out" % (log, node), "w+")
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE if st["stdin"] else subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, text=True)
            procs[node] = (proc, out)
        for node, (proc, _out) in procs.items():
            if st["stdin"]:
                try:
                    proc.stdin.write(st["stdin"][node])
                    proc.stdin.close()
                except BrokenPipeError:
                    pass  # ssh ended early: its exit status says why
        for proc, _out in procs.values():
            proc.wait()
        seconds = time.monotonic() - start
        for node, (proc, out) in procs.items():
            out.seek(0)
            text = out.read()
            out.close()
            if proc.returncode == 255:
                raise BenchError("%s does not answer on SSH (%s): is the lab up? Start it with `make lab`"
                                 % (node, text.strip().splitlines()[-1] if text.strip() else "no output"))
            if proc.returncode != 0:
                raise BenchError("%s on %s failed (rc=%d): %s" % (st["label"], node, proc.returncode,
                                                                  text.strip()[-500:]))
            if st["expect_lvs"] is not None:
                counts = parse_bench_lvs(text)
                if counts != tuple(st["expect_lvs"]):
                    raise BenchError("%s on %s: benchmark LVs (before, after) = %s, expected %s%s" % (
                        st["label"], node, counts, tuple(st["expect_lvs"]),
                        "; remove the leftovers of an earlier run first (site.yml with them absent, or lvremove "
                        "of LVs without the ember.blockstore tag)" if st["expect_lvs"] == (0, 0) and counts
                        and counts[0] else ""))
        return seconds


def changed_count(text):
    start = text.find("{")
    if start < 0:
        return None
    try:
        stats = json.loads(text[start:]).get("stats", {})
    except ValueError:
        return None
    return sum(s.get("changed", 0) for s in stats.values())


def load_facts(ansible_playbook, inventory, ssh_defaults, dry_run):
    tool = os.path.join(os.path.dirname(ansible_playbook), "ansible-inventory")
    proc = subprocess.run([tool if os.access(tool, os.X_OK) else "ansible-inventory", "-i", inventory, "--list",
                           "--export"], capture_output=True, text=True, cwd=ROOT, check=False,
                          env=dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg")))
    if proc.returncode != 0:
        raise BenchError("ansible-inventory -i %s failed: %s" % (inventory, proc.stderr.strip()[-500:]))
    export = json.loads(proc.stdout)
    try:
        return inventory_facts(export, ssh_defaults), None
    except BenchError as err:
        if not dry_run:
            hosts_file = os.path.join(inventory, "hosts.yml")
            hint = (" (%s does not exist)" % os.path.relpath(hosts_file, ROOT)) if not os.path.exists(hosts_file) \
                else ""
            raise BenchError("%s%s: is the lab up? Start it with `make lab`" % (err, hint)) from None
        return fallback_facts(export, ssh_defaults), str(err)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="even volume counts")
    parser.add_argument("--inventory", default=os.path.join("inventories", "lab"))
    parser.add_argument("--write", metavar="MARKDOWN", help="replace the results section of this file")
    parser.add_argument("--keep", action="store_true",
                        help="keep the work directory (generated files, JSON logs) after a successful run")
    parser.add_argument("--dry-run", action="store_true", help="print the commands and generated files only")
    parser.add_argument("--size-mib", type=int, default=DEFAULT_SIZE_MIB, help="size of each volume")
    parser.add_argument("--mitogen", metavar="PATH", help="unpacked mitogen 0.3.x: repeat the site.yml rows with "
                                                          "its mitogen_linear strategy")
    args = parser.parse_args(argv)
    try:
        sizes = parse_sizes(args.sizes)
        if args.size_mib < 4 or args.size_mib % 4:
            raise BenchError("--size-mib: a multiple of 4 (the VG's extent) is needed")
        inventory = os.path.join(ROOT, args.inventory) if not os.path.isabs(args.inventory) else args.inventory
        if args.mitogen and not args.dry_run and not os.path.isdir(mitogen_env(args.mitogen)[
                "ANSIBLE_STRATEGY_PLUGINS"]):
            raise BenchError("--mitogen %s: no ansible_mitogen/plugins/strategy in it (pass the unpacked release)"
                             % args.mitogen)
        ansible_playbook = find_ansible_playbook()
        ssh_defaults = lab_ssh_options(read(os.path.join(ROOT, "lab", "common.sh")))
        facts, note = load_facts(ansible_playbook, inventory, ssh_defaults, args.dry_run)
        clash = clashing_names(facts["volumes"])
        if clash:
            raise BenchError("the inventory already has volumes named like the benchmark's: %s" % ", ".join(clash))
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        workdir = os.path.join(ROOT, "benchmarks", "results", "converge-" + stamp)
        files, phases = build_plan(facts, sizes, workdir, ansible_playbook, inventory, args.size_mib, args.mitogen)
        if args.dry_run:
            if note:
                print("# %s: using the lab's nodes (%s) with placeholder SSH ports\n" % (
                    note, ", ".join("%s=%s" % (name, zone) for name, zone, _port in LAB_FALLBACK_NODES)))
            sys.stdout.write(describe(files, phases, workdir))
            if args.write:
                print("\n# then: replace the results section of %s" % args.write)
            return 0
        return run(args, sizes, facts, files, phases, workdir, ansible_playbook)
    except BenchError as err:
        print("converge.py: %s" % err, file=sys.stderr)
        return 1


def run(args, sizes, facts, files, phases, workdir, ansible_playbook):
    os.makedirs(workdir, exist_ok=True)
    for path, text in files.items():
        with open(path, "w") as handle:
            handle.write(text)
    runner = Runner(workdir)
    rows = {}
    print("converge benchmark: N = %s, %d MiB thick volumes, half on each of %s; work dir %s" % (
        ", ".join(map(str, sizes)), args.size_mib, " and ".join(n["name"] for n in facts["nodes"]),
        os.path.relpath(workdir, ROOT)), flush=True)
    for phase in phases:
        try:
            for st in phase["steps"]:
                seconds = runner.run(st)
                print("  %s%s: %.1f s" % ("N=%d " % phase["n"] if phase["n"] else "", st["label"], seconds),
                      flush=True)
                if st["timed"]:
                    key = (phase.get("variant") or "", phase["n"])
                    rows.setdefault(key, {"n": phase["n"]})[st["timed"]] = seconds
        except (BenchError, KeyboardInterrupt):
            for st in phase["cleanup"]:
                try:
                    runner.run(st)
                except BenchError as err:
                    print("cleanup failed too: %s" % err, file=sys.stderr)
            print("the work directory is kept: %s" % workdir, file=sys.stderr)
            raise
    main_rows = [rows[("", n)] for n in sizes]
    tables = [("seconds (wall clock of each ansible-playbook / SSH run)", format_table(main_rows))]
    if args.mitogen:
        mitogen_rows = []
        for n in sizes:
            row = dict(rows[("mitogen", n)], lvol=rows[("", n)].get("lvol"), floor=rows[("", n)].get("floor"))
            mitogen_rows.append(row)
        tables.append(("with the mitogen_linear strategy (lvol loop and floor from the rows above)",
                       format_table(mitogen_rows)))
    checks = format_acceptance(main_rows)
    print()
    for title, body in tables:
        print(title + ":\n" + body)
    print("acceptance:\n" + checks)
    if args.write:
        meta = machine_meta(ansible_playbook, facts["nodes"], args.size_mib)
        path = args.write if os.path.isabs(args.write) else os.path.join(ROOT, args.write)
        section = results_section(meta, tables + [("acceptance", checks)])
        text = replace_section(read(path), section)  # read before opening for writing (which truncates)
        with open(path, "w") as handle:
            handle.write(text)
        print("results written to %s" % os.path.relpath(path, ROOT))
    if not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if all(ok for *_rest, ok in acceptance(main_rows)) else 2


if __name__ == "__main__":
    sys.exit(main())

"""benchmarks/converge.py: its pure parts (names, generated files, the lvm-shell and cleanup scripts, ratios,
slopes, table, the docs section) and what --dry-run says it would run. The benchmark itself needs the lab."""

import importlib.util
import os
import shlex
import stat
import subprocess
import sys

import pytest
import yaml
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm, predict_vg_size
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "benchmarks", "converge.py")
MiB, GiB = 2**20, 2**30


def _load():
    spec = importlib.util.spec_from_file_location("bench_converge", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bench = _load()

NODES = [
    {"name": "stor1", "host": "127.0.0.1", "port": 40001, "user": "root", "key": "/k/id", "vg": "ember-thick",
     "backend": "lvm-thick", "zone": "az1"},
    {"name": "stor2", "host": "127.0.0.1", "port": 40002, "user": "root", "key": "/k/id", "vg": "ember-thick",
     "backend": "lvm-thick", "zone": "az2"},
]


def lab_data():
    with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as handle:
        return yaml.safe_load(handle)


# ---------------------------------------------------------------------------------------------------- names, vars

def test_parse_sizes_sorts_and_rejects_odd_small_or_repeated_sizes():
    assert bench.parse_sizes("100,20,50") == [20, 50, 100]
    for bad in ("21", "0", "20,x", "20,20", ""):
        with pytest.raises(bench.BenchError):
            bench.parse_sizes(bad)


def test_bench_names_split_half_per_node_without_overlap():
    names = bench.bench_names(6, NODES)
    assert names == {"stor1": ["bench6-0", "bench6-1", "bench6-2"], "stor2": ["bench6-3", "bench6-4", "bench6-5"]}
    assert len(set(bench.bench_names(100, NODES)["stor1"]) | set(bench.bench_names(100, NODES)["stor2"])) == 100


def test_bench_names_do_not_clash_with_the_lab_inventory():
    assert bench.clashing_names(lab_data()["blockstore_volumes"]) == []
    assert bench.clashing_names([{"name": "bench20-3"}, {"name": "bench"}, {"name": "benchx-1"}]) == ["bench20-3"]


def test_site_extra_vars_keep_the_inventory_and_pin_half_to_each_zone():
    inventory = lab_data()["blockstore_volumes"]
    extra = bench.site_extra_vars(inventory, 4, NODES, 32)["blockstore_volumes"]
    assert extra[:len(inventory)] == inventory
    assert extra[len(inventory):] == [
        {"name": "bench4-0", "size": "32MiB", "volume_type": "bulk", "availability_zone": "az1"},
        {"name": "bench4-1", "size": "32MiB", "volume_type": "bulk", "availability_zone": "az1"},
        {"name": "bench4-2", "size": "32MiB", "volume_type": "bulk", "availability_zone": "az2"},
        {"name": "bench4-3", "size": "32MiB", "volume_type": "bulk", "availability_zone": "az2"}]
    absent = bench.site_extra_vars(inventory, 4, NODES, 32, "absent")["blockstore_volumes"]
    assert absent[:len(inventory)] == inventory  # the inventory's own volumes are never declared absent
    assert [v.get("state") for v in absent[len(inventory):]] == ["absent"] * 4


def _lab_pools():
    """The lab's pools as the scheduler sees them on fresh 4 GiB disks (as test_inventories predicts them)."""
    vg = predict_vg_size([4 * GiB])
    pools = []
    for host, zone in (("stor1", "az1"), ("stor2", "az2")):
        for name, thin in (("lvm-thick", False), ("lvm-thin", True)):
            total = int(vg // (4 * MiB) * 95 / 100) * 4 * MiB if thin else vg
            pools.append({
                "id": "%s@%s" % (host, name), "host": host, "backend": name, "driver": "lvm_thin" if thin else "lvm",
                "vg": "ember-thin" if thin else "ember-thick", "thin_pool": "thinpool" if thin else None,
                "extent_size_bytes": 4 * MiB, "total_bytes": total, "free_bytes": total, "provisioned_bytes": 0,
                "allocated_bytes": 0,
                "capabilities": {"volume_backend_name": name, "thin_provisioning_support": thin,
                                 "thick_provisioning_support": not thin, "availability_zone": zone,
                                 "reserved_percentage": 10 if thin else 5,
                                 "max_over_subscription_ratio": 4.0}, "volumes": []})
    return pools


def test_default_size_fits_100_volumes_on_the_lab_and_64_mib_would_not():
    """The site.yml rows must plan: 50 default-size volumes per node fit the lab's thick pools next to the
    inventory's volumes, each on the node of its zone; 64 MiB x 50 does not (why the default is smaller)."""
    data = lab_data()
    extra = bench.site_extra_vars(data["blockstore_volumes"], 100, NODES, bench.DEFAULT_SIZE_MIB)
    result = plan(extra["blockstore_volumes"], _lab_pools(), data["blockstore_volume_types"], consumers=["client1"])
    placed = {v["name"]: v["pool_id"] for v in result["volumes"]}
    names = bench.bench_names(100, NODES)
    assert {placed[n] for n in names["stor1"]} == {"stor1@lvm-thick"}
    assert {placed[n] for n in names["stor2"]} == {"stor2@lvm-thick"}
    too_big = bench.site_extra_vars(data["blockstore_volumes"], 100, NODES, 64)
    with pytest.raises(Exception, match="No valid backend"):
        plan(too_big["blockstore_volumes"], _lab_pools(), data["blockstore_volume_types"], consumers=["client1"])


def test_lvol_extra_vars_use_the_module_lv_names_per_node():
    extra = bench.lvol_extra_vars(4, NODES, 32)
    assert extra == {"bench_size": "32m", "bench_lvs": {
        "stor1": {"vg": "ember-thick", "lvs": ["volume-bench4-0", "volume-bench4-1"]},
        "stor2": {"vg": "ember-thick", "lvs": ["volume-bench4-2", "volume-bench4-3"]}}}


def test_generated_playbooks_are_one_play_against_the_storage_group():
    for text, module in ((bench.ping_playbook(), "ansible.builtin.ping"),
                         (bench.lvol_playbook(), "community.general.lvol")):
        plays = yaml.safe_load(text)
        assert len(plays) == 1 and plays[0]["hosts"] == "blockstore_storage"
        assert plays[0]["gather_facts"] is False
        assert [list(t)[1] for t in plays[0]["tasks"]] == [module]
    task = yaml.safe_load(bench.lvol_playbook())[0]["tasks"][0]
    assert task["loop"] == "{{ bench_lvs[inventory_hostname].lvs }}"


def test_vars_json_is_json_with_one_volume_per_line():
    extra = bench.site_extra_vars([{"name": "a", "size": 1}], 2, NODES, 32)
    text = bench.vars_json(extra)
    assert yaml.safe_load(text) == extra
    assert len(text.splitlines()) == 1 + 1 + 3 + 1 + 1  # {, "blockstore_volumes": [, 3 volumes, ], }
    assert text.count('"name"') == 3


# ---------------------------------------------------------------------------------------------- lvm floor script

class _Recorder:
    def __init__(self):
        self.calls = []

    def run(self, args, check=True):
        self.calls.append(list(args))
        return 0, "", ""


def test_floor_script_runs_exactly_the_volume_module_lvcreate():
    """Each line of the lvm-shell script is the lvcreate drivers/lvm.py Lvm.create runs for that volume."""
    script = bench.lvm_shell_script(["bench4-0", "bench4-1"], "ember-thick", 32, "lvm-thick")
    lines = script.splitlines()
    assert script.endswith("\n") and len(lines) == 2
    for name, line in zip(["bench4-0", "bench4-1"], lines):
        recorder = _Recorder()
        Lvm(recorder).create("ember-thick", name, 32 * MiB, volume_type="bulk", backend="lvm-thick")
        assert shlex.split(line) == recorder.calls[0]
    assert lines[0] == ("lvcreate --yes --wipesignatures y -n volume-bench4-0 --addtag ember.blockstore "
                        "--addtag ember.volume=bench4-0 --addtag ember.type=bulk --addtag ember.backend=lvm-thick "
                        "--size 33554432b ember-thick")


# --------------------------------------------------------------------------------- count / remove script (local)

FAKE_LVM = {
    "lvs": '#!/bin/sh\n[ "$1 $2 $3 $4" = "--noheadings -o lv_name ember-thick" ] || exit 9\n'
           'while read -r lv; do echo "  $lv"; done < "$STATE"\n',
    "vgs": '#!/bin/sh\n[ "$1" = ember-thick ]\n',
    "lvremove": '#!/bin/sh\n[ "$1" = -f ] || exit 9\nshift\nfor a; do echo "$a" >> "$STATE.removed"; '
                'grep -vx "${a#ember-thick/}" "$STATE" > "$STATE.new"; mv "$STATE.new" "$STATE"; done\n',
    "udevadm": "#!/bin/sh\nexit 0\n",
}


@pytest.fixture
def fake_node(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in FAKE_LVM.items():
        path = bindir / name
        path.write_text(text)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    state = tmp_path / "lvs"
    state.write_text("thinpool\nvolume-logs01\nvolume-bench20-0\nvolume-bench20-7\nvolume-bench200-1\n"
                     "volume-bench20-x\nvolume-bench20-3\n")
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]), STATE=str(state))

    def run(script):
        proc = subprocess.run(["sh", "-s"], input=script, capture_output=True, text=True, env=env, check=True)
        return proc.stdout, state.read_text().split(), (tmp_path / "lvs.removed")
    return run


def test_remove_script_removes_only_the_lvs_of_that_n(fake_node):
    out, left, removed = fake_node(bench.bench_lvs_script("ember-thick", bench.bench_volume_pattern(20), True))
    assert bench.parse_bench_lvs(out) == (3, 0)
    assert left == ["thinpool", "volume-logs01", "volume-bench200-1", "volume-bench20-x"]
    assert sorted(removed.read_text().split()) == ["ember-thick/volume-bench20-0", "ember-thick/volume-bench20-3",
                                                   "ember-thick/volume-bench20-7"]


def test_count_script_counts_every_n_and_removes_nothing(fake_node):
    out, left, removed = fake_node(bench.bench_lvs_script("ember-thick", bench.bench_volume_pattern(), False))
    assert bench.parse_bench_lvs(out) == (4, 4)
    assert len(left) == 7 and not removed.exists()


def test_parse_bench_lvs_needs_the_line():
    assert bench.parse_bench_lvs("noise\nbench-lvs before=      12 after=0\n") == (12, 0)
    assert bench.parse_bench_lvs("Retrying metadata scan.\n") is None


# ------------------------------------------------------------------------------------------- ratios and the table

ROWS = [
    {"n": 20, "ping": 4.0, "lvol": 60.0, "floor": 2.0, "site_create": 8.0, "site_noop": 6.0, "site_delete": 10.0},
    {"n": 50, "ping": 4.0, "lvol": 150.0, "floor": 2.6, "site_create": 9.0, "site_noop": 6.0, "site_delete": 14.0},
    {"n": 100, "ping": 5.0, "lvol": 300.0, "floor": 3.6, "site_create": 12.0, "site_noop": 9.0, "site_delete": 20.0},
]


def test_ratios_of_a_row():
    assert bench.row_ratios(ROWS[2]) == {"noop/ping": 9.0 / 5.0, "lvol/site": 25.0,
                                         "site/(floor+ping)": pytest.approx(12.0 / 8.6)}
    assert bench.row_ratios({"n": 2, "ping": 0.0, "site_noop": 1.0})["noop/ping"] is None


def test_slope_between_smallest_and_largest_n():
    assert bench.slope(ROWS, "lvol") == pytest.approx(3.0)
    assert bench.slope(ROWS, "site_create") == pytest.approx(0.05)
    assert bench.slope(ROWS[:1], "lvol") is None


def test_table_has_one_row_per_n_with_seconds_ratios_and_slopes():
    lines = bench.format_table(ROWS).splitlines()
    assert lines[0].split()[:4] == ["N", "ping", "lvol", "loop"]
    assert lines[0].rstrip().endswith("noop/ping  lvol/site  site/(floor+ping)")
    assert lines[3].split() == ["100", "5.0", "300.0", "3.6", "12.0", "9.0", "20.0", "1.80", "25.00", "1.40"]
    assert lines[4] == ("marginal seconds per volume (N 20 -> 100): lvol loop 3.000, raw floor 0.020, "
                        "site create 0.050")
    # columns line up: every number ends where its heading ends
    head_end = lines[0].index("site create") + len("site create")
    assert [line[:head_end][-5:] for line in lines[1:4]] == ["  8.0", "  9.0", " 12.0"]


def test_acceptance_at_the_largest_n():
    checks = bench.acceptance(ROWS)
    assert [(name, ok) for _text, name, _value, ok in checks] == [
        ("noop/ping", True), ("lvol/site", True), ("site/(floor+ping)", True)]
    slow = [dict(ROWS[0], n=100, site_noop=11.0, site_create=13.0)]
    assert [ok for *_rest, ok in bench.acceptance(slow)] == [False, False, False]
    text = bench.format_acceptance(slow)
    assert "N=100: no-op site.yml <= 2x the ping play (noop/ping <= 2.0): 2.75 FAIL" in text
    assert bench.format_acceptance([{"n": 20}]).count("not measured") == 3


# -------------------------------------------------------------------------------------------------- docs section

META = {"date": "2026-11-30 10:00 UTC", "machine": "x86_64", "cpus": 2, "cpu_model": "Some CPU", "accel": "TCG",
        "vm": "2 vCPU, 1024 MiB", "ansible_core": "2.19.14", "python": "3.11.7", "size_mib": 32,
        "nodes": "stor1 and stor2"}


def test_replace_section_appends_then_replaces_in_place():
    first = bench.results_section(META, [("seconds", "table one\n")])
    assert first.startswith(bench.BEGIN) and first.rstrip().endswith(bench.END)
    assert "on x86_64, 2 CPUs (Some CPU); lab VMs under TCG (2 vCPU, 1024 MiB each); ansible-core 2.19.14" in first
    assert "```text\ntable one\n```" in first
    doc = bench.replace_section("# Benchmarks\n\nintro\n", first)
    assert doc.startswith("# Benchmarks\n\nintro\n\n" + bench.BEGIN)
    doc += "\n## After\n"
    second = bench.results_section(dict(META, accel="KVM"), [("seconds", "table two\n")])
    again = bench.replace_section(doc, second)
    assert "table one" not in again and "table two" in again and "under KVM" in again
    assert again.startswith("# Benchmarks\n\nintro\n\n") and again.endswith("\n## After\n")
    assert again.count(bench.BEGIN) == 1
    assert bench.replace_section(again, second) == again


def test_docs_benchmarks_md_has_the_markers():
    with open(os.path.join(ROOT, "docs", "benchmarks.md")) as handle:
        text = handle.read()
    assert text.count(bench.BEGIN) == 1 and text.count(bench.END) == 1
    assert text.index(bench.BEGIN) < text.index(bench.END)


# ------------------------------------------------------------------------------------- lab and inventory facts

def test_accelerator_and_vm_size_from_the_qemu_command_line_up_sh_writes():
    tcg = r"qemu-system-x86_64 -accel tcg\,thread=multi -cpu max -m 1024 -smp 2 -append root=/dev/vda\ rw "
    assert bench.accelerator(tcg) == "TCG"
    assert bench.vm_resources(tcg) == "2 vCPU, 1024 MiB"
    assert bench.accelerator("qemu-system-x86_64 -accel kvm -cpu host") == "KVM"
    assert bench.accelerator("") == "unknown"


def test_ansible_core_version():
    assert bench.ansible_core_version("ansible-playbook [core 2.19.14]\n  config file = x") == "2.19.14"
    assert bench.ansible_core_version("") == "unknown"


def test_lab_ssh_options_are_read_from_common_sh():
    with open(os.path.join(ROOT, "lab", "common.sh")) as handle:
        options = bench.lab_ssh_options(handle.read())
    assert options[:2] == ["-o", "StrictHostKeyChecking=no"] and "BatchMode=yes" in options


def _export(hosts=True):
    export = {"all": {"vars": {"ansible_host": "127.0.0.1", "ansible_user": "root",
                               "ansible_ssh_private_key_file": "/cache/id_ed25519",
                               "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o BatchMode=yes",
                               **lab_data()}},
              "_meta": {"hostvars": {}}}
    if hosts:
        for path in ("stor1", "stor2"):
            with open(os.path.join(ROOT, "inventories", "lab", "host_vars", path + ".yml")) as handle:
                export["_meta"]["hostvars"][path] = dict(yaml.safe_load(handle), ansible_port=41000 + int(path[-1]))
        export["blockstore_storage"] = {"hosts": ["stor2", "stor1"]}
    return export


def test_inventory_facts_of_the_lab():
    facts = bench.inventory_facts(_export(), ["-o", "Unused=yes"])
    assert [(n["name"], n["port"], n["zone"], n["vg"], n["backend"]) for n in facts["nodes"]] == [
        ("stor1", 41001, "az1", "ember-thick", "lvm-thick"), ("stor2", 41002, "az2", "ember-thick", "lvm-thick")]
    assert facts["nodes"][0]["key"] == "/cache/id_ed25519" and facts["nodes"][0]["user"] == "root"
    assert facts["ssh_options"] == ["-o", "StrictHostKeyChecking=no", "-o", "BatchMode=yes"]
    assert facts["volumes"] == lab_data()["blockstore_volumes"]


def test_inventory_facts_refuse_without_hosts_or_with_one_zone():
    with pytest.raises(bench.BenchError, match="no host in blockstore_storage"):
        bench.inventory_facts(_export(hosts=False), [])
    export = _export()
    for hv in export["_meta"]["hostvars"].values():
        hv["blockstore_backends"] = [dict(b, availability_zone="az1") for b in hv["blockstore_backends"]]
    with pytest.raises(bench.BenchError, match="share availability zones"):
        bench.inventory_facts(export, [])


# ------------------------------------------------------------------------------------------ the plan and dry-run

def _plan(mitogen=None):
    facts = {"nodes": NODES, "volumes": lab_data()["blockstore_volumes"], "ssh_options": ["-o", "BatchMode=yes"]}
    return bench.build_plan(facts, [4, 8], "/w", "/venv/bin/ansible-playbook", "/inv", 32, mitogen)


def test_plan_times_each_row_in_order_and_cleans_up():
    files, phases = _plan()
    timed = [(p["n"], st["timed"]) for p in phases for st in p["steps"] if st["timed"]]
    assert timed == [(n, key) for n in (4, 8) for key in bench.TIMED]
    first = phases[0]["steps"][0]
    assert first["expect_lvs"] == (0, 0) and "bench[0-9]+-" in first["stdin"]["stor1"]
    assert phases[0]["steps"][1]["argv"] == ["/venv/bin/ansible-playbook", "-i", "/inv",
                                             os.path.join(ROOT, "playbooks", "site.yml")]
    site = [p for p in phases if p["name"] == "site" and p["n"] == 4][0]
    argvs = {st["timed"]: st["argv"] for st in site["steps"] if st["timed"]}
    assert argvs["site_create"] == argvs["site_noop"] == ["/venv/bin/ansible-playbook", "-i", "/inv",
                                                          os.path.join(ROOT, "playbooks", "site.yml"),
                                                          "-e", "@/w/n4-site-create.json"]
    assert argvs["site_delete"][-1] == "@/w/n4-site-delete.json"
    assert [st["expect_changed"] for st in site["steps"] if st["timed"]] == [True, False, True]
    assert [st["expect_lvs"] for st in site["steps"] if st["kind"] == "ssh"] == [(2, 2), (0, 0)]
    assert site["cleanup"][0]["argv"][-1] == "@/w/n4-site-delete.json"
    floor = [p for p in phases if p["name"] == "floor" and p["n"] == 8][0]
    assert floor["steps"][0]["argvs"]["stor2"] == ["ssh", "-i", "/k/id", "-o", "BatchMode=yes", "-o",
                                                   "ConnectTimeout=10", "-p", "40002", "root@127.0.0.1",
                                                   bench.FLOOR_REMOTE]
    assert floor["steps"][0]["stdin"]["stor2"] == files["/w/n8-stor2-floor.lvm"]
    assert floor["steps"][1]["expect_lvs"] == (4, 0) and floor["cleanup"][0]["stdin"]["stor1"] == \
        files["/w/n8-remove-ember-thick.sh"]
    assert yaml.safe_load(files["/w/n8-site-create.json"])["blockstore_volumes"][-1]["name"] == "bench8-7"


def test_mitogen_repeats_ping_and_site_rows_with_its_strategy_only():
    _files, phases = _plan(mitogen="/opt/mitogen-0.3.22")
    strategy = "/opt/mitogen-0.3.22/ansible_mitogen/plugins/strategy"
    with_env = [(p["n"], st["timed"]) for p in phases for st in p["steps"] if st["env"]]
    assert with_env == [(n, key) for n in (4, 8) for key in ("ping", "site_create", "site_noop", "site_delete")]
    envs = [st["env"] for p in phases for st in p["steps"] if st["env"]]
    assert all(env == {"ANSIBLE_STRATEGY": "mitogen_linear", "ANSIBLE_STRATEGY_PLUGINS": strategy} for env in envs)
    assert all(not st["env"] for p in phases if p["name"] != "site (mitogen)" for st in p["steps"])


def test_describe_prints_every_command_and_file():
    files, phases = _plan()
    text = bench.describe(files, phases, "/w")
    for path, content in files.items():
        assert "## %s\n%s" % (os.path.basename(path), content.rstrip("\n")) in text
    for phase in phases:
        for st in phase["steps"]:
            if st["kind"] == "playbook":
                assert " ".join(shlex.quote(a) for a in st["argv"]) + "\n" in text
    floor_line = ("ssh -i /k/id -o BatchMode=yes -o ConnectTimeout=10 -p 40001 root@127.0.0.1 "
                  "'lvm >/dev/null && udevadm settle --timeout=30' < n4-stor1-floor.lvm &\n")
    assert floor_line in text
    # parallel SSH steps: the preflight, then per N the floor, the two removes and the two counts
    assert text.count("[timed: floor]") == 2 and text.count("\nwait\n") == 1 + 2 * 5


def test_dry_run_end_to_end_runs_nothing_and_writes_nothing(tmp_path):
    results = os.path.join(ROOT, "benchmarks", "results")
    before = set(os.listdir(results)) if os.path.isdir(results) else set()
    venv = os.path.dirname(os.path.dirname(sys.executable))
    env = dict(os.environ, VIRTUAL_ENV=venv, PATH="%s:%s" % (os.path.dirname(sys.executable), os.environ["PATH"]))
    proc = subprocess.run([sys.executable, SCRIPT, "--dry-run", "--sizes", "20,100", "--write", str(tmp_path / "b.md")],
                          capture_output=True, text=True, env=env, cwd=str(tmp_path), check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "## n100-stor2-floor.lvm\n" in proc.stdout and "-n volume-bench100-99 " in proc.stdout
    assert proc.stdout.count("[timed: site_noop]") == 2
    assert "replace the results section of %s" % (tmp_path / "b.md") in proc.stdout
    assert not (tmp_path / "b.md").exists()
    after = set(os.listdir(results)) if os.path.isdir(results) else set()
    assert after == before

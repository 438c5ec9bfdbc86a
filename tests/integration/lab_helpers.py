"""Integration fixtures: the lab VMs (booted once per test session from clean overlays) and helpers that run
playbooks with the JSON callback and commands on the VMs over SSH.

Set EMBER_LAB_REUSE=1 to use a lab that is already up (``make lab``) and EMBER_LAB_KEEP=1 to leave it running.
"""

import json
import os
import subprocess
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INVENTORY = os.path.join(ROOT, "inventories", "lab")
HOSTS_FILE = os.path.join(INVENTORY, "hosts.yml")
CACHE = os.environ.get("EMBER_LAB_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "ember-blockstore")


COMMON_SH = os.path.join(ROOT, "lab", "common.sh")


def lab_ssh_options(path=COMMON_SH):
    """The ``LAB_SSH_OPTS=( ... )`` block of lab/common.sh as a list: the lab's SSH options live there only."""
    options, inside = [], False
    with open(path) as handle:
        for line in handle:
            line = line.strip()
            if line.startswith("LAB_SSH_OPTS=("):
                inside = True
            elif inside and line == ")":
                return options
            elif inside and line and not line.startswith("#"):
                options.extend(line.split())
    raise ValueError("no LAB_SSH_OPTS=( ... ) block in %s" % path)


SSH_OPTIONS = lab_ssh_options()


class Lab:
    """The running lab: SSH ports from inventories/lab/hosts.yml."""

    def __init__(self):
        with open(HOSTS_FILE) as handle:
            inv = yaml.safe_load(handle)
        self.hosts = {}
        for group in inv["all"]["children"].values():
            for name, hvars in group["hosts"].items():
                self.hosts[name] = hvars
        self.key = inv["all"]["vars"]["ansible_ssh_private_key_file"]
        self.timings = {}

    def ssh(self, host, command, check=True, timeout=600):
        args = ["ssh", "-i", self.key] + SSH_OPTIONS + ["-p", str(self.hosts[host]["ansible_port"]),
                                                        "root@127.0.0.1", command]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError("%s: %r failed (rc=%d): %s" % (host, command, proc.returncode, proc.stderr))
        return proc

    def state(self):
        """What the tests compare before and after runs that must change nothing."""
        out = {}
        for host in ("stor1", "stor2"):
            out[host] = {
                "lvs": self.ssh(host, "lvs --noheadings -o vg_name,lv_name,lv_size,lv_tags --units b 2>/dev/null; "
                                      "vgs --noheadings -o vg_name 2>/dev/null; true").stdout,
                "targets": self.ssh(host, "tgtadm --lld iscsi --mode target --op show").stdout,
                "conf": self.ssh(host, "ls /etc/tgt/conf.d/ 2>/dev/null; true").stdout,
            }
        out["client1"] = {"sessions": self.ssh("client1", "iscsiadm -m session 2>/dev/null; true").stdout,
                          "nodes": self.ssh("client1", "iscsiadm -m node 2>/dev/null; true").stdout}
        return out

    def managed_lvs(self, host):
        """{volume name: (vg, lv size bytes, pool_lv)} of ember-managed volume LVs on ``host`` (not snapshots)."""
        out = self.ssh(host, "lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size,lv_tags,pool_lv")
        vols = {}
        for row in json.loads(out.stdout)["report"][0]["lv"]:
            tags = row["lv_tags"].split(",")
            if "ember.blockstore" in tags and not any(t.startswith("ember.snapshot=") for t in tags):
                name = [t for t in tags if t.startswith("ember.volume=")][0].split("=", 1)[1]
                vols[name] = (row["vg_name"], int(row["lv_size"]), row["pool_lv"] or None)
        return vols

    def managed_snapshots(self, host):
        """{(volume, snapshot name): {"vg", "size", "pool_lv", "tags"}} of the snapshot module's LVs on ``host``."""
        out = self.ssh(host, "lvs --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_size,lv_tags,pool_lv")
        snaps = {}
        for row in json.loads(out.stdout)["report"][0]["lv"]:
            tags = row["lv_tags"].split(",")
            names = [t.split("=", 1)[1] for t in tags if t.startswith("ember.snapshot=")]
            if "ember.blockstore" in tags and names:
                volume = [t for t in tags if t.startswith("ember.volume=")][0].split("=", 1)[1]
                snaps[(volume, names[0])] = {"vg": row["vg_name"], "size": int(row["lv_size"]),
                                             "pool_lv": row["pool_lv"] or None, "tags": sorted(tags)}
        return snaps


class PlaybookRun:
    """Result of one ansible-playbook run parsed from the ansible.posix.json callback."""

    def __init__(self, proc, seconds):
        self.rc = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.seconds = seconds
        start = proc.stdout.find("{")
        self.data = json.loads(proc.stdout[start:]) if start >= 0 else {"plays": [], "stats": {}}
        self.stats = self.data.get("stats", {})

    @property
    def changed(self):
        return sum(s.get("changed", 0) for s in self.stats.values())

    def changed_by_host(self):
        return {h: s.get("changed", 0) for h, s in self.stats.items()}

    def task(self, name):
        """{host: result} of the task named ``name``: each host's last occurrence. Under a play with
        ``strategy: free`` (site.yml's gather) the json callback records one entry per host and task, so the
        entries are merged per host."""
        found = None
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                # Role tasks are named "<role> : <task name>" by the callback.
                if task["task"]["name"] == name or task["task"]["name"].endswith(" : " + name):
                    found = dict(found or {}, **task["hosts"])
        if found is None:
            raise KeyError("task %r not in the run" % name)
        return found

    def changed_tasks(self):
        """{(host, task name)} of the tasks that reported a change (a loop counts when any item changed)."""
        out = set()
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                for host, res in task["hosts"].items():
                    if res.get("changed"):
                        out.add((host, task["task"]["name"]))
        return out

    # Actions that run on the controller (no SSH round trip to the host).
    LOCAL_ACTIONS = frozenset(("ansible.builtin.set_fact", "set_fact", "ansible.builtin.debug", "debug",
                               "ansible.builtin.assert", "assert", "ansible.builtin.fail", "fail",
                               "ansible.builtin.meta", "meta", "ansible.builtin.include_role", "include_role",
                               "ansible.builtin.include_tasks", "include_tasks",
                               "ansible.builtin.validate_argument_spec", "validate_argument_spec"))

    def module_runs(self):
        """{host: number of tasks that ran a module on the host (not skipped, not controller-side)}."""
        runs = {}
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                for host, res in task["hosts"].items():
                    runs.setdefault(host, 0)
                    if res.get("skipped") or res.get("action") in self.LOCAL_ACTIONS:
                        continue
                    runs[host] += 1
        return runs

    def messages(self):
        text = []
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                for res in task["hosts"].values():
                    if res.get("msg"):
                        text.append(str(res["msg"]))
        return "\n".join(text)


def _playbook_args(playbook, check, extra_vars, tmp_path, verbosity=0, inventories=()):
    args = ["ansible-playbook", "-i", INVENTORY, os.path.join(ROOT, playbook)]
    for extra in inventories:  # more inventory sources (e.g. a storage node that is also a consumer)
        args += ["-i", extra]
    if check:
        args.append("--check")
    if verbosity:
        args.append("-" + "v" * verbosity)
    if extra_vars is not None:
        path = os.path.join(str(tmp_path), "extra-%d.yml" % time.monotonic_ns())
        with open(path, "w") as handle:
            yaml.safe_dump(extra_vars, handle)
        args += ["-e", "@" + path]
    return args


def run_playbook(lab, playbook="playbooks/site.yml", check=False, extra_vars=None, tmp_path=None, inventories=()):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
               ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_FORCE_COLOR="0")
    args = _playbook_args(playbook, check, extra_vars, tmp_path, inventories=inventories)
    start = time.monotonic()
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=1800, check=False)
    return PlaybookRun(proc, time.monotonic() - start)


class StreamedRun:
    """An ansible-playbook run in the background with the default (streaming) callback, its output in a file:
    for tests that act while a run is under way (crash a node in a given phase, start a second run)."""

    def __init__(self, tmp_path, extra_vars=None, verbosity=0, playbook="playbooks/site.yml"):
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_FORCE_COLOR="0",
                   ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default")
        self.path = os.path.join(str(tmp_path), "run-%d.log" % time.monotonic_ns())
        self._out = open(self.path, "w")
        self.start = time.monotonic()
        self.proc = subprocess.Popen(_playbook_args(playbook, False, extra_vars, tmp_path, verbosity), cwd=ROOT,
                                     env=env, stdout=self._out, stderr=subprocess.STDOUT, text=True)

    @property
    def output(self):
        with open(self.path) as handle:
            return handle.read()

    def wait_for(self, text, timeout=900):
        """Block until ``text`` appears in the output; fails when the run ends or the time is up first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.output:
                return
            if self.proc.poll() is not None:
                raise AssertionError("run ended (rc=%s) before %r appeared:\n%s"
                                     % (self.proc.returncode, text, self.output[-3000:]))
            time.sleep(0.5)
        raise AssertionError("%r did not appear in %d s" % (text, timeout))

    def wait(self, timeout=1800):
        rc = self.proc.wait(timeout=timeout)
        self._out.close()
        self.seconds = time.monotonic() - self.start
        return rc


def plan_of(run):
    """The plan the run's plan task made (``blockstore_plan``: volumes, migrations, hosts)."""
    return run.task("Plan every volume before any change (hosts that reported, placement ledger, scheduler)")[
        "localhost"]["ansible_facts"]["blockstore_plan"]


def vm(action, name):
    """``lab/vm.sh kill|boot NAME``: power a lab VM off at once, or boot it again and wait for SSH."""
    subprocess.run([os.path.join(ROOT, "lab", "vm.sh"), action, name], check=True, timeout=900)


def four_steps(lab, tmp_path, extra_vars, inventories=(), playbook="playbooks/site.yml"):
    """A converge as an operator checks it: --check, real, again, --check again. The first two change something,
    the last two nothing. Returns (check, real, again)."""
    runs = []
    for check, changes in ((True, True), (False, True), (False, False), (True, False)):
        run = run_playbook(lab, playbook=playbook, check=check, extra_vars=extra_vars, tmp_path=tmp_path,
                           inventories=inventories)
        assert run.rc == 0, ("check" if check else "real", run.stdout[-3000:])
        if changes:
            assert run.changed > 0, ("check" if check else "real", "changed nothing")
        else:
            assert run.changed == 0, ("check" if check else "real", sorted(run.changed_tasks()))
        runs.append(run)
    return runs[0], runs[1], runs[2]


def module_play(tmp_path, host, module, args, name="direct"):
    """A one-task playbook that runs ``module`` with ``args`` on ``host`` (registered without no_log: the tests
    look at what a failure says)."""
    path = tmp_path / ("%s.yml" % name)
    path.write_text(yaml.safe_dump([{"hosts": host, "gather_facts": False, "tasks": [
        {"name": name, module: args}]}]))
    return str(path)

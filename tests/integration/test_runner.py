"""The converge run as AWX and AAP run it: ansible-runner on a private data dir (issue 10).

Runs after test_site.py, on the lab it converged, and before test_faults.py (ORDER in conftest.py): a check run
(what a "Check only" survey answer starts) and a normal run, both of which must change nothing. Each job gets its
own private data dir, as in AWX:

    project/site.yml          the playbook, as a project checkout brings it
    inventory/                a copy of inventories/lab (hosts.yml, group_vars, host_vars) without the SSH key path
    env/ssh_key               the key, as a machine credential gives it (ansible-runner hands it to ssh-agent)
    env/extravars             what test_site.py left declared (logs01 deleted)
    env/envvars, env/settings the repository's ansible.cfg and collections path; quiet, bounded
    env/cmdline               --check --diff for the check job only (ansible-runner writes run(cmdline=...) there)

Asserted from what ansible-runner records (artifacts/<ident>/): status and rc, the playbook_on_stats event, the
report rows in the event of the role's Report task, and that no CHAP secret of the lab appears in any artifact.
"""

import json
import os
import shutil
import stat
import time

import ansible_runner
import pytest
import yaml
from lab_helpers import INVENTORY, ROOT

pytestmark = pytest.mark.lab

with open(os.path.join(INVENTORY, "group_vars", "all.yml")) as _handle:
    DECLARED = yaml.safe_load(_handle)["blockstore_volumes"]
# What test_site.py left declared: logs01 was deleted with force at its end.
VOLUMES = [v for v in DECLARED if v["name"] != "logs01"] + [{"name": "logs01", "state": "absent", "force": True}]
EXPECTED_ROWS = {v["name"]: "absent" if v.get("state") == "absent" else "in-use" if v.get("attachments")
                 else "available" for v in VOLUMES}
HOSTS = {"stor1", "stor2", "client1", "localhost"}
REPORT_TASK = "ember.blockstore.blockstore : Report"


def private_data_dir(lab, base):
    """A private data dir laid out as AWX lays out one job's."""
    project = base / "project"
    project.mkdir()
    shutil.copy(os.path.join(ROOT, "playbooks", "site.yml"), str(project / "site.yml"))
    inventory = base / "inventory"
    shutil.copytree(INVENTORY, str(inventory))
    hosts_file = inventory / "hosts.yml"
    hosts = yaml.safe_load(hosts_file.read_text())
    # No secret in the inventory: the key comes as a machine credential does, in env/ssh_key.
    key_path = hosts["all"]["vars"].pop("ansible_ssh_private_key_file")
    assert os.path.abspath(key_path) == os.path.abspath(lab.key)
    hosts_file.write_text(yaml.safe_dump(hosts, default_flow_style=False))
    env = base / "env"
    env.mkdir()
    with open(lab.key) as handle:
        (env / "ssh_key").write_text(handle.read())
    (env / "extravars").write_text(yaml.safe_dump({"blockstore_volumes": VOLUMES}, default_flow_style=False))
    (env / "envvars").write_text(json.dumps({
        "ANSIBLE_CONFIG": os.path.join(ROOT, "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(ROOT, ".collections"),
    }))
    (env / "settings").write_text(json.dumps({"suppress_ansible_output": True, "job_timeout": 1800}))
    return str(base)


@pytest.fixture(scope="module")
def chap_secrets(lab):
    """The CHAP secrets of the lab's exports (stor1 holds db01-data's, attached to client1)."""
    secrets = set()
    for host in ("stor1", "stor2"):
        conf = lab.ssh(host, "cat /etc/tgt/conf.d/ember-*.conf").stdout
        for line in conf.splitlines():
            words = line.split()
            if words and words[0] in ("incominguser", "outgoinguser") and len(words) >= 3:
                secrets.add(words[2])
    assert secrets
    return secrets


def artifact_files(artifact_dir):
    """Every regular file under artifacts/<ident>/ (stdout, command, status, rc, job_events/*.json, fact_cache)."""
    for top, _dirs, names in os.walk(artifact_dir):
        for name in names:
            path = os.path.join(top, name)
            if stat.S_ISREG(os.lstat(path).st_mode):  # never open a FIFO (ansible-runner's ssh_key_data)
                yield path


def report_lines(events):
    """The lines the role's Report task printed on localhost, from its runner_on_ok event."""
    starts = [e for e in events if e["event"] == "playbook_on_task_start"
              and e["event_data"].get("name") == REPORT_TASK]
    assert len(starts) == 1, [e["event_data"].get("name") for e in events if e["event"] == "playbook_on_task_start"]
    uuid = starts[0]["event_data"]["task_uuid"]
    oks = [e for e in events if e["event"] == "runner_on_ok" and e["event_data"].get("task_uuid") == uuid]
    assert [e["event_data"]["host"] for e in oks] == ["localhost"]
    data = oks[0]["event_data"]
    assert data["resolved_role"] == "ember.blockstore.blockstore" and data["task"] == "Report"
    return data["res"]["msg"]


def run_as_awx(lab, tmp_path_factory, chap_secrets, ident, check):
    before = lab.state()
    base = tmp_path_factory.mktemp("awx-" + ident)
    pdd = private_data_dir(lab, base)
    start = time.monotonic()
    # One private data dir per job, as in AWX: run(cmdline=...) writes env/cmdline, where every later run of the
    # same dir would find it (the normal job would run in check mode).
    result = ansible_runner.run(private_data_dir=pdd, playbook="site.yml", ident=ident,
                                cmdline="--check --diff" if check else None)
    lab.timings["runner_%s_seconds" % ident] = round(time.monotonic() - start, 1)
    artifacts = os.path.join(pdd, "artifacts", ident)
    with open(os.path.join(artifacts, "stdout")) as handle:
        stdout = handle.read()
    assert result.status == "successful", stdout[-3000:]
    assert result.rc == 0, stdout[-3000:]
    with open(os.path.join(artifacts, "command")) as handle:
        command = json.load(handle)["command"]
    # ["ssh-agent", "sh", "-c", "... ssh-add <key> ... ansible-playbook [--check --diff] -i ... site.yml"]: the key
    # went through ssh-agent, as a machine credential's does.
    words = " ".join(command).split()
    assert command[0] == "ssh-agent" and "ssh-add" in words, command
    assert ("--check" in words and "--diff" in words) == check, command

    events = list(result.events)
    stats = [e for e in events if e["event"] == "playbook_on_stats"]
    assert len(stats) == 1
    stats = stats[0]["event_data"]
    assert set(stats["processed"]) == HOSTS, stats
    # The stats name only the hosts with a count above zero: nothing changed, failed or was unreachable.
    assert {host: stats["changed"].get(host, 0) for host in HOSTS} == {host: 0 for host in HOSTS}, stats
    assert not stats["failures"] and not stats["dark"], stats
    assert result.stats["changed"] == stats["changed"]

    lines = report_lines(events)
    assert lines[0].split()[0] == "volume" and set(lines[1]) <= {"-", " "}, lines[:2]
    rows = {line.split()[0]: line for line in lines[2:]
            if not line.startswith(("volumes:", "storage hosts", "pool "))}
    # Volumes other tests made and left out of the inventory (test_site's saved plan) are reported, not touched.
    extra = {name: line for name, line in rows.items() if name not in EXPECTED_ROWS}
    assert set(EXPECTED_ROWS) <= set(rows) and all("not in inventory" in line for line in extra.values()), lines
    assert any(line.startswith("pool ") for line in lines), lines
    for name, status in EXPECTED_ROWS.items():
        assert status in rows[name], (name, rows[name])
    assert "storage hosts: all reported" in lines, lines
    assert REPORT_TASK in stdout

    files = list(artifact_files(artifacts))
    assert any(os.sep + "job_events" + os.sep in path for path in files)
    for path in files:
        with open(path, "rb") as handle:
            content = handle.read()
        for secret in chap_secrets:
            assert secret.encode() not in content, "a CHAP secret is in %s" % path
    assert lab.state() == before


def test_check_job_through_ansible_runner_changes_nothing(lab, tmp_path_factory, chap_secrets):
    run_as_awx(lab, tmp_path_factory, chap_secrets, "check", check=True)


def test_job_through_ansible_runner_changes_nothing(lab, tmp_path_factory, chap_secrets):
    run_as_awx(lab, tmp_path_factory, chap_secrets, "run", check=False)

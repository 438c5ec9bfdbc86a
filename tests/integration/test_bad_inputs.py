"""Bad inventories and bad module arguments on the lab (tests/integration/bad_inputs.yml): each is refused with a
message naming the field and the value, and the hosts are byte for byte as before: LVs with their tags and sizes,
tgt's live targets and its configuration files, the consumer's sessions and node records, and each storage node's
placement ledger. One playbook run evaluates every case (tests/integration/playbooks/bad_inputs.yml): one gather,
the plan filter once per plan case on the controller, one module run per module case on its host.

Runs after test_site.py (conftest.py orders the files): the lab's declared volumes exist, scratch01 and archive01
have snapshot s1, db01-data is attached to client1 (the case file says what each case assumes).
"""

import json
import os

import pytest
import yaml
from lab_helpers import ROOT, run_playbook

pytestmark = pytest.mark.lab

with open(os.path.join(ROOT, "tests", "integration", "bad_inputs.yml")) as _handle:
    CASES = yaml.safe_load(_handle)["cases"]
# The placement ledger on each storage node (plugins/module_utils/_ledger.py LEDGER_PATH).
LEDGER = "/var/lib/ember-blockstore/ledger.json"
STORAGE = ("stor1", "stor2")


def host_state(lab):
    """lab.state() plus what it leaves out: each LV's attributes and tags in full, the tgt configuration files'
    contents and the ledger files, byte for byte (checksums of the files, their text for the diff)."""
    state = lab.state()
    for host in STORAGE:
        state[host]["lvs_full"] = lab.ssh(host, "lvs --reportformat json --units b --nosuffix -a "
                                                "-o vg_name,lv_name,lv_size,lv_attr,lv_tags,origin,pool_lv "
                                                "2>/dev/null; true").stdout
        state[host]["conf_files"] = lab.ssh(host, "cd /etc/tgt/conf.d 2>/dev/null && sha256sum -- * 2>/dev/null; "
                                                  "true").stdout
        state[host]["ledger"] = lab.ssh(host, "cat %s 2>/dev/null; sha256sum %s 2>/dev/null; true"
                                        % (LEDGER, LEDGER)).stdout
    return state


def test_every_bad_input_is_refused_and_changes_nothing(lab, tmp_path):
    before = host_state(lab)
    out = tmp_path / "bad_inputs.json"
    run = run_playbook(lab, playbook="tests/integration/playbooks/bad_inputs.yml",
                       extra_vars={"bad_inputs_out": str(out)}, tmp_path=tmp_path)
    lab.timings["bad_inputs_seconds"] = round(run.seconds, 1)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    summary = json.loads(out.read_text())
    problems = []
    for case in CASES:
        got = summary.get(case["id"])
        if got is None:
            problems.append("%s: not run" % case["id"])
        elif not got["failed"]:
            problems.append("%s: accepted" % case["id"])
        else:
            missing = [e for e in case["expect"] if e not in got["msg"]]
            if missing:
                problems.append("%s: %r not in %r" % (case["id"], missing, got["msg"][-600:]))
    assert not problems, "\n".join(problems)
    assert sorted(summary) == sorted(c["id"] for c in CASES)
    # Nothing changed on any host (localhost wrote the summary).
    assert {h: n for h, n in run.changed_by_host().items() if h != "localhost"} == dict.fromkeys(
        [h for h in run.changed_by_host() if h != "localhost"], 0), run.changed_tasks()
    after = host_state(lab)
    assert after == before

"""Security on the lab (issue 7): what the unit tests prove about inputs, checked on real hosts.

- An unmanaged LV and an unmanaged tgt target named like managed ones survive every run, and the plan refuses the
  clash before any change (check mode and real run, present and absent).
- A target's CHAP binding is verified after an update that tgt-admin skipped: the module fails saying whether the
  account is bound, instead of reporting success.
- ``ps`` on the consumer and on the storage node during a login shows no CHAP secret.
- ``ss -ltn`` on a storage node shows tgtd listening only on its storage address (also after a restart), and the
  role variable widens it live.

Each test is self-contained: the ``converged`` fixture converges the lab's declared state first (a no-op when
test_site.py ran before), and every test restores what it changed (the lab is shared with other scenarios).
"""

import os
import re
import shlex

import pytest
import yaml
from lab_helpers import ROOT, module_play, run_playbook

pytestmark = pytest.mark.lab

PREFIX = "iqn.2026-11.io.ember.blockstore:"
STORAGE_IP = {"stor1": "198.18.0.11", "stor2": "198.18.0.12"}

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    DECLARED = yaml.safe_load(_handle)["blockstore_volumes"]


@pytest.fixture(scope="module")
def converged(lab):
    run = run_playbook(lab)
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-2000:]
    return run


def conf_of(lab, host, volume):
    """``(target iqn, CHAP user, CHAP secret)`` from a volume's target file on ``host``."""
    conf = lab.ssh(host, "cat /etc/tgt/conf.d/ember-volume-%s.conf" % volume).stdout
    iqn = re.search(r"^<target (\S+)>$", conf, re.MULTILINE).group(1)
    user, secret = re.search(r"^\s*incominguser (\S+) (\S+)$", conf, re.MULTILINE).groups()
    return iqn, user, secret


def tid_of(lab, host, iqn):
    shown = lab.ssh(host, "tgtadm --lld iscsi --mode target --op show").stdout
    return int(re.search(r"^Target (\d+): %s$" % re.escape(iqn), shown, re.MULTILINE).group(1))


def accounts_of(lab, host, iqn):
    shown = lab.ssh(host, "tgtadm --lld iscsi --mode target --op show").stdout
    block = shown.split("Target %d: %s\n" % (tid_of(lab, host, iqn), iqn), 1)[1].split("\nTarget ", 1)[0]
    section = block.split("Account information:\n", 1)[1].split("ACL information:", 1)[0]
    return [line.strip() for line in section.splitlines() if line.strip()]


def wait_for_sessions(lab):
    """Consumers reconnect on their own (node.startup automatic); wait until every declared attachment is back."""
    attached = [v["name"] for v in DECLARED if v.get("attachments")]
    script = "for i in $(seq 90); do s=$(iscsiadm -m session 2>/dev/null); ok=1; for v in %s; do " \
             "echo \"$s\" | grep -q \"volume-$v \" || ok=0; done; [ $ok = 1 ] && exit 0; sleep 2; done; exit 1" % (
                 " ".join(attached))
    lab.ssh("client1", script)


# --- an unmanaged LV and an unmanaged target named like managed ones -----------------------------------------

CLASH_LV, CLASH_HALF, CLASH_TARGET = "clash01", "clash02", "clash03"
CLASH_TID = 900


def test_unmanaged_lv_and_target_survive_and_the_plan_refuses_the_clash(lab, converged, tmp_path):
    setup = [
        ("stor2", "lvcreate --yes -L 8m -n volume-%s ember-thick" % CLASH_LV),
        # Half the mark is not the mark: only ember.blockstore, no ember.volume=<name>.
        ("stor2", "lvcreate --yes -L 8m -n volume-%s --addtag ember.blockstore ember-thick" % CLASH_HALF),
        ("stor1", "truncate -s 8M /tmp/%s.img && tgtadm --lld iscsi --mode target --op new --tid %d -T %svolume-%s "
                  "&& tgtadm --lld iscsi --mode logicalunit --op new --tid %d --lun 1 -b /tmp/%s.img"
         % (CLASH_TARGET, CLASH_TID, PREFIX, CLASH_TARGET, CLASH_TID, CLASH_TARGET)),
    ]
    try:
        for host, command in setup:
            lab.ssh(host, command)
        before = lab.state()
        extra = [{"name": CLASH_LV, "size": "64MiB", "volume_type": "bulk"},
                 {"name": CLASH_HALF, "size": "64MiB", "volume_type": "bulk"},
                 {"name": CLASH_TARGET, "size": "64MiB", "volume_type": "bulk", "attachments": [{"host": "client1"}]}]
        for check in (True, False):
            run = run_playbook(lab, check=check, extra_vars={"blockstore_volumes": DECLARED + extra},
                               tmp_path=tmp_path)
            assert run.rc != 0
            text = run.messages()
            assert "volume %s (blockstore_volumes[%d]) clashes on stor2: VG ember-thick has LV volume-%s" % (
                CLASH_LV, len(DECLARED), CLASH_LV) in text, text[-3000:]
            assert "clashes on stor2: VG ember-thick has LV volume-%s" % CLASH_HALF in text
            assert "clashes on stor1: target %svolume-%s is not managed by ember.blockstore" % (
                PREFIX, CLASH_TARGET) in text
            assert lab.state() == before
        # Declared absent (even with force) the names are still refused, and nothing is deleted.
        absent = [{"name": v["name"], "state": "absent", "force": True} for v in extra]
        run = run_playbook(lab, extra_vars={"blockstore_volumes": DECLARED + absent}, tmp_path=tmp_path)
        assert run.rc != 0 and "clashes on stor1: target" in run.messages()
        assert lab.state() == before
        # The modules refuse them as well when called directly (no plan in front of them).
        play = module_play(tmp_path, "stor1", "ember.blockstore.attachment", {
            "portal": STORAGE_IP["stor1"], "force": True,
            "attachments": [{"volume": CLASH_TARGET, "vg": "ember-thick", "state": "absent"}]})
        run = run_playbook(lab, playbook=play)
        assert run.rc != 0
        assert "live target %svolume-%s (tid %d) is not managed by ember.blockstore" % (
            PREFIX, CLASH_TARGET, CLASH_TID) in run.messages()
        play = module_play(tmp_path, "stor2", "ember.blockstore.volume", {
            "volumes": [{"name": CLASH_LV, "vg": "ember-thick", "state": "absent", "force": True, "cascade": True},
                        {"name": CLASH_HALF, "vg": "ember-thick", "state": "absent", "force": True}]})
        run = run_playbook(lab, playbook=play)
        assert run.rc != 0 and "is not managed by ember.blockstore" in run.messages()
        assert lab.state() == before
        # backend_info reports them (the inventory without the clashing names plans fine).
        run = run_playbook(lab, check=True, extra_vars={"blockstore_volumes": DECLARED}, tmp_path=tmp_path)
        assert run.rc == 0, run.stdout[-3000:]
        pools = run.task("Gather pools, placement ledger and host state")
        stor2 = {c["lv_name"] for p in pools["stor2"]["pools"] for c in p["clashes"] if c["kind"] == "lv"}
        stor1 = {c["target_iqn"] for p in pools["stor1"]["pools"] for c in p["clashes"] if c["kind"] == "target"}
        assert {"volume-" + CLASH_LV, "volume-" + CLASH_HALF} <= stor2
        assert PREFIX + "volume-" + CLASH_TARGET in stor1
    finally:
        lab.ssh("stor2", "lvremove -f ember-thick/volume-%s ember-thick/volume-%s 2>/dev/null; true"
                % (CLASH_LV, CLASH_HALF), check=False)
        lab.ssh("stor1", "tgtadm --lld iscsi --mode target --op delete --force --tid %d 2>/dev/null; "
                         "rm -f /tmp/%s.img; true" % (CLASH_TID, CLASH_TARGET), check=False)
    after = run_playbook(lab, tmp_path=tmp_path)
    assert after.rc == 0 and after.changed == 0, after.changed_by_host()


# --- the CHAP binding is verified after an update that tgt-admin skipped --------------------------------------

SHIM = """#!/bin/sh
# Test shim (test_security.py): tgt-admin without --force, so a target with a session is skipped as in use.
echo "$*" >> /tmp/ember-tgt-admin-shim.log
args=""
for a in "$@"; do [ "$a" = "--force" ] || args="$args $a"; done
exec /usr/sbin/tgt-admin $args
"""


def test_chap_binding_is_verified_after_an_update_that_tgt_admin_skipped(lab, converged, tmp_path):
    volume = "db01-data"
    iqn, user, _secret = conf_of(lab, "stor1", volume)
    tid = tid_of(lab, "stor1", iqn)
    assert accounts_of(lab, "stor1", iqn) == [user]
    assert "volume-%s " % volume in lab.ssh("client1", "iscsiadm -m session").stdout  # in use
    try:
        # The state 0.1.0's order could leave behind: the account unbound from a live target in use.
        lab.ssh("stor1", "tgtadm --lld iscsi --mode account --op unbind --tid %d --user %s" % (tid, user))
        assert accounts_of(lab, "stor1", iqn) == []
        # A tgt-admin that skips targets in use even when forced (the module runs the first tgt-admin in PATH).
        lab.ssh("stor1", "rm -f /tmp/ember-tgt-admin-shim.log; cat > /usr/local/sbin/tgt-admin <<'EOF'\n%sEOF\n"
                         "chmod 755 /usr/local/sbin/tgt-admin" % SHIM)
        play = module_play(tmp_path, "stor1", "ember.blockstore.attachment", {
            "portal": STORAGE_IP["stor1"], "force": True,
            "attachments": [{"volume": volume, "vg": "ember-thin",
                             "initiators": [lab.ssh("client1", "sed -n 's/^InitiatorName=//p' "
                                                               "/etc/iscsi/initiatorname.iscsi").stdout.strip()],
                             "initiator_addresses": ["198.18.0.21"]}]})
        run = run_playbook(lab, playbook=play)
        assert "--delete %s" % iqn in lab.ssh("stor1", "cat /tmp/ember-tgt-admin-shim.log").stdout  # it ran
        assert run.rc != 0, "the module reported success although tgt-admin skipped the target"
        text = run.messages()
        assert "target %s was not reloaded" % iqn in text, text[-3000:]
        assert "with CHAP account %s NOT bound" % user in text
        # Nothing was made weaker than it was: the account was not deleted, the target is still there.
        assert user in lab.ssh("stor1", "tgtadm --lld iscsi --mode account --op show").stdout
        assert tid_of(lab, "stor1", iqn) == tid
    finally:
        lab.ssh("stor1", "rm -f /usr/local/sbin/tgt-admin /tmp/ember-tgt-admin-shim.log; "
                         "tgtadm --lld iscsi --mode account --op bind --tid %d --user %s 2>/dev/null; true"
                % (tid, user), check=False)
    assert accounts_of(lab, "stor1", iqn) == [user]
    again = run_playbook(lab, tmp_path=tmp_path)
    assert again.rc == 0 and again.changed == 0, again.changed_by_host()


# --- no secret in ps during a login -----------------------------------------------------------------------------

SAMPLER = ("nohup sh -c 'while :; do ps -eo args; sleep 0.05; done' > /tmp/ember-ps.log 2>/dev/null & "
           "echo $! > /tmp/ember-ps.pid")
# Every iscsiadm command line the run makes, exactly (ps sampling alone can miss a command of a few ms on a loaded
# host): a shim first in PATH that records its arguments and runs the real iscsiadm.
ARGV_SHIM = ("set -e; real=$(command -v iscsiadm); rm -f /tmp/ember-iscsiadm-argv.log; "
             "printf '#!/bin/sh\\n# Test shim (test_security.py)\\n"
             "printf \"%%s\\\\n\" \"$*\" >> /tmp/ember-iscsiadm-argv.log\\nexec %s \"$@\"\\n' \"$real\" "
             "> /usr/local/sbin/iscsiadm; chmod 755 /usr/local/sbin/iscsiadm")


def test_ps_shows_no_secret_during_a_login(lab, converged, tmp_path):
    volume = "db02-data"
    host = next(h for h in ("stor1", "stor2") if volume in lab.managed_lvs(h))
    iqn, _user, secret = conf_of(lab, host, volume)
    portal = "%s:3260" % STORAGE_IP[host]
    # Log client1 out of the volume and forget the node record, so that the run logs in again from scratch.
    lab.ssh("client1", "iscsiadm -m node -T %s -p %s --logout && iscsiadm -m node -T %s -p %s -o delete"
            % (iqn, portal, iqn, portal))
    try:
        lab.ssh("client1", ARGV_SHIM)
        for side in ("client1", host):
            lab.ssh(side, SAMPLER)
        run = run_playbook(lab, tmp_path=tmp_path)
        assert run.rc == 0, run.stdout[-3000:]
    finally:
        logs = {}
        for side in ("client1", host):
            lab.ssh(side, "kill $(cat /tmp/ember-ps.pid) 2>/dev/null; true", check=False)
            logs[side] = lab.ssh(side, "cat /tmp/ember-ps.log; rm -f /tmp/ember-ps.log /tmp/ember-ps.pid",
                                 check=False).stdout
        argv = lab.ssh("client1", "cat /tmp/ember-iscsiadm-argv.log; rm -f /usr/local/sbin/iscsiadm "
                                  "/tmp/ember-iscsiadm-argv.log", check=False).stdout
    assert "volume-%s " % volume in lab.ssh("client1", "iscsiadm -m session").stdout
    # The run's own iscsiadm commands, recorded exactly: the login happened (so the silence means something) ...
    assert re.search(r"^-m node -T %s -p \S+ --login$" % re.escape(iqn), argv, re.MULTILINE), argv
    # ... none of them carried the secret, and no process on either side had it on its command line.
    assert secret not in argv, "the CHAP secret was on an iscsiadm command line"
    for side, log in logs.items():
        assert secret not in log, "%s: the CHAP secret appeared in ps" % side
    # The secret is in the node record instead (root-only).
    record = lab.ssh("client1", "grep -l %s -r /etc/iscsi/nodes/%s" % (shlex.quote(secret), iqn)).stdout.split()
    assert record
    assert lab.ssh("client1", "stat -c %%a %s" % record[0]).stdout.strip() == "600"


# --- tgtd listens on the storage address only ---------------------------------------------------------------------

def tgtd_listening(lab, host):
    out = lab.ssh(host, "ss -Hltnp").stdout
    return sorted(line.split()[3] for line in out.splitlines() if '"tgtd"' in line)


def test_tgtd_listens_only_on_the_storage_address(lab, converged, tmp_path):
    for host, address in STORAGE_IP.items():
        assert tgtd_listening(lab, host) == ["%s:3260" % address], host
    # After a restart too (the drop-in opens the storage address once the targets are loaded).
    lab.ssh("stor1", "systemctl restart tgt")
    assert tgtd_listening(lab, "stor1") == ["198.18.0.11:3260"]
    wait_for_sessions(lab)


def test_the_portal_list_widens_and_narrows_live(lab, converged, tmp_path):
    # Only stor2 gets the wider list: an extra var is templated per host.
    wider = {"blockstore_tgt_portal_addresses": "{{ [blockstore_storage_ip, '127.0.0.1:3260'] "
                                                "if inventory_hostname == 'stor2' else [] }}"}
    try:
        run = run_playbook(lab, extra_vars=wider, tmp_path=tmp_path)
        assert run.rc == 0, run.stdout[-3000:]
        assert tgtd_listening(lab, "stor2") == ["127.0.0.1:3260", "198.18.0.12:3260"]
        assert tgtd_listening(lab, "stor1") == ["198.18.0.11:3260"]
    finally:
        run = run_playbook(lab, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    assert tgtd_listening(lab, "stor2") == ["198.18.0.12:3260"]
    # The sessions to stor2 were not dropped by the live change.
    wait_for_sessions(lab)
    again = run_playbook(lab, tmp_path=tmp_path)
    assert again.changed == 0, again.changed_by_host()

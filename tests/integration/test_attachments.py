"""Attachments as os-brick does them, on the lab (make test-full: its own lab boot).

One inventory grows through the file: a multiattach volume on client1 and on stor2 (a storage node that is also
a consumer, from an extra inventory source), a volume with mutual CHAP, and a volume with a filesystem that is
extended while mounted and under I/O, detached (refused while mounted, then by removing it from the inventory)
and attached again. Each converge is check -> real -> again (changed=0) -> check (changed=0) where it changes
something; every step asserts the hosts (sessions, node records, target ACLs, LVs, checksums), not only Ansible's
output. The last test times attach and detach against the raw tgtadm + iscsiadm commands.

make test-full boots the lab with its second storage network (EMBER_LAB_SECOND_NET=1): every host lists two
addresses in blockstore_storage_ips, so every attachment here is dm-multipath (two portals, one map named by the
LUN's WWID), and one test cuts a storage link under I/O. On a lab with one network the same tests check by-path
devices and one address per host.
"""

import copy
import hashlib
import os
import time

import pytest
import yaml
from lab_helpers import ROOT, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.full]

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    _LAB_VARS = yaml.safe_load(_handle)
PREFIX = "iqn.2026-11.io.ember.blockstore:"
MiB = 2**20
TYPES = dict(copy.deepcopy(_LAB_VARS["blockstore_volume_types"]),
             shared={"extra_specs": {"volume_backend_name": "lvm-thin", "multiattach": "<is> True"}},
             mutual={"extra_specs": {"volume_backend_name": "lvm-thin"}, "mutual_chap": True})
WHERE = {"shared01": "stor1", "mchap01": "stor1", "grow01": "stor2"}
SHARED = {}


def volumes(**changes):
    """The lab's volumes plus this file's, with some of this file's replaced (by name)."""
    ours = {
        "shared01": {"name": "shared01", "size": "64MiB", "volume_type": "shared", "availability_zone": "az1",
                     "attachments": [{"host": "client1"}, {"host": "stor2"}]},
        "mchap01": {"name": "mchap01", "size": "64MiB", "volume_type": "mutual", "availability_zone": "az1",
                    "attachments": [{"host": "client1"}]},
        "grow01": {"name": "grow01", "size": "256MiB", "volume_type": "bulk", "availability_zone": "az2",
                   "attachments": [{"host": "client1"}]},
    }
    ours.update(changes)
    return {"blockstore_volume_types": TYPES,
            "blockstore_volumes": copy.deepcopy(_LAB_VARS["blockstore_volumes"]) + [ours[n] for n in sorted(ours)]}


@pytest.fixture(scope="module")
def consumers(tmp_path_factory):
    """An inventory source that makes stor2 a consumer as well (a second initiator for multiattach)."""
    path = tmp_path_factory.mktemp("inventory") / "stor2-consumer.yml"
    path.write_text(yaml.safe_dump({"all": {"children": {"blockstore_consumers": {"hosts": {"stor2": {}}}}}}))
    return [str(path)]


def converge(lab, tmp_path, consumers, extra, check_first=True):
    """check -> real -> again -> check; asserts the check runs change nothing on the hosts, the re-runs report
    changed=0. Returns the real run."""
    if check_first:
        before = lab.state()
        check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path, inventories=consumers)
        assert check.rc == 0, check.stdout[-3000:]
        assert lab.state() == before
    run = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path, inventories=consumers)
    assert run.rc == 0, run.stdout[-3000:]
    again = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path, inventories=consumers)
    assert again.rc == 0 and again.changed == 0, (again.changed_by_host(), sorted(again.changed_tasks()))
    check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path, inventories=consumers)
    assert check.rc == 0 and check.changed == 0, (check.changed_by_host(), sorted(check.changed_tasks()))
    return run


def iqn(name):
    return PREFIX + "volume-" + name


def addresses(lab, host):
    """The host's storage addresses as the lab inventory lists them (the primary first)."""
    return lab.hosts[host].get("blockstore_storage_ips") or [lab.hosts[host]["blockstore_storage_ip"]]


def portals(lab, host):
    return ["%s:3260" % address for address in addresses(lab, host)]


def multipath(lab):
    return len(addresses(lab, "stor1")) > 1


def wwid(name):
    """The WWID udev reads from the LUN (drivers/tgt.lun_identity): 36 and the last 31 of the 32 hex digits."""
    return "36" + hashlib.sha256(("ember.blockstore volume %s" % name).encode()).hexdigest()[1:32]


def by_path(lab, name, index=0):
    return "/dev/disk/by-path/ip-%s-iscsi-%s-lun-1" % (portals(lab, WHERE[name])[index], iqn(name))


def device(lab, name):
    """The device a consumer uses: the dm-multipath map with two storage networks, else the by-path link."""
    return "/dev/mapper/" + wwid(name) if multipath(lab) else by_path(lab, name)


def map_paths(lab, host, name):
    """``{path device: (dm state, checker state)}`` of the volume's map on ``host`` (``multipath -ll``: ``active``
    / ``failed``, ``ready`` / ``faulty``...)."""
    out = lab.ssh(host, "multipath -ll %s" % wwid(name)).stdout
    paths = {}
    for line in out.splitlines():
        words = line.replace("|-", " ").replace("`-", " ").split()
        if len(words) >= 6 and words[0].count(":") == 3:
            paths[words[1]] = (words[3], words[4])
    return paths


def sessions(lab, host):
    return lab.ssh(host, "iscsiadm -m session 2>/dev/null; true").stdout


def nodes(lab, host):
    return lab.ssh(host, "iscsiadm -m node 2>/dev/null; true").stdout


def target(lab, name):
    """``tgtadm --op show`` text of the volume's target on its storage node ('' when there is none)."""
    out = lab.ssh(WHERE[name], "tgtadm --lld iscsi --mode target --op show").stdout
    blocks = out.split("Target ")
    return next(("Target " + b for b in blocks if b.split("\n", 1)[0].endswith(": " + iqn(name))), "")


def acl(lab, name):
    text = target(lab, name)
    return sorted(line.strip() for line in text.split("ACL information:", 1)[-1].splitlines()[1:] if line.strip()) \
        if "ACL information:" in text else []


def sha(lab, host, path, mib):
    return lab.ssh(host, "dd if=%s bs=1M count=%d iflag=direct status=none | sha256sum" % (path, mib)).stdout.split()[0]


def test_multiattach_and_mutual_chap_attach(lab, tmp_path, consumers):
    converge(lab, tmp_path, consumers, volumes())
    for name in ("shared01", "mchap01", "grow01"):
        assert iqn(name) + " " in sessions(lab, "client1") + " ", name
    assert iqn("shared01") in sessions(lab, "stor2")
    assert acl(lab, "shared01") == sorted(addresses(lab, "client1") + addresses(lab, "stor2"))
    if multipath(lab):
        # One session per portal, one map per volume over both paths, named by the LUN's stable WWID.
        for host, names in (("client1", ("shared01", "mchap01", "grow01")), ("stor2", ("shared01",))):
            for name in names:
                lines = [line for line in sessions(lab, host).splitlines() if (iqn(name) + " ") in line + " "]
                assert len(lines) == 2, (host, name, lines)
                paths = map_paths(lab, host, name)
                assert len(paths) == 2 and set(paths.values()) == {("active", "ready")}, (host, name, paths)
                for path in paths:
                    assert lab.ssh(host, "/lib/udev/scsi_id -g -u -d /dev/%s" % path).stdout.strip() == wwid(name)
    # Both consumers read the same bytes (direct I/O: no page cache on either side).
    lab.ssh("client1", "dd if=/dev/urandom of=/root/shared.bin bs=1M count=8 status=none && "
                       "dd if=/root/shared.bin of=%s bs=1M oflag=direct status=none" % device(lab, "shared01"))
    written = lab.ssh("client1", "sha256sum /root/shared.bin").stdout.split()[0]
    assert sha(lab, "client1", device(lab, "shared01"), 8) == written
    assert sha(lab, "stor2", device(lab, "shared01"), 8) == written
    # Mutual CHAP: the target has an outgoing account, client1's node record the credentials to check it with.
    account = target(lab, "mchap01").split("Account information:", 1)[1].split("ACL information:", 1)[0]
    assert "(outgoing)" in account, account
    record = lab.ssh("client1", "iscsiadm -m node -T %s -p %s" % (iqn("mchap01"), portals(lab, "stor1")[0])).stdout
    user_in = [line.split("=", 1)[1].strip() for line in record.splitlines()
               if line.startswith("node.session.auth.username_in")]
    assert user_in and user_in[0] in account, (user_in, account)


def test_multiattach_is_refused_without_the_type_flag(lab, tmp_path, consumers):
    extra = volumes(shared02={"name": "shared02", "size": "64MiB", "volume_type": "fast",
                              "attachments": [{"host": "client1"}, {"host": "stor2"}]})
    before = lab.state()
    run = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path, inventories=consumers)
    assert run.rc != 0
    assert "2 hosts (client1, stor2), but volume type fast does not allow multiattach" in run.messages()
    assert lab.state() == before


def test_mutual_chap_a_wrong_target_secret_is_refused(lab, tmp_path, consumers):
    # Without -p: every node record of the target (one per portal with two storage networks).
    node = "iscsiadm -m node -T %s" % iqn("mchap01")
    lab.ssh("client1", node + " --logout")
    lab.ssh("client1", node + " -o update -n node.session.auth.password_in -v WrongTargetSecret42")
    login = lab.ssh("client1", node + " --login", check=False)
    assert login.returncode != 0, login.stdout
    assert iqn("mchap01") not in sessions(lab, "client1")
    # The next run logs in again with the target's real credentials (it rewrites the record).
    run = run_playbook(lab, extra_vars=volumes(), tmp_path=tmp_path, inventories=consumers)
    assert run.rc == 0, run.stdout[-3000:]
    assert iqn("mchap01") in sessions(lab, "client1")
    again = run_playbook(lab, extra_vars=volumes(), tmp_path=tmp_path, inventories=consumers)
    assert again.rc == 0 and again.changed == 0, sorted(again.changed_tasks())


def test_online_extend_under_io_and_detach_of_one_consumer(lab, tmp_path, consumers):
    dev = device(lab, "grow01")
    lab.ssh("client1", "mkfs.ext4 -q -F %s && mkdir -p /mnt/grow && mount %s /mnt/grow && "
                       "dd if=/dev/urandom of=/mnt/grow/data bs=1M count=16 status=none && sync" % (dev, dev))
    SHARED["data"] = lab.ssh("client1", "sha256sum /mnt/grow/data").stdout.split()[0]
    sid = [line for line in sessions(lab, "client1").splitlines() if iqn("shared01") in line]
    # Direct writes through the filesystem for as long as the runs take; any failed write is recorded.
    lab.ssh("client1", "touch /tmp/io.run; rm -f /tmp/io.fail /tmp/io.count; nohup sh -c 'n=0; while [ -e "
                       "/tmp/io.run ]; do dd if=/dev/zero of=/mnt/grow/io bs=64k count=16 oflag=direct conv=fsync "
                       "status=none 2>>/tmp/io.err || echo $n >>/tmp/io.fail; n=$((n+1)); done; echo $n >/tmp/io.count'"
                       " >/dev/null 2>&1 &")
    extra = volumes(grow01={"name": "grow01", "size": "512MiB", "volume_type": "bulk", "availability_zone": "az2",
                            "attachments": [{"host": "client1"}]},
                    shared01={"name": "shared01", "size": "64MiB", "volume_type": "shared",
                              "availability_zone": "az1", "attachments": [{"host": "client1"}]})
    start = time.monotonic()
    run = converge(lab, tmp_path, consumers, extra)
    SHARED["detach_run_seconds"] = run.seconds
    lab.ssh("client1", "rm -f /tmp/io.run; for i in $(seq 60); do [ -e /tmp/io.count ] && break; sleep 1; done")
    count = int(lab.ssh("client1", "cat /tmp/io.count").stdout.strip())
    failed = lab.ssh("client1", "cat /tmp/io.fail /tmp/io.err 2>/dev/null; true").stdout.strip()
    lab.timings["extend_io_writes"] = count
    lab.timings["extend_runs_seconds"] = round(time.monotonic() - start, 1)
    assert count > 0 and not failed, (count, failed)
    # The consumer sees the new size on the live session; the filesystem grows on it; the data is intact.
    assert int(lab.ssh("client1", "blockdev --getsize64 %s" % dev).stdout) == 512 * MiB
    lab.ssh("client1", "resize2fs %s" % dev)
    assert int(lab.ssh("client1", "df -B1 --output=size /mnt/grow | tail -1").stdout) > 400 * MiB
    assert lab.ssh("client1", "sha256sum /mnt/grow/data").stdout.split()[0] == SHARED["data"]
    # stor2 was detached from shared01: its session and node record are gone, the ACL holds client1 only, and
    # client1's session is the same one (the ACL changed live).
    assert iqn("shared01") not in sessions(lab, "stor2") and iqn("shared01") not in nodes(lab, "stor2")
    assert acl(lab, "shared01") == sorted(addresses(lab, "client1"))
    assert [line for line in sessions(lab, "client1").splitlines() if iqn("shared01") in line] == sid
    written = lab.ssh("client1", "sha256sum /root/shared.bin").stdout.split()[0]
    assert sha(lab, "client1", device(lab, "shared01"), 8) == written


def test_detach_of_a_mounted_device_is_refused_then_done_by_removal(lab, tmp_path, consumers):
    gone = volumes(grow01={"name": "grow01", "size": "512MiB", "volume_type": "bulk", "availability_zone": "az2",
                           "attachments": []},
                   shared01={"name": "shared01", "size": "64MiB", "volume_type": "shared",
                             "availability_zone": "az1", "attachments": [{"host": "client1"}]})
    SHARED.setdefault("data", lab.ssh("client1", "sha256sum /mnt/grow/data").stdout.split()[0])
    before = lab.state()
    refused = run_playbook(lab, extra_vars=gone, tmp_path=tmp_path, inventories=consumers)
    assert refused.rc != 0
    assert "/mnt/grow" in refused.messages() and "force: true" in refused.messages()
    assert lab.state() == before
    assert lab.ssh("client1", "findmnt -n -o TARGET /mnt/grow").stdout.strip() == "/mnt/grow"
    assert acl(lab, "grow01") == sorted(addresses(lab, "client1"))
    lab.ssh("client1", "umount /mnt/grow")
    start = time.monotonic()
    run = converge(lab, tmp_path, consumers, gone)
    SHARED["detach_seconds"] = run.seconds
    lab.timings["detach_converge_seconds"] = round(time.monotonic() - start, 1)
    assert iqn("grow01") not in sessions(lab, "client1") and iqn("grow01") not in nodes(lab, "client1")
    assert target(lab, "grow01") == ""
    assert "ember-volume-grow01.conf" not in lab.ssh("stor2", "ls /etc/tgt/conf.d").stdout
    assert lab.managed_lvs("stor2")["grow01"][1] == 512 * MiB  # the volume and its data stay
    if multipath(lab):
        assert wwid("grow01") not in lab.ssh("client1", "ls /dev/mapper").stdout  # the map is flushed


def test_attached_again_the_data_is_intact(lab, tmp_path, consumers):
    back = volumes(grow01={"name": "grow01", "size": "512MiB", "volume_type": "bulk", "availability_zone": "az2",
                           "attachments": [{"host": "client1"}]},
                   shared01={"name": "shared01", "size": "64MiB", "volume_type": "shared",
                             "availability_zone": "az1", "attachments": [{"host": "client1"}]})
    run = converge(lab, tmp_path, consumers, back, check_first=False)
    SHARED["attach_seconds"] = run.seconds
    lab.ssh("client1", "mount %s /mnt/grow" % device(lab, "grow01"))
    try:
        assert lab.ssh("client1", "sha256sum /mnt/grow/data").stdout.split()[0] == SHARED["data"]
    finally:
        lab.ssh("client1", "umount /mnt/grow")


def test_multipath_io_keeps_running_while_a_storage_link_is_cut(lab):
    # A direct-I/O dd loop on shared01's map on client1 (past the 8 MiB the earlier tests wrote) while stor1's
    # second storage NIC is down, then up again: no write fails, the path on the cut network is failed while it is
    # down and active again after, and the data written before is intact.
    if not multipath(lab):
        pytest.skip("one storage network (EMBER_LAB_SECOND_NET=1 boots the second)")
    dev = device(lab, "shared01")
    nic = "eth2"
    assert addresses(lab, "stor1")[1] in lab.ssh("stor1", "ip -4 -o addr show dev %s" % nic).stdout
    lab.ssh("client1", "touch /tmp/mp.run; rm -f /tmp/mp.fail /tmp/mp.err /tmp/mp.count; nohup sh -c 'n=0; while "
                       "[ -e /tmp/mp.run ]; do dd if=/dev/urandom of=%s bs=64k count=16 seek=256 oflag=direct "
                       "conv=fsync status=none 2>>/tmp/mp.err || echo $n >>/tmp/mp.fail; n=$((n+1)); done; "
                       "echo $n >/tmp/mp.count' >/dev/null 2>&1 &" % dev)
    try:
        time.sleep(5)
        lab.ssh("stor1", "ip link set %s down" % nic)
        cut = time.monotonic()
        while time.monotonic() - cut < 90:  # open-iscsi's NOP-Out timeout, then the checker, mark the path
            down = map_paths(lab, "client1", "shared01")
            if sorted(state for state, _checker in down.values()) == ["active", "failed"]:
                break
            time.sleep(3)
        lab.timings["multipath_path_failed_after_seconds"] = round(time.monotonic() - cut, 1)
        time.sleep(10)  # writes keep going on the path that is left
        lab.ssh("stor1", "ip link set %s up" % nic)
        back = time.monotonic()
        while time.monotonic() - back < 120:  # iscsid logs the session in again, the checker reinstates the path
            up = map_paths(lab, "client1", "shared01")
            if len(up) == 2 and set(up.values()) == {("active", "ready")}:
                break
            time.sleep(3)
        lab.timings["multipath_path_back_after_seconds"] = round(time.monotonic() - back, 1)
    finally:
        lab.ssh("stor1", "ip link set %s up" % nic, check=False)
        lab.ssh("client1", "rm -f /tmp/mp.run; for i in $(seq 120); do [ -e /tmp/mp.count ] && break; sleep 1; done")
    count = int(lab.ssh("client1", "cat /tmp/mp.count").stdout.strip())
    failed = lab.ssh("client1", "cat /tmp/mp.fail /tmp/mp.err 2>/dev/null; true").stdout.strip()
    lab.timings["multipath_cut_writes"] = count
    assert count > 0 and not failed, (count, failed)
    assert sorted(state for state, _checker in down.values()) == ["active", "failed"], down
    assert len(up) == 2 and set(up.values()) == {("active", "ready")}, up
    written = lab.ssh("client1", "sha256sum /root/shared.bin").stdout.split()[0]
    assert sha(lab, "client1", dev, 8) == written


def test_attach_and_detach_time_against_the_raw_commands(lab):
    # The raw way on the same lab in the same run: one SSH session to the storage node (tgtadm: target, LUN,
    # account, ACL) and one to the consumer (iscsiadm: node record, CHAP, login, wait for the device), then the
    # reverse. A scratch LV outside the project's names is the backing store; it is removed at the end.
    raw_iqn = "iqn.2026-11.io.example:raw01"
    lab.ssh("stor2", "lvcreate -q -y -L 64M -n rawtest ember-thick")
    # With two storage networks the raw way logs in on both portals and waits for the dm-multipath map, and
    # flushes the map before the logouts, as the project does.
    tgt = "tgtadm --lld iscsi --mode"
    attach_storage = (
        "set -e; %s target --op new --tid 900 -T %s; %s logicalunit --op new --tid 900 --lun 1 -b /dev/ember-thick/"
        "rawtest; %s account --op new --user rawuser --password RawSecret1234; %s account --op bind --tid 900 "
        "--user rawuser" % (tgt, raw_iqn, tgt, tgt, tgt))
    for address in addresses(lab, "client1"):
        attach_storage += "; %s target --op bind --tid 900 -I %s" % (tgt, address)
    links = ["/dev/disk/by-path/ip-%s-iscsi-%s-lun-1" % (portal, raw_iqn) for portal in portals(lab, "stor2")]
    ready = " && ".join("[ -e %s ]" % link for link in links)
    if multipath(lab):
        ready += "".join(' && [ -n "$(ls /sys/class/block/$(basename $(readlink -f %s))/holders)" ]' % link
                         for link in links)
    attach_consumer = "set -e"
    for portal in portals(lab, "stor2"):
        node = "iscsiadm -m node -T %s -p %s" % (raw_iqn, portal)
        attach_consumer += (
            "; %s -o new >/dev/null; %s -o update -n node.session.auth.authmethod -v CHAP; %s -o update -n "
            "node.session.auth.username -v rawuser; %s -o update -n node.session.auth.password -v RawSecret1234; "
            "%s --login >/dev/null" % (node, node, node, node, node))
    attach_consumer += "; for i in $(seq 100); do %s && exit 0; udevadm settle; sleep 0.1; done; exit 1" % ready
    node = "iscsiadm -m node -T %s" % raw_iqn
    detach_consumer = "set -e; %s --logout >/dev/null; %s -o delete" % (node, node)
    if multipath(lab):
        detach_consumer = ('set -e; dm=$(ls /sys/class/block/$(basename $(readlink -f %s))/holders); '
                           'multipath -f $(cat /sys/class/block/$dm/dm/name); %s --logout >/dev/null; %s -o delete'
                           % (links[0], node, node))
    detach_storage = ("set -e; %s target --op delete --tid 900; %s account --op delete --user rawuser"
                      % (tgt, tgt))
    try:
        start = time.monotonic()
        lab.ssh("stor2", attach_storage)
        lab.ssh("client1", attach_consumer)
        raw_attach = time.monotonic() - start
        start = time.monotonic()
        lab.ssh("client1", detach_consumer)
        lab.ssh("stor2", detach_storage)
        raw_detach = time.monotonic() - start
    finally:
        # Only the raw target's map (multipath -F would flush every unused map, the project's too).
        lab.ssh("client1", 'dm=$(ls /sys/class/block/$(basename $(readlink -f %s))/holders 2>/dev/null); '
                           '[ -z "$dm" ] || multipath -f $(cat /sys/class/block/$dm/dm/name); %s --logout; %s -o delete'
                % (links[0], node, node), check=False)
        lab.ssh("stor2", detach_storage + "; true", check=False)
        lab.ssh("stor2", "lvremove -q -y ember-thick/rawtest", check=False)
    lab.timings.update({
        "raw_attach_seconds": round(raw_attach, 1), "raw_detach_seconds": round(raw_detach, 1),
        "ember_attach_run_seconds": round(SHARED["attach_seconds"], 1),
        "ember_detach_run_seconds": round(SHARED["detach_seconds"], 1),
        "attach_ratio": round(SHARED["attach_seconds"] / raw_attach, 1),
        "detach_ratio": round(SHARED["detach_seconds"] / raw_detach, 1)})
    print("\nattach: ember.blockstore run %.1f s, raw commands %.1f s, ratio %.1f; detach: %.1f s, %.1f s, ratio %.1f"
          % (SHARED["attach_seconds"], raw_attach, SHARED["attach_seconds"] / raw_attach,
             SHARED["detach_seconds"], raw_detach, SHARED["detach_seconds"] / raw_detach))
    assert raw_attach > 0 and raw_detach > 0


def test_attachment_info_shows_both_sides(lab, tmp_path):
    # After the scenarios above: shared01 (client1 only now), mchap01 (mutual CHAP) and grow01 (512 MiB) are
    # attached to client1. attachment_info on stor1 and client1 reports them as the hosts show them, read-only,
    # and never a CHAP secret.
    playbook = tmp_path / "attachment-info.yml"
    playbook.write_text(yaml.safe_dump([
        {"hosts": "stor1", "gather_facts": False, "tasks": [
            {"name": "storage", "ember.blockstore.attachment_info": {"volume": ["shared01", "mchap01"]}}]},
        {"hosts": "client1", "gather_facts": False, "tasks": [
            {"name": "consumer", "ember.blockstore.attachment_info": {"view": "consumer"}}]}]))
    before = lab.state()
    run = run_playbook(lab, playbook=str(playbook), tmp_path=tmp_path)
    assert run.rc == 0 and run.changed == 0, run.stdout[-3000:]
    assert lab.state() == before
    storage = {t["volume"]: t for t in run.task("storage")["stor1"]["storage"]}
    assert sorted(storage) == ["mchap01", "shared01"]
    client1_iqn = lab.ssh("client1", "sed -n 's/^InitiatorName=//p' /etc/iscsi/initiatorname.iscsi").stdout.strip()
    shared = storage["shared01"]
    assert (sorted(shared["acl"]), shared["initiators"], shared["file_matches_live"], shared["mutual_chap"]) == (
        sorted(addresses(lab, "client1")), [client1_iqn], True, False), shared
    # One session (I_T nexus) per portal client1 logged in on.
    assert [s["initiator"] for s in shared["sessions"]] == [client1_iqn] * len(portals(lab, "stor1")), shared
    assert storage["mchap01"]["mutual_chap"] is True and storage["mchap01"]["file_matches_live"] is True
    secrets = lab.ssh("stor1", "awk '/incominguser|outgoinguser/ {print $3}' /etc/tgt/conf.d/ember-volume-*.conf"
                      ).stdout.split()
    assert secrets and not [s for s in secrets if s in run.stdout]
    # One record per (target, portal); with two networks each path shows the map over both, every path active.
    consumer = run.task("consumer")["client1"]["consumer"]
    grow = [c for c in consumer if c["volume"] == "grow01"]
    assert sorted(c["portal"] for c in grow) == sorted(portals(lab, "stor2")), grow
    for index, record in enumerate(sorted(grow, key=lambda c: portals(lab, "stor2").index(c["portal"]))):
        assert (record["logged_in"], record["node_record"], record["device"], record["size_bytes"]) == (
            True, True, by_path(lab, "grow01", index), 512 * MiB), record
        if multipath(lab):
            mpath = record["multipath"]
            assert (mpath["name"], mpath["device"]) == (wwid("grow01"), device(lab, "grow01")), mpath
            assert [(p["state"], p["dm_state"]) for p in mpath["paths"]] == [("running", "active")] * 2, mpath
        else:
            assert record["multipath"] is None, record
    assert {c["volume"] for c in consumer if c["logged_in"]} >= {"shared01", "mchap01", "grow01"}

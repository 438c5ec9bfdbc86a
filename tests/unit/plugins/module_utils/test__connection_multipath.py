# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The connection module with several portals (dm-multipath): the decision, the logins on each portal, the map
found through sysfs (holders of the path devices, ``dm/uuid`` ``mpath-``, ``dm/name``), logout of every portal
after the map is flushed, and the device-in-use check on the map. The sysfs tree is built under ``tmp_path``;
iscsiadm is a fake that records what it is asked."""

from __future__ import annotations

import os

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _connection
from ansible_collections.ember.blockstore.plugins.module_utils._connection import (
    ITEM_OPTIONS,
    ConnectionApplier,
    decide,
    portals_of,
    read_host,
    validate,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import (
    device_path,
    multipath_map,
    multipathd_running,
)

IQN = "iqn.2026-11.io.ember.blockstore:volume-db01-data"
P1, P2 = "198.18.0.11:3260", "198.18.1.11:3260"
PATH1, PATH2 = device_path(P1, IQN, 1), device_path(P2, IQN, 1)
WWID = "36a5bd2c80e8890de377e9ef5b5a1c7d7"
GIB = 1 << 30


def item(**values):
    out = {key: spec.get("default") for key, spec in ITEM_OPTIONS.items()}
    out.update(target_iqn=IQN, target_portal=P1, target_portals=[P1, P2], auth_username="ember_db01",
               auth_password="Secret_123456", volume="db01-data")
    out.update(values)
    return out


def block(root, name, size=GIB, holders=(), slaves=(), dm=None):
    base = root / name
    (base / "holders").mkdir(parents=True, exist_ok=True)
    (base / "slaves").mkdir(parents=True, exist_ok=True)
    (base / "size").write_text("%d\n" % (size // 512))
    for holder in holders:
        (base / "holders" / holder).mkdir(exist_ok=True)
    for slave in slaves:
        (base / "slaves" / slave).mkdir(exist_ok=True)
    if dm:
        (base / "dm").mkdir(exist_ok=True)
        (base / "dm" / "uuid").write_text("%s\n" % dm[0])
        (base / "dm" / "name").write_text("%s\n" % dm[1])


@pytest.fixture()
def sysfs(tmp_path):
    root = tmp_path / "block"
    block(root, "sdb", holders=["dm-0"])
    block(root, "sdc", holders=["dm-0"])
    block(root, "dm-0", slaves=["sdb", "sdc"], dm=("mpath-" + WWID, WWID))
    return root


class Runner:
    def __init__(self):
        self.calls = []

    def run(self, args, check=True, **kwargs):
        self.calls.append(list(args))
        return 0, "", ""


class FakeIscsi:
    """Sessions and records as ``(iqn, portal)``; devices appear per by-path link (``appear``)."""

    def __init__(self, sys_block, sessions=(), nodes=None, appear=None, pidfile=None):
        self.sys_block = str(sys_block)
        self.multipathd_pidfile = pidfile
        self.runner = Runner()
        self._sessions = set(sessions)
        self._nodes = set(nodes if nodes is not None else sessions)
        self.appear = appear or {}
        self.calls = []
        self.make_map = None  # what `multipath <device>` does in sysfs (None: nothing)

    def sessions(self):
        return [{"target_iqn": i, "portal": p} for i, p in sorted(self._sessions)]

    def nodes(self):
        return [{"target_iqn": i, "portal": p} for i, p in sorted(self._nodes)]

    def read_record(self, iqn, portal):
        return None

    def login(self, iqn, portal, *args, **kwargs):
        self.calls.append(("login", portal))
        self.login_kwargs = kwargs
        self._sessions.add((iqn, portal))
        return "file"

    def logout(self, iqn, portal):
        self.calls.append(("logout", portal))

    def delete_node(self, iqn, portal):
        self.calls.append(("delete_node", portal))

    def rescan(self, iqn, portal):
        self.calls.append(("rescan", portal))

    def flush_multipath(self, name, force=False):
        self.calls.append(("flush", name, force))

    def resize_multipath(self, name):
        self.calls.append(("resize_map", name))

    def create_multipath(self, device):
        self.calls.append(("create_map", device))
        if self.make_map is not None:
            self.make_map()

    def wait_for_device(self, path, timeout):
        return self.appear.get(path)

    def wait_for_size(self, real, size, timeout):
        return size


@pytest.fixture()
def pidfile(tmp_path):
    path = tmp_path / "multipathd.pid"
    path.write_text("%d\n" % os.getpid())
    return str(path)


@pytest.fixture()
def links(monkeypatch):
    """The by-path links that exist (``{path: /dev/sdX}``), as _connection.real_device sees them."""
    found = {}
    monkeypatch.setattr(_connection, "real_device", found.get)
    return found


@pytest.fixture()
def in_use(monkeypatch):
    users, seen = {}, []

    def fake(real, ignore_holders=(), ignore_openers=()):
        seen.append((real, tuple(ignore_holders)) + ((tuple(ignore_openers),) if ignore_openers else ()))
        return list(users.get(real, []))
    monkeypatch.setattr(_connection, "device_in_use", fake)
    return users, seen


# --- sysfs helpers -----------------------------------------------------------------------------------------------

def test_multipath_map_is_found_through_the_holders(sysfs):
    found = multipath_map(["/dev/sdb", "/dev/sdc"], str(sysfs))
    assert found == {"name": WWID, "dm": "dm-0", "device": "/dev/mapper/" + WWID, "real_device": "/dev/dm-0",
                     "slaves": ["sdb", "sdc"], "complete": True}
    assert multipath_map(["/dev/sdb", "/dev/sdd"], str(sysfs))["complete"] is False
    assert multipath_map([None, "/dev/sdd"], str(sysfs)) is None


def test_a_holder_that_is_not_a_multipath_map_is_not_one(tmp_path):
    root = tmp_path / "block"
    block(root, "sdb", holders=["dm-1"])
    block(root, "dm-1", slaves=["sdb"], dm=("LVM-abc", "vg-lv"))
    assert multipath_map(["/dev/sdb"], str(root)) is None


def test_multipathd_running_reads_its_pid_file(tmp_path, pidfile):
    assert multipathd_running(pidfile) is True
    assert multipathd_running(str(tmp_path / "none")) is False
    (tmp_path / "dead").write_text("999999999\n")
    assert multipathd_running(str(tmp_path / "dead")) is False


# --- validation and the decision -------------------------------------------------------------------------------

def test_portals_of_puts_the_primary_first_once():
    assert portals_of(item(target_portals=[P2, "198.18.0.11", P1])) == [P1, P2]
    assert portals_of(item(target_portals=None)) == [P1]


def test_every_portal_is_validated():
    errors = validate([item(target_portals=[P1, "198.18.1.11;reboot"])])
    assert len(errors) == 1 and "connections[0].target_portals[1]" in errors[0]


def test_a_fresh_consumer_logs_in_on_every_portal(sysfs, links, pidfile):
    iscsi = FakeIscsi(sysfs, pidfile=pidfile)
    (act,), errors = decide([item()], read_host(iscsi, [item()]))
    assert errors == []
    assert (act["action"], act["login_portals"], act["device"], act["paths"]) == (
        "login", [P1, P2], None, [PATH1, PATH2])


def test_without_multipathd_several_portals_fail_naming_the_package(sysfs, links, tmp_path):
    iscsi = FakeIscsi(sysfs, pidfile=str(tmp_path / "no-pid"))
    state = read_host(iscsi, [item()])
    assert state["multipathd"] is False
    (act,), errors = decide([item()], state)
    assert len(errors) == 1
    assert "multipath-tools" in errors[0] and "multipathd does not run" in errors[0] and P2 in errors[0]
    # Check mode predicts the login (the role may not have started multipathd yet in its own check run).
    (act,), errors = decide([item()], state, check_mode=True)
    assert errors == [] and act["action"] == "login"


def test_a_single_portal_needs_no_multipathd(sysfs, links, tmp_path):
    single = item(target_portals=[P1])
    iscsi = FakeIscsi(sysfs, pidfile=str(tmp_path / "no-pid"))
    state = read_host(iscsi, [single])
    assert state["multipathd"] is None
    (act,), errors = decide([single], state)
    assert errors == [] and (act["action"], act["device"], act["paths"]) == ("login", PATH1, [PATH1])


def test_logged_in_everywhere_with_the_map_is_none_and_uses_the_map(sysfs, links, pidfile):
    links.update({PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    iscsi = FakeIscsi(sysfs, sessions={(IQN, P1), (IQN, P2)}, pidfile=pidfile)
    (act,), errors = decide([item(size_bytes=GIB)], read_host(iscsi, [item()]))
    assert errors == []
    assert (act["action"], act["device"], act["real_device"], act["multipath"], act["size_bytes"]) == (
        "none", "/dev/mapper/" + WWID, "/dev/dm-0", WWID, GIB)


def test_a_missing_second_session_is_logged_in(sysfs, links, pidfile):
    links.update({PATH1: "/dev/sdb"})
    iscsi = FakeIscsi(sysfs, sessions={(IQN, P1)}, pidfile=pidfile)
    (act,), errors = decide([item()], read_host(iscsi, [item()]))
    assert errors == [] and (act["action"], act["login_portals"]) == ("login", [P2])


def test_sessions_without_a_map_are_rescanned(tmp_path, links, pidfile):
    root = tmp_path / "block"
    block(root, "sdb")
    block(root, "sdc")
    links.update({PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    iscsi = FakeIscsi(root, sessions={(IQN, P1), (IQN, P2)}, pidfile=pidfile)
    (act,), errors = decide([item()], read_host(iscsi, [item()]))
    assert errors == [] and (act["action"], act["rescan_portals"]) == ("rescan", [P1, P2])


def test_a_smaller_map_is_resized(sysfs, links, pidfile):
    links.update({PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    iscsi = FakeIscsi(sysfs, sessions={(IQN, P1), (IQN, P2)}, pidfile=pidfile)
    (act,), errors = decide([item(size_bytes=2 * GIB)], read_host(iscsi, [item()]))
    assert errors == [] and act["action"] == "resize"


# --- apply --------------------------------------------------------------------------------------------------------

def test_login_on_both_portals_returns_the_map(sysfs, links, pidfile):
    iscsi = FakeIscsi(sysfs, pidfile=pidfile, appear={PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    (act,), errors = decide([item()], read_host(iscsi, [item()]))
    ConnectionApplier(iscsi, 5, lambda text: None).apply(act)
    assert iscsi.calls == [("login", P1), ("login", P2)]
    assert iscsi.login_kwargs["settings_extra"] == [("node.session.timeo.replacement_timeout", "15")]
    assert (act["device"], act["real_device"], act["multipath"], act["size_bytes"]) == (
        "/dev/mapper/" + WWID, "/dev/dm-0", WWID, GIB)


def test_login_fails_when_no_map_appears(tmp_path, links, pidfile):
    root = tmp_path / "block"
    block(root, "sdb")
    block(root, "sdc")
    iscsi = FakeIscsi(root, pidfile=pidfile, appear={PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    (act,), errors = decide([item()], read_host(iscsi, [item()]))
    with pytest.raises(RuntimeError, match="no dm-multipath map holds /dev/sdb, /dev/sdc within 0 s: check that "
                                           "multipathd runs"):
        ConnectionApplier(iscsi, 0, lambda text: None).apply(act)
    assert iscsi.calls[-1] == ("create_map", "/dev/sdb")  # asked once for the map before giving up


def test_a_map_flushed_under_its_paths_is_made_again(tmp_path, links, pidfile):
    # Both sessions and their devices are there, the map is not (multipath -F flushed it): the rescan does not
    # bring it back, `multipath /dev/sdb` does (measured on the lab), and the connection uses it.
    root = tmp_path / "block"
    block(root, "sdb")
    block(root, "sdc")
    links.update({PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    iscsi = FakeIscsi(root, sessions={(IQN, P1), (IQN, P2)}, pidfile=pidfile,
                      appear={PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    (act,), errors = decide([item()], read_host(iscsi, [item()]))
    assert (act["action"], errors) == ("rescan", [])

    def make_map():
        block(root, "dm-0", slaves=["sdb", "sdc"], dm=("mpath-" + WWID, WWID))
        for name in ("sdb", "sdc"):
            (root / name / "holders" / "dm-0").mkdir(parents=True, exist_ok=True)
    iscsi.make_map = make_map
    ConnectionApplier(iscsi, 5, lambda text: None).apply(act)
    assert ("create_map", "/dev/sdb") in iscsi.calls
    assert (act["device"], act["multipath"]) == ("/dev/mapper/" + WWID, WWID)


def test_resize_grows_the_paths_then_the_map(sysfs, links, pidfile):
    links.update({PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    iscsi = FakeIscsi(sysfs, sessions={(IQN, P1), (IQN, P2)}, pidfile=pidfile,
                      appear={PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    (act,), errors = decide([item(size_bytes=GIB - 512)], read_host(iscsi, [item()]))
    act.update(action="resize", rescan_portals=[P1, P2])
    ConnectionApplier(iscsi, 0, lambda text: None).apply(act)
    assert iscsi.calls == [("rescan", P1), ("rescan", P2), ("resize_map", WWID)]


def test_logout_flushes_the_map_then_leaves_every_portal(sysfs, links, pidfile, in_use):
    links.update({PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    iscsi = FakeIscsi(sysfs, sessions={(IQN, P1), (IQN, P2)}, pidfile=pidfile)
    gone = item(state="absent", target_portals=None)  # a logout names one portal; it covers every one
    state = read_host(iscsi, [gone])
    # The map's own users are looked at; the map is not a user of its paths.
    # The map's own users count; its paths ignore the map (their holder) and multipathd (its path checker keeps
    # every path open: found on the lab, where it refused every multipath detach).
    assert in_use[1] == [("/dev/dm-0", ()), ("/dev/sdb", ("dm-0",), ("multipathd",)),
                         ("/dev/sdc", ("dm-0",), ("multipathd",))]
    (act,), errors = decide([gone], state)
    assert errors == [] and (act["action"], act["multipath"]) == ("logout", WWID)
    ConnectionApplier(iscsi, 5, lambda text: None).apply(act)
    assert iscsi.calls == [("flush", WWID, False), ("logout", P1), ("logout", P2), ("delete_node", P1),
                           ("delete_node", P2)]


def test_a_mounted_map_is_not_logged_out_without_force(sysfs, links, pidfile, in_use):
    links.update({PATH1: "/dev/sdb", PATH2: "/dev/sdc"})
    in_use[0]["/dev/dm-0"] = ["/srv/data"]
    iscsi = FakeIscsi(sysfs, sessions={(IQN, P1), (IQN, P2)}, pidfile=pidfile)
    gone = item(state="absent")
    (act,), errors = decide([gone], read_host(iscsi, [gone]))
    assert "is in use (/srv/data)" in act["refused"]
    (act,), errors = decide([gone], read_host(iscsi, [gone]), force=True)
    assert "refused" not in act
    ConnectionApplier(iscsi, 5, lambda text: None, force=True).apply(act)
    assert iscsi.calls[0] == ("flush", WWID, True)


def test_a_record_without_a_session_on_another_portal_is_deleted_too(sysfs, links, pidfile, in_use):
    links.update({PATH1: "/dev/sdb"})
    iscsi = FakeIscsi(sysfs, sessions={(IQN, P1)}, nodes={(IQN, P1), (IQN, P2)}, pidfile=pidfile)
    gone = item(state="absent", target_portals=None)
    (act,), errors = decide([gone], read_host(iscsi, [gone]))
    ConnectionApplier(iscsi, 5, lambda text: None).apply(act)
    assert iscsi.calls == [("flush", WWID, False), ("logout", P1), ("delete_node", P1), ("delete_node", P2)]


def test_iscsiadm_login_sets_the_extra_node_settings_before_the_login():
    from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import Iscsiadm

    runner = Runner()
    Iscsiadm(runner).login(IQN, P2, None, None, auth_method="None",
                           settings_extra=[("node.session.timeo.replacement_timeout", "15")])
    node = ["iscsiadm", "-m", "node", "-T", IQN, "-p", P2]
    update = [c for c in runner.calls if "update" in c][0]
    assert update[:len(node)] == node
    assert update[-4:] == ["-n", "node.session.timeo.replacement_timeout", "-v", "15"]
    assert runner.calls.index(update) < runner.calls.index(node + ["--login"])


def test_the_role_template_renders_the_devices_section():
    from pathlib import Path

    import jinja2

    template = Path(__file__).resolve().parents[4] / "roles" / "iscsi_initiator" / "templates" / \
        "ember-blockstore.conf.j2"
    text = jinja2.Template(template.read_text()).render(blockstore_multipath_path_grouping_policy="failover",
                                                        blockstore_multipath_no_path_retry=12)
    assert "    find_multipaths yes\n" in text
    for line in ('vendor "IET"', 'product "VIRTUAL-DISK"', "path_grouping_policy failover", "path_checker tur",
                 "no_path_retry 12", "user_friendly_names no"):
        assert "        %s\n" % line in text
    assert text.count("{") == text.count("}")


@pytest.mark.parametrize("force, expected", [
    (False, [(["multipath", "-f", WWID], True)]),
    (True, [(["multipathd", "disablequeueing", "map", WWID], False), (["multipath", "-f", WWID], False)]),
])
def test_flush_multipath_turns_queueing_off_when_forced(force, expected):
    from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import Iscsiadm

    class Checked(Runner):
        def run(self, args, check=True, **kwargs):
            self.calls.append((list(args), check))
            return 0, "", ""
    runner = Checked()
    Iscsiadm(runner).flush_multipath(WWID, force=force)
    assert runner.calls == expected

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_portals`` (role tgt_target, issue 7 item 10): tgtd listens on the storage addresses only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_
from ansible_collections.ember.blockstore.plugins.module_utils._portals import (
    parse_portal_show,
    portal_changes,
    render_dropin,
    tgt_portals,
)

ROOT = Path(__file__).resolve().parents[4]
# What tgtd 1.0.85 prints for the package's default portals (tgtadm --lld iscsi --op show --mode portal).
DEFAULT_SHOW = "Portal: 0.0.0.0:3260,1\nPortal: [::]:3260,1\n"


@pytest.mark.parametrize(("addresses", "port", "expected"), [
    ("198.18.0.11", 3260, ["198.18.0.11:3260"]),
    (["198.18.0.11", "198.18.0.11"], 3260, ["198.18.0.11:3260"]),
    (["fd00::11", "198.18.0.11:3261"], 3260, ["198.18.0.11:3261", "[fd00::11]:3260"]),
    (["fe80::11%eth1"], 3262, ["[fe80::11%eth1]:3262"]),
    (["0.0.0.0", "::"], 3260, ["0.0.0.0:3260", "[::]:3260"]),  # widening to every address is explicit
])
def test_tgt_portals(addresses, port, expected):
    assert tgt_portals(addresses, port) == expected


@pytest.mark.parametrize(("addresses", "port", "message"), [
    ([], 3260, "no address to listen on"),
    (None, 3260, "no address to listen on"),
    (["198.18.0.11\nExecStartPost=/bin/sh -c reboot"], 3260, "blockstore_tgt_portal_addresses[0]: "),
    (["198.18.0.11", "stor1.example"], 3260, "blockstore_tgt_portal_addresses[1]: "),
    (["fe80::1%eth0;reboot"], 3260, "blockstore_tgt_portal_addresses[0]: "),
    (["198.18.0.11"], 0, "blockstore_iscsi_port: "),
    (["198.18.0.11"], "3260", "blockstore_iscsi_port: "),
])
def test_bad_portals_are_refused(addresses, port, message):
    with pytest.raises(NameError_) as excinfo:
        tgt_portals(addresses, port)
    assert message in str(excinfo.value)


def test_parse_portal_show():
    assert parse_portal_show(DEFAULT_SHOW) == ["0.0.0.0:3260", "[::]:3260"]
    assert parse_portal_show("") == []


def test_portal_changes_from_the_package_default():
    assert portal_changes(["198.18.0.11:3260"], DEFAULT_SHOW) == {
        "add": ["198.18.0.11:3260"], "delete": ["0.0.0.0:3260", "[::]:3260"]}


def test_portal_changes_when_converged_and_with_a_zone():
    assert portal_changes(["198.18.0.11:3260"], "Portal: 198.18.0.11:3260,1\n") == {"add": [], "delete": []}
    # tgtd prints an IPv6 address without its zone id: that is the same portal.
    assert portal_changes(["[fe80::11%eth1]:3260"], "Portal: [fe80::11]:3260,1\n") == {"add": [], "delete": []}
    assert portal_changes(["[fe80::11%eth1]:3260"], DEFAULT_SHOW) == {
        "add": ["[fe80::11%eth1]:3260"], "delete": ["0.0.0.0:3260", "[::]:3260"]}


def test_dropin_opens_only_the_given_portals():
    text = render_dropin(["198.18.0.11:3260", "[fe80::11%eth1]:3260"])
    opened = [line for line in text.splitlines() if "--op new --mode portal" in line]
    command = "ExecStartPost=/usr/sbin/tgtadm --lld iscsi --op new --mode portal --param portal="
    assert opened == [command + "198.18.0.11:3260", command + "[fe80::11%%eth1]:3260"]
    directives = "\n".join(line for line in text.splitlines() if not line.startswith("#"))
    assert "0.0.0.0" not in directives and "[::]" not in directives
    assert "After=network-online.target" in text


def test_role_defaults_and_argument_specs_agree():
    defaults = yaml.safe_load((ROOT / "roles/tgt_target/defaults/main.yml").read_text())
    options = yaml.safe_load((ROOT / "roles/tgt_target/meta/argument_specs.yml").read_text())[
        "argument_specs"]["main"]["options"]
    for key, value in defaults.items():
        assert options[key]["default"] == value, key
    assert defaults["blockstore_tgt_portal_addresses"] == []
    assert "blockstore_storage_ip" in options


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible-playbook not installed")
@pytest.mark.parametrize("addresses", [["198.18.0.11"], ["fe80::11%eth1", "0.0.0.0:3261"]])
def test_the_role_template_renders_what_render_dropin_says(tmp_path, addresses):
    # The role's own tasks decide the portals and render its template, on localhost; the file must be what
    # render_dropin() (which the other tests check) produces.
    playbook = tmp_path / "play.yml"
    out = tmp_path / "out.conf"
    tasks = yaml.safe_load((ROOT / "roles/tgt_target/tasks/main.yml").read_text())
    decide = next(t for t in tasks if t["name"].startswith("Decide the portals"))
    render = dict(next(t for t in tasks if "ansible.builtin.template" in t))
    render["ansible.builtin.template"] = dict(render["ansible.builtin.template"], dest=str(out),
                                              src=str(ROOT / "roles/tgt_target/templates/ember-start-offline.conf.j2"),
                                              owner=None, group=None)
    render.pop("notify", None)
    play = [{"hosts": "localhost", "connection": "local", "gather_facts": False,
             "vars": {"blockstore_storage_ip": "198.18.0.99", "blockstore_iscsi_port": 3260,
                      "blockstore_tgt_portal_addresses": addresses},
             "tasks": [decide, render]}]
    playbook.write_text(yaml.safe_dump(play))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
               ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".collections"), ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run(["ansible-playbook", "-i", "localhost,", "-e", "ansible_python_interpreter=" + sys.executable,
                           str(playbook)], capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert out.read_text() == render_dropin(tgt_portals(addresses, 3260))


@pytest.mark.parametrize(("shown", "addresses", "storage_ip", "differ"), [
    (None, [], "198.18.0.11", False),  # facts without portals: nothing to say
    (["198.18.0.11:3260"], [], "198.18.0.11", False),
    (["0.0.0.0:3260", "[::]:3260"], [], "198.18.0.11", True),  # the package default, or 0.1.0's drop-in
    ([], [], "198.18.0.11", True),
    (["198.18.0.11:3260"], ["198.18.0.11", "127.0.0.1"], "198.18.0.11", True),
    (["127.0.0.1:3260", "198.18.0.11:3260"], ["198.18.0.11", "127.0.0.1"], "", False),
    (["198.18.0.11:3260"], [], "", True),  # no address at all: the role runs and says so
    (["198.18.0.11:3260"], ["bad;value"], "198.18.0.11", True),
    # A node with several storage addresses (dm-multipath) listens on each.
    (["198.18.0.11:3260"], [], ["198.18.0.11", "198.18.1.11"], True),
    (["198.18.0.11:3260", "198.18.1.11:3260"], [], ["198.18.0.11", "198.18.1.11"], False),
    (["198.18.0.11:3260", "198.18.1.11:3260"], [], ["198.18.0.11"], True),
    (["198.18.0.11:3260"], [], [], True),
])
def test_portals_differ_decides_whether_the_role_runs_again(shown, addresses, storage_ip, differ):
    from ansible_collections.ember.blockstore.plugins.module_utils._portals import portals_differ

    assert portals_differ(shown, addresses, storage_ip, 3260) is differ


def test_a_drop_in_of_an_older_release_is_not_configured(tmp_path, monkeypatch):
    # backend_info reports tgt configured only with the current drop-in, so the fast path runs tgt_target again
    # on a node upgraded from 0.1/0.2 (whose drop-in did not activate the VGs before loading the targets).
    from ansible_collections.ember.blockstore.plugins.module_utils import _backend_info
    monkeypatch.setattr(_backend_info.os.path, "isdir", lambda path: True)
    targets = tmp_path / "targets.conf"
    targets.write_text("default-driver iscsi\ninclude /etc/tgt/conf.d/*.conf\n")
    dropin = tmp_path / "ember-start-offline.conf"
    dropin.write_text(render_dropin(["198.18.0.11:3260"]))
    assert _backend_info.tgt_configured(str(targets), str(dropin)) is True
    dropin.write_text("# Managed by ember.blockstore (role tgt_target): keep initiators out until every target is "
                      "loaded, and\n[Unit]\n")
    assert _backend_info.tgt_configured(str(targets), str(dropin)) is False
    dropin.unlink()
    assert _backend_info.tgt_configured(str(targets), str(dropin)) is False

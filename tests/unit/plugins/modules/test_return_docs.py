# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's RETURN documentation lists exactly the keys its result-building code produces.

Top-level keys are read from the ``module.exit_json(...)`` calls in the source (``changed`` and ``diff`` are
Ansible's common return values and not documented per module). Item keys come from the code that builds them:
volume's ``RESULT_KEYS``/``result_of``, attachment's ``result_of`` on a decided action, backend_info's
``pool_facts``, connection's ``RESULT_KEYS``/``result_of`` on a decided action, and ``_info``'s
``volumes_info``/``snapshots_info`` (volume_info, snapshot_info).
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest
import yaml
from ansible_collections.ember.blockstore.plugins.module_utils import (
    _attachment,
    _attachment_info,
    _backend_info,
    _backup,
    _connection,
    _info,
    _snapshot,
    _volume,
)
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.backup_store import ChunkStore
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import (
    device_path,
    parse_nodes,
    parse_sessions,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    lun_identity,
    parse_conf,
    parse_show,
    render_conf,
)

ROOT = Path(__file__).resolve().parents[4]
MODULES_DIR = ROOT / "plugins" / "modules"
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"
CLIENT1 = "iqn.1993-08.org.debian:01:d53fc39a07f1"  # client1 in the name-only captures
# client1 in the address-only captures: its IQN recorded as a comment, its storage address bound.
CLIENT1_ACL = re.search(r"^    # initiator-name (\S+)$", (FIXTURES / "tgt/conf_db01_acl.conf").read_text(),
                        re.MULTILINE).group(1)
CLIENT1_ADDR = re.search(r"^    initiator-address (\S+)$", (FIXTURES / "tgt/conf_db01_acl.conf").read_text(),
                         re.MULTILINE).group(1)
# invocation is one of Ansible's common return values (the attachment module sets it itself, with secrets masked).
COMMON_RETURN = {"changed", "diff", "invocation"}
MODULES = sorted(p.stem for p in MODULES_DIR.glob("*.py") if not p.name.startswith("_"))


def module(name):
    return importlib.import_module("ansible_collections.ember.blockstore.plugins.modules." + name)


def source(name):
    return (MODULES_DIR / (name + ".py")).read_text()


def return_doc(name):
    doc = yaml.safe_load(module(name).RETURN)
    assert isinstance(doc, dict) and doc, "%s: RETURN is empty or not a mapping" % name
    return doc


def contains(name, *path):
    node = return_doc(name)[path[0]]
    for key in path[1:]:
        node = node["contains"][key]
    return node["contains"]


def exit_json_keys(name):
    keys = set()
    calls = 0
    for node in ast.walk(ast.parse(source(name))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "exit_json":
            calls += 1
            keys.update(kw.arg for kw in node.keywords)
    assert calls, "%s: no exit_json call found" % name
    return keys - COMMON_RETURN


def listed_in_description(text, start):
    """Comma-separated key names after ``start`` in a description, up to the sentence end."""
    tail = text.split(start, 1)[1]
    tail = re.split(r"\.(\s|$)|, plus ", tail)[0]
    return sorted(part.strip() for part in tail.split(","))


def lvm_state(which="converged"):
    return LvmState(parse_vgs((FIXTURES / ("lvm/vgs_%s.json" % which)).read_text()),
                    parse_lvs((FIXTURES / ("lvm/lvs_%s.json" % which)).read_text()))


def with_defaults(options, **values):
    out = {key: spec.get("default") for key, spec in options.items()}
    out.update(values)
    return out


# --- every module ------------------------------------------------------------------------------------------------

def test_every_module_is_checked():
    assert MODULES == ["attachment", "attachment_info", "backend_info", "backup", "backup_info", "connection",
                       "freeze", "image", "initiator_info", "ledger", "migration", "snapshot", "snapshot_info",
                       "volume", "volume_info"], \
        "a module was added or removed: add its RETURN check to this file"


@pytest.mark.parametrize("name", MODULES)
def test_return_parses_and_every_key_is_described(name):
    def walk(doc, where):
        for key, spec in doc.items():
            assert isinstance(spec, dict), "%s: %s%s is not a mapping" % (name, where, key)
            assert spec.get("description"), "%s: %s%s has no description" % (name, where, key)
            assert spec.get("type"), "%s: %s%s has no type" % (name, where, key)
            if "contains" in spec:
                walk(spec["contains"], "%s%s." % (where, key))
    walk(return_doc(name), "")


@pytest.mark.parametrize("name", MODULES)
def test_top_level_keys(name):
    assert set(return_doc(name)) == exit_json_keys(name)


# --- volume ------------------------------------------------------------------------------------------------------

def _volume_actions():
    items = [with_defaults(_volume.ITEM_OPTIONS, **values) for values in (
        {"name": "web01", "size": "256MiB", "vg": "ember-thick"},
        {"name": "archive01", "size": "3GiB", "vg": "ember-thin", "thin_pool": "thinpool"},
        {"name": "db01-data", "size": "1GiB", "vg": "ember-thin", "thin_pool": "thinpool"},
        {"name": "scratch01", "state": "absent", "vg": "ember-thick"},
        {"name": "gone", "state": "absent", "vg": "ember-thick"},
    )]
    actions, errors = _volume.decide(items, lvm_state(), {})
    assert errors == []
    assert [a["action"] for a in actions] == ["create", "extend", "none", "delete", "absent"]
    return actions


def _keys_set_by_volume_delete():
    """Keys VolumeApplier.delete() writes into the action (``act["..."] = ...``), read from its source."""
    tree = ast.parse(Path(_volume.__file__).read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "VolumeApplier")
    func = next(n for n in cls.body if isinstance(n, ast.FunctionDef) and n.name == "delete")
    keys = set()
    for node in ast.walk(func):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) \
                        and target.value.id == "act" and isinstance(target.slice, ast.Constant):
                    keys.add(target.slice.value)
    return keys


def test_migration_item_keys_are_documented():
    """Every key the migration module puts in an item's result (``out = {...}``, ``out.update(...)``,
    ``out[...] = ``) is in RETURN's ``migrations`` and the other way round."""
    keys = set()
    for node in ast.walk(ast.parse(source("migration"))):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "out" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            keys.update(k.value for k in node.value.keys)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "update" \
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "out":
            keys.update(kw.arg for kw in node.keywords)
        elif isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name) and node.value.id == "out" \
                and isinstance(node.slice, ast.Constant):
            keys.add(node.slice.value)
    assert keys == set(contains("migration", "migrations"))


def test_volume_result_keys_are_documented():
    documented = contains("volume", "volumes")
    assert set(documented) == set(module("volume").RESULT_KEYS)


def test_volume_result_of_decided_actions():
    documented = contains("volume", "volumes")
    only_deleted = {key for key, spec in documented.items() if spec.get("returned") == "when deleted"}
    result_of = module("volume").result_of
    for act in _volume_actions():
        assert set(result_of(act)) == set(documented) - only_deleted, act["action"]


def test_volume_result_of_a_deleted_volume():
    documented = contains("volume", "volumes")
    only_deleted = {key for key, spec in documented.items() if spec.get("returned") == "when deleted"}
    set_by_delete = _keys_set_by_volume_delete()
    assert only_deleted == set_by_delete == {"wipe", "wiped_bytes", "wipe_method"}
    act = next(a for a in _volume_actions() if a["action"] == "delete")
    applied = dict(act, **{key: None for key in set_by_delete})
    assert set(module("volume").result_of(applied)) == set(documented)


# --- snapshot ----------------------------------------------------------------------------------------------------

def _snapshot_actions():
    """One action of each kind over lvs_snap.json (derived from the lab capture, see cases/snapshot.yml)."""
    state = LvmState(parse_vgs((FIXTURES / "lvm/vgs_stor1.json").read_text()),
                     parse_lvs((FIXTURES / "lvm/lvs_snap.json").read_text()))
    items = [with_defaults(_snapshot.ITEM_OPTIONS, **values) for values in (
        {"name": "daily", "volume": "a", "vg": "ember-thick"},
        {"name": "hourly", "volume": "a", "vg": "ember-thick", "cow_size": "100MiB"},
        {"name": "weekly", "volume": "a", "vg": "ember-thick", "description": "new"},
        {"name": "gone", "volume": "a", "vg": "ember-thick", "state": "absent"},
        {"name": "nightly", "volume": "b", "vg": "ember-thin", "state": "reverted"},
        {"name": "other", "volume": "a", "vg": "ember-thick", "state": "absent"},
    )]
    actions, errors = _snapshot.decide(items, state, {})
    assert errors == []
    assert [a["action"] for a in actions] == ["none", "create", "update", "absent", "revert", "absent"]
    return actions


def test_snapshot_result_keys_are_documented():
    assert set(contains("snapshot", "snapshots")) == set(module("snapshot").RESULT_KEYS)


def test_snapshot_result_of_decided_actions():
    documented = contains("snapshot", "snapshots")
    for act in _snapshot_actions():
        assert set(module("snapshot").result_of(act)) == set(documented), act["action"]


# --- image --------------------------------------------------------------------------------------------------------

def _image_actions(tmp_path):
    from ansible_collections.ember.blockstore.plugins.module_utils import _image
    store = tmp_path / "store"
    store.mkdir()
    (store / "gone.qcow2").write_text("x")
    state = LvmState(parse_vgs((FIXTURES / "lvm/vgs_stor1.json").read_text()),
                     parse_lvs((FIXTURES / "lvm/lvs_image.json").read_text()))
    opts = _image.ITEM_OPTIONS
    items = [with_defaults(opts, name="a", volume="web", vg="ember-thin"),
             with_defaults(opts, name="gone", state="absent", force=True),
             with_defaults(opts, name="never", state="absent")]
    actions, errors = _image.decide(items, state, {}, str(store))
    assert errors == []
    assert [a["action"] for a in actions] == ["create", "delete", "absent"]
    return actions


def test_image_result_of_decided_actions(tmp_path):
    documented = contains("image", "images")
    for act in _image_actions(tmp_path):
        assert set(module("image").result_of(act)) == set(documented), act["action"]


# --- freeze -----------------------------------------------------------------------------------------------------

def test_freeze_result_keys_are_documented():
    # Every exit path starts from empty_result (updated in place), so its keys are the module's result keys.
    assert set(module("freeze").empty_result(30)) - COMMON_RETURN == set(return_doc("freeze"))


def test_freeze_item_keys_are_documented():
    plan = [{"volume": "ga", "device": "/dev/sda", "type": "disk", "mount_points": ["/srv/ga"], "suspend": None}]
    assert set(module("freeze").items_of(plan)[0]) == set(contains("freeze", "frozen"))


# --- backup and backup_info --------------------------------------------------------------------------------------

def _backup_catalog(tmp_path):
    """A store with backups ``first`` and ``second`` of volume b and ``nightly`` of volume a."""
    store = ChunkStore(str(tmp_path / "store"))
    store.create()
    for volume, name, data, when in (("b", "first", "v1", "2026-11-20T11:30:00Z"),
                                     ("b", "second", "v2", "2026-11-21T11:30:00Z"),
                                     ("a", "nightly", "a1", "2026-11-20T01:00:00Z")):
        (tmp_path / "src").write_text(data)
        store.backup(str(tmp_path / "src"), volume, name, chunk_size=65536, created_at=when)
    return store, _backup.read_catalog(store, ["a", "b"])[0]


def _backup_actions(tmp_path):
    """One action of each kind over lvs_backup.json (see cases/backup.yml)."""
    state = LvmState(parse_vgs((FIXTURES / "lvm/vgs_stor1.json").read_text()),
                     parse_lvs((FIXTURES / "lvm/lvs_backup.json").read_text()))
    items = [with_defaults(_backup.ITEM_OPTIONS, **values) for values in (
        {"name": "new", "volume": "a", "vg": "ember-thick"},
        {"name": "third", "volume": "b", "vg": "ember-thin", "is_incremental": True},
        {"name": "nightly", "volume": "a", "vg": "ember-thick"},
        {"name": "first", "volume": "b", "state": "verified"},
        {"name": "nightly", "volume": "a", "state": "restored", "restore_to": "a", "vg": "ember-thick",
         "force": True},
        {"name": "first", "volume": "b", "state": "absent", "vg": "ember-thin"},
        {"volume": "b", "state": "absent", "keep_last": 1},
        {"name": "gone", "volume": "b", "state": "absent"},
    )]
    _store, catalog = _backup_catalog(tmp_path)
    actions, errors = _backup.decide(items, state, catalog, {}, 65536)
    assert errors == []
    assert [a["action"] for a in actions] == ["create", "create", "none", "verify", "restore", "delete", "prune",
                                              "absent"]
    assert actions[1]["method"] == "thin_delta"
    return actions


def test_backup_result_keys_are_documented():
    assert set(contains("backup", "backups")) == set(module("backup").RESULT_KEYS)


def test_backup_result_of_decided_actions(tmp_path):
    documented = contains("backup", "backups")
    for act in _backup_actions(tmp_path):
        assert set(module("backup").result_of(act)) == set(documented), act["action"]


def test_backup_stats_keys_are_the_stores(tmp_path):
    store, catalog = _backup_catalog(tmp_path)
    described = contains("backup", "backups")["stats"]["description"]
    for key in catalog["a"][0]["stats"]:
        assert "V(%s)" % key in described


def test_backup_info_keys(tmp_path):
    _store, catalog = _backup_catalog(tmp_path)
    documented = contains("backup_info", "backups")
    for manifest in catalog["b"]:
        assert set(module("backup_info").backup_info(manifest)) == set(documented)


# --- attachment --------------------------------------------------------------------------------------------------

def _attachment_actions():
    """One action of each kind from the captures after the address-ACL change, plus the upgrade of an export
    written by the name-only version (an ACL-only update)."""
    conf_text = (FIXTURES / "tgt/conf_db01_acl_id.conf").read_text()
    # logs01's file was not captured: the one the module writes (a live target without its file is a clash).
    logs01 = render_conf(PREFIX + "volume-logs01", "/dev/ember-thick/volume-logs01", [CLIENT1_ACL],
                         "ember_logs01_5591e8e0", "Logs01SecretX9k2", volume="logs01", addresses=[CLIENT1_ADDR],
                         **dict(zip(("scsi_id", "scsi_sn"), lun_identity("logs01"))))
    files = {"/etc/tgt/conf.d/ember-volume-db01-data.conf": conf_text,
             "/etc/tgt/conf.d/ember-volume-logs01.conf": logs01}
    items = [with_defaults(_attachment.ITEM_OPTIONS, **values) for values in (
        {"volume": "db01-data", "vg": "ember-thin", "initiators": [CLIENT1_ACL], "initiator_addresses": [CLIENT1_ADDR]},
        {"volume": "archive01", "vg": "ember-thin", "initiators": [CLIENT1_ACL], "initiator_addresses": [CLIENT1_ADDR]},
        {"volume": "logs01", "vg": "ember-thick", "state": "absent"},
    )]
    live = parse_show((FIXTURES / "tgt/show_two_targets_acl_id.txt").read_text())
    actions, errors = _attachment.decide(items, lvm_state("converged_acl"), live, PREFIX, read=files.get)
    assert errors == []
    assert [a["action"] for a in actions] == ["none", "export", "unexport"]
    old_files = {"/etc/tgt/conf.d/ember-volume-db01-data.conf": (FIXTURES / "tgt/conf_db01.conf").read_text()}
    old_live = parse_show((FIXTURES / "tgt/show_two_targets.txt").read_text())
    (upgrade,), errors = _attachment.decide(items[:1], lvm_state(), old_live, PREFIX, read=old_files.get)
    assert errors == []
    assert (upgrade["action"], upgrade["acl_only"]) == ("update", True)
    return actions + [upgrade]


def test_attachment_result_keys():
    documented = contains("attachment", "attachments")
    assert {"initiators", "initiator_addresses"} <= set(documented)
    for act in _attachment_actions():
        assert set(module("attachment").result_of(act, "198.18.0.11")) == set(documented), act["action"]


def test_attachment_result_values():
    by_action = {a["action"]: module("attachment").result_of(a, "198.18.0.11") for a in _attachment_actions()}
    assert by_action["none"]["initiator_addresses"] == [CLIENT1_ADDR]
    assert by_action["none"]["initiators"] == [CLIENT1_ACL]
    assert by_action["update"]["initiator_addresses"] == [CLIENT1_ADDR]
    assert by_action["update"]["connection_info"]["initiator_addresses"] == [CLIENT1_ADDR]
    assert by_action["unexport"]["initiator_addresses"] == []


def test_attachment_options_are_documented_as_the_argspec_says():
    doc = yaml.safe_load(module("attachment").DOCUMENTATION)["options"]
    suboptions = doc["attachments"]["suboptions"]
    assert set(suboptions) == set(_attachment.ITEM_OPTIONS)
    for key, spec in _attachment.ITEM_OPTIONS.items():
        for field in ("type", "elements", "default", "choices"):
            assert suboptions[key].get(field) == spec.get(field), (key, field)
            assert doc[key].get(field) == spec.get(field), (key, field)  # the single form


def test_attachment_connection_info_keys_are_listed():
    spec = contains("attachment", "attachments")["connection_info"]
    listed = listed_in_description(spec["description"], "Login data:")
    for act in _attachment_actions():
        info = module("attachment").result_of(act, "198.18.0.11")["connection_info"]
        if act["state"] == "absent":
            assert info is None
            assert "Null when absent" in spec["description"]
        else:
            assert sorted(info) == listed


# --- backend_info -----------------------------------------------------------------------------------------------

def _pools():
    facts = _backend_info
    conf = parse_conf((FIXTURES / "tgt/conf_db01.conf").read_text())
    exports = {conf["backing_store"]: conf}
    live = parse_show((FIXTURES / "tgt/show_two_targets.txt").read_text())
    out = []
    for backend in ({"name": "lvm-thick", "driver": "lvm", "vg": "ember-thick"},
                    {"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin"},
                    {"name": "new", "driver": "lvm", "vg": "ember-new"}):
        cfg = backend_config(with_defaults(backend_options(), **backend))
        cfg["volume_clear_size_bytes"] = 0
        out.append(facts.pool_facts("stor1", cfg, lvm_state(), exports, live, False))
    assert [len(p["volumes"]) for p in out] == [2, 2, 0]
    return out


def test_backend_info_pool_keys():
    documented = contains("backend_info", "pools")
    conditional = {key for key, spec in documented.items() if spec.get("returned")}
    assert conditional == {"manageable"}  # only with the manage_lvs option
    for pool in _pools():
        assert set(pool) == set(documented) - conditional, pool["id"]


def test_backend_info_volume_keys():
    documented = contains("backend_info", "pools", "volumes")
    for pool in _pools():
        for vol in pool["volumes"]:
            assert set(vol) == set(documented), vol["name"]


def test_backend_info_capability_keys_are_listed():
    spec = contains("backend_info", "pools")["capabilities"]
    listed = listed_in_description(spec["description"], "Reported to the scheduler:")
    assert "plus the backend's capabilities" in spec["description"]
    for pool in _pools():
        assert sorted(pool["capabilities"]) == listed  # no backend capabilities configured here


# --- connection --------------------------------------------------------------------------------------------------

def _connection_actions():
    """One decided action of each kind over the consumer's captured sessions and node records."""
    sessions = {(s["target_iqn"], s["portal"]) for s in parse_sessions((FIXTURES / "iscsiadm_session.txt").read_text())}
    nodes = {(n["target_iqn"], n["portal"]) for n in parse_nodes((FIXTURES / "iscsiadm_node.txt").read_text())}
    items = [with_defaults(_connection.ITEM_OPTIONS, target_iqn=PREFIX + "volume-" + name, target_portal=portal,
                           **values) for name, portal, values in (
        ("db01-data", "198.18.0.11:3260", {}),
        ("db02-data", "198.18.0.12:3260", {}),
        ("archive01", "198.18.0.11", {"volume": "archive01"}),
        ("logs01", "198.18.0.11:3260", {"state": "absent"}),
    )]
    db01 = device_path("198.18.0.11:3260", PREFIX + "volume-db01-data", 1)
    state = {"sessions": sessions, "nodes": nodes, "devices": {db01: "/dev/sdb"}, "in_use": {}}
    actions, errors = _connection.decide(items, state)
    assert errors == []
    assert [a["action"] for a in actions] == ["none", "rescan", "login", "logout"]
    return actions


def _nfs_connection_actions():
    """One decided NFS action of each kind (attach, resize, none, detach) over a consumer's loop devices."""
    from ansible_collections.ember.blockstore.plugins.module_utils import _nfs_connection
    from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import mount_point
    share = "198.18.0.21:/srv/ember-nfs"
    path = mount_point(share, "/var/lib/ember-blockstore/mnt")
    loops = {"/dev/loop0": {"backing_file": path + "/volume-n2", "size_bytes": 4 * 2**20},
             "/dev/loop1": {"backing_file": path + "/volume-n3", "size_bytes": 8 * 2**20},
             "/dev/loop2": {"backing_file": path + "/volume-n4", "size_bytes": 8 * 2**20}}
    state = {"mounted": {path: True}, "loops": loops, "in_use": {}, "link_dir": "/dev/ember",
             "links": {"n1": None, "n2": "/dev/loop0", "n3": "/dev/loop1", "n4": "/dev/loop2"}}
    actions = []
    for name, values in (("n1", {}), ("n2", {"size_bytes": 8 * 2**20}), ("n3", {"size_bytes": 8 * 2**20}),
                         ("n4", {"state": "absent"})):
        item = with_defaults(_connection.ITEM_OPTIONS, driver_volume_type="nfs", volume=name,
                             data={"export": share, "name": "volume-" + name, "format": "raw"}, **values)
        assert _nfs_connection.validate_nfs(item, "connections[0]") == []
        actions.append(_nfs_connection.decide_nfs(item, state))
    assert [a["action"] for a in actions] == ["attach", "resize", "none", "detach"]
    return actions


def test_connection_result_keys_are_documented():
    assert list(contains("connection", "connections")) == list(module("connection").RESULT_KEYS)


def test_connection_result_of_decided_actions():
    documented = list(contains("connection", "connections"))
    for act in _connection_actions() + _nfs_connection_actions():
        assert list(module("connection").result_of(act)) == documented, act["action"]


# --- volume_info / snapshot_info ---------------------------------------------------------------------------------

def _info_state():
    return LvmState(parse_vgs((FIXTURES / "lvm/vgs_stor1.json").read_text()),
                    parse_lvs((FIXTURES / "lvm/lvs_info.json").read_text()))


def _volumes_info():
    """Every kind of volume: exported (with a session), not exported, and only in the ledger (no LV)."""
    live = parse_show((FIXTURES / "tgt/show_connected.txt").read_text())
    ledger = {"volumes": {"lost": {"host": "stor1", "pool_id": "stor1@lvm-thick", "status": "available"}}}
    volumes, _warnings = _info.volumes_info("stor1", _info_state(), {}, live, ledger)
    assert {v["status"] for v in volumes} >= {"in-use", "available", "error"}
    assert any(v["attachments"] for v in volumes) and any(v["size_bytes"] is None for v in volumes)
    return volumes


def test_volume_info_keys():
    documented = contains("volume_info", "volumes")
    for vol in _volumes_info():
        assert set(vol) == set(documented), vol["name"]


def test_volume_info_attachment_keys():
    documented = contains("volume_info", "volumes", "attachments")
    attachments = [a for v in _volumes_info() for a in v["attachments"]]
    assert attachments
    for item in attachments:
        assert set(item) == set(documented)


def test_volume_info_statuses_are_documented():
    described = return_doc("volume_info")["volumes"]["contains"]["status"]["description"]
    description = " ".join(yaml.safe_load(module("volume_info").DOCUMENTATION)["description"])
    for status in ("available", "in-use", "reverting", "deleting") + _info.STATUS_TAG_VALUES:
        assert "V(%s)" % status in described and "V(%s)" % status in description, status


def test_snapshot_info_keys():
    documented = contains("snapshot_info", "snapshots")
    snapshots = _info.snapshots_info(_info_state())
    assert {s["status"] for s in snapshots} == {"available", "error", "restoring"}
    for snap in snapshots:
        assert set(snap) == set(documented), snap["id"]


# --- attachment_info ---------------------------------------------------------------------------------------------

def _attachment_info_storage():
    """A managed target (file and live, with a session) and a live target without a file."""
    text = (FIXTURES / "tgt/show_two_targets_acl.txt").read_text()
    files = {"/etc/tgt/conf.d/ember-volume-db01-data.conf": (FIXTURES / "tgt/conf_db01_acl.conf").read_text()}
    items = _attachment_info.storage_view(files, parse_show(text), _attachment_info.parse_show_details(text),
                                          ["198.18.0.11:3260"], PREFIX)
    assert [i["managed"] for i in items] == [True, False] and all(i["sessions"] for i in items)
    return items


def test_attachment_info_storage_keys():
    documented = contains("attachment_info", "storage")
    for item in _attachment_info_storage():
        assert set(item) == set(documented), item["target_iqn"]
        for session in item["sessions"]:
            assert set(session) == set(documented["sessions"]["contains"])


def test_attachment_info_consumer_keys(tmp_path):
    """A consumer item with a multipath map over two paths (a sysfs tree under tmp_path)."""
    for name, files in {"sdb": {"size": "2097152", "dev": "8:16", "device/state": "running"},
                        "sdc": {"size": "2097152", "dev": "8:32", "device/state": "running"},
                        "dm-0": {"size": "2097152", "dev": "253:0", "dm/name": "mpatha", "dm/uuid": "mpath-36001"}
                        }.items():
        for rel, content in files.items():
            (tmp_path / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name / rel).write_text(content + "\n")
    for link in ("sdb/holders/dm-0", "sdc/holders/dm-0", "dm-0/slaves/sdb", "dm-0/slaves/sdc"):
        (tmp_path / link).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / link).mkdir()
    sessions = parse_sessions((FIXTURES / "iscsiadm_session.txt").read_text())
    records = _attachment_info.consumer_records(sessions, [], PREFIX)
    items = _attachment_info.consumer_view(records[:1], lambda path: "/dev/sdb", lambda real: [],
                                           lambda name: ("0 2097152 multipath 2 0 0 0 1 1 A 0 2 0 8:16 A 0 8:32 A 0\n",
                                                         None), sys_block=str(tmp_path))
    documented = contains("attachment_info", "consumer")
    (item,) = items
    assert set(item) == set(documented)
    assert set(item["multipath"]) == set(documented["multipath"]["contains"])
    for path in item["multipath"]["paths"]:
        assert set(path) == set(documented["multipath"]["contains"]["paths"]["contains"])

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_backup.decide`` (the backup module's pure decision) over lvm/lvs_backup.json (DERIVED from the lab capture, see
tests/unit/plugins/modules/cases/backup.yml): ember-thick/volume-a (1002438656 B, VG free 3183476736 B) with the
project's snapshots daily and weekly; ember-thin/volume-b (1 GiB, thin) with its snapshot nightly and bkbase-b+first,
the base kept by backup ``first``. Catalogs are manifests reduced to the fields decide reads.
"""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.ember.blockstore.plugins.module_utils._backup import (
    ITEM_OPTIONS,
    base_lv_name,
    decide,
    temp_lv_name,
    validate_backup_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CHUNK = 4 * 1024 * 1024


def state(edit=None):
    doc = json.loads((FIXTURES / "lvm/lvs_backup.json").read_text())
    rows = doc["report"][0]["lv"]
    if edit:
        edit({r["lv_name"]: r for r in rows}, rows)
    return LvmState(parse_vgs((FIXTURES / "lvm/vgs_stor1.json").read_text()), parse_lvs(json.dumps(doc)))


def manifest(volume, name, when, chunk_size=CHUNK):
    return {"name": name, "volume": volume, "created_at": when, "chunk_size": chunk_size, "size_bytes": 1 << 30,
            "chunks": [], "stats": {}}


def item(**values):
    out = {key: spec.get("default") for key, spec in ITEM_OPTIONS.items()}
    out.update(values)
    return out


def one(catalog=None, lvm=None, exported=None, **values):
    actions, errors = decide([item(**values)], lvm or state(), catalog or {}, exported or {}, CHUNK)
    return (actions[0] if actions else None), errors


def test_lv_names_cannot_collide_with_volumes_or_snapshots():
    assert base_lv_name("b", "first") == "bkbase-b+first"
    assert temp_lv_name("a", "x") == "bktmp-a+x"
    assert base_lv_name("a.b", "c") != base_lv_name("a", "b.c")
    assert validate_backup_name("nightly-20261120") == "nightly-20261120"


def test_thick_backup_uses_a_temporary_cow_snapshot_of_the_volume_size():
    act, errors = one(name="n1", volume="a", vg="ember-thick")
    assert errors == []
    assert act["action"] == "create" and act["temp_lv"] == "bktmp-a+n1" and act["new_base"] is None
    assert act["cow_size_bytes"] == 1002438656 and act["method"] == "full" and act["parent"] is None


def test_thick_incremental_has_a_parent_and_reads_everything():
    catalog = {"a": [manifest("a", "old", "2026-11-19T01:00:00Z"), manifest("a", "new", "2026-11-20T01:00:00Z")]}
    act, _errors = one(catalog, name="n1", volume="a", vg="ember-thick", is_incremental=True)
    assert act["parent"] == "new" and act["method"] == "full" and act["incremental"] is True
    assert "every chunk is read" in act["note"]


def test_thin_incremental_uses_the_kept_base_and_removes_older_ones():
    catalog = {"b": [manifest("b", "first", "2026-11-20T11:30:00Z")]}

    def older_base(by_name, rows):
        extra = dict(by_name["bkbase-b+first"], lv_name="bkbase-b+zero",
                     lv_tags="ember.backup=zero,ember.blockstore,ember.volume=b")
        rows.append(extra)
    catalog["b"].insert(0, manifest("b", "zero", "2026-11-19T11:30:00Z"))
    act, errors = one(catalog, lvm=state(older_base), name="second", volume="b", vg="ember-thin",
                      is_incremental=True)
    assert errors == []
    assert act["method"] == "thin_delta" and act["parent"] == "first"
    assert act["base"][0] == "bkbase-b+first" and act["new_base"] == "bkbase-b+second"
    assert sorted(act["old_bases"]) == ["bkbase-b+first", "bkbase-b+zero"] and act["stale_lvs"] == []


def test_a_base_with_another_chunk_size_gives_a_full_read():
    catalog = {"b": [manifest("b", "first", "2026-11-20T11:30:00Z", chunk_size=CHUNK // 2)]}
    act, _errors = one(catalog, name="second", volume="b", vg="ember-thin", is_incremental=True)
    assert act["method"] == "full" and act["parent"] == "first" and act["base"] is None


def test_a_base_without_its_backup_is_stale():
    act, _errors = one(name="second", volume="b", vg="ember-thin", is_incremental=True)
    assert act["stale_lvs"] == ["bkbase-b+first"] and act["incremental"] is False
    assert act["note"] == "is_incremental: volume b has no earlier backup: this is a full backup"


def test_backup_of_an_existing_snapshot():
    act, errors = one(name="n1", volume="b", vg="ember-thin", snapshot="nightly")
    assert errors == []
    assert act["source_lv"] == "snap-b+nightly" and act["new_base"] is None and act["temp_lv"] is None
    assert act["snapshot"] == "ember-thin/snap-b+nightly" and act["source_active"] is False
    _act, errors = one(name="n1", volume="b", vg="ember-thin", snapshot="missing")
    assert "volume b has no snapshot 'missing'" in errors[0]


def test_refusals_of_present():
    errors = one(name="n", volume="a", vg="ember-thick", cow_size="4GiB")[1]
    assert "volume group ember-thick has 2.96 GiB free" in errors[0]
    assert "is thin (pool thinpool)" in one(name="n", volume="b", vg="ember-thin", cow_size="1GiB")[1][0]
    assert "volume 'gone' does not exist" in one(name="n", volume="gone", vg="ember-thin")[1][0]
    assert "name: required when state is present" in one(volume="b", vg="ember-thin")[1][0]
    assert "vg: required when state is present" in one(name="n", volume="b")[1][0]

    def busy(by_name, rows):
        by_name["volume-b"]["lv_tags"] += ",ember.status=extending"
    assert "volume b is extending" in one(lvm=state(busy), name="n", volume="b", vg="ember-thin")[1][0]

    def foreign(by_name, rows):
        rows.append(dict(by_name["snap-b"], lv_name="bkbase-b+n", lv_tags=""))
    assert "not ember.blockstore's backup LV" in one(lvm=state(foreign), name="n", volume="b", vg="ember-thin")[1][0]


def test_a_backup_listed_twice_is_refused():
    items = [item(name="n", volume="b", vg="ember-thin"), item(name="n", volume="b", vg="ember-thin")]
    _actions, errors = decide(items, state(), {}, {}, CHUNK)
    assert errors == ["backups[1].name: backup 'n' of volume b is listed twice with state present (also backups[0])"]


RESTORE = dict(name="first", volume="b", state="restored", restore_to="b", vg="ember-thin")
CATALOG = {"b": [manifest("b", "first", "2026-11-20T11:30:00Z")]}


def test_restore_refusals():
    assert "may hold data; set force: true" in one(CATALOG, **RESTORE)[1][0]
    assert "in-use (exported as iqn.x)" in one(CATALOG, exported={"b": "iqn.x"}, force=True, **RESTORE)[1][0]

    def opened(by_name, rows):
        by_name["volume-b"]["lv_attr"] = "Vwi-aotz--"
    assert "is open on the storage node" in one(CATALOG, lvm=state(opened), force=True, **RESTORE)[1][0]

    def small(by_name, rows):
        by_name["volume-b"]["lv_size"] = "1048576"
    assert "smaller than backup first" in one(CATALOG, lvm=state(small), force=True, **RESTORE)[1][0]
    assert "has no backup 'first'" in one({}, force=True, **RESTORE)[1][0]


def test_restore_onto_a_volume_being_created_needs_no_force_and_skips_zeros_when_fresh():
    def creating(by_name, rows):
        by_name["volume-b"]["lv_tags"] += ",ember.creating"
        by_name["volume-b"]["data_percent"] = "0.00"
    act, errors = one(CATALOG, lvm=state(creating), **RESTORE)
    assert errors == [] and act["action"] == "restore" and act["known_zero"] is True

    def written(by_name, rows):
        by_name["volume-b"]["lv_tags"] += ",ember.creating"
    act, _errors = one(CATALOG, lvm=state(written), **RESTORE)
    assert act["known_zero"] is False  # data_percent 1.95: a partial earlier restore, zeros are written


def test_a_restore_done_before_is_a_no_op_unless_forced():
    def restored(by_name, rows):
        by_name["volume-b"]["lv_tags"] += ",ember.restored=b+first"
    act, errors = one(CATALOG, lvm=state(restored), **RESTORE)
    assert errors == [] and act["action"] == "none" and act["status"] == "restored"
    act, _errors = one(CATALOG, lvm=state(restored), force=True, **RESTORE)
    assert act["action"] == "restore"


def test_prune_and_delete():
    catalog = {"b": [manifest("b", "first", "2026-11-20T11:30:00Z"), manifest("b", "second", "2026-11-21T11:30:00Z")]}
    act, _errors = one(catalog, volume="b", state="absent", keep_last=1, vg="ember-thin")
    assert act["action"] == "prune" and act["deleted"] == ["first"] and act["stale_lvs"] == ["bkbase-b+first"]
    act, _errors = one(catalog, volume="b", state="absent", keep_last=5)
    assert act["action"] == "none" and act["deleted"] == []
    act, _errors = one(catalog, volume="b", state="absent", name="first")
    assert act["action"] == "delete" and act["stale_lvs"] == []  # no vg: the next backup removes the base
    assert "keep no backup" in one(catalog, volume="b", state="absent", keep_daily=0, keep_weekly=0)[1][0]
    assert "apply to state absent only" in one(catalog, volume="b", name="x", vg="ember-thin", keep_last=1)[1][0]
    unreadable = [{"path": "/s/backups/b/x.json", "error": "x.json is not a JSON manifest"}]
    _actions, errors = decide([item(volume="b", state="absent", keep_last=1)], state(), catalog, {}, CHUNK,
                              unreadable={"b": unreadable})
    assert "cannot be read (x.json is not a JSON manifest)" in errors[0]


def test_verify_one_or_all():
    catalog = {"b": [manifest("b", "first", "2026-11-20T11:30:00Z"), manifest("b", "second", "2026-11-21T11:30:00Z")]}
    act, _errors = one(catalog, volume="b", state="verified")
    assert [m["name"] for m in act["manifests"]] == ["first", "second"] and act["action"] == "verify"
    act, _errors = one(catalog, volume="b", state="verified", name="second")
    assert [m["name"] for m in act["manifests"]] == ["second"]
    assert "has no backups in the store" in one({}, volume="b", state="verified")[1][0]

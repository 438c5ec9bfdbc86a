# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LVM driver parsing and size predictions, against ``vgs``/``lvs`` JSON captured on the lab's stor1.

``lvs_stor1.json``: ember-thick holds the managed thick LV ``volume-a`` (created as ``1G`` = 10**9 bytes, so
1002438656 bytes = 239 extents) with the unmanaged COW snapshot ``snap-a``; ember-thin holds ``thinpool`` (95%VG)
with the managed thin LV ``volume-b`` and its unmanaged thin snapshot ``snap-b``, plus LVM's hidden LVs.
``lvs_converged.json``: the lab after ``playbooks/site.yml`` (logs01, scratch01 thick; archive01, db01-data thin).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import (
    DEFAULT_EXTENT,
    PE_START,
    LvmState,
    parse_lvs,
    parse_vgs,
    predict_vg_size,
    thin_pool_size,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "lvm"
MiB, GiB = 2**20, 2**30
EXTENT = 4194304  # vg_extent_size of both lab VGs


def text(name):
    return (FIXTURES / name).read_text()


def raw_rows(name, key):
    """The report rows exactly as LVM printed them (strings), to check the parsers against."""
    return [row for section in json.loads(text(name))["report"] for row in section[key]]


def state(which):
    return LvmState(parse_vgs(text("vgs_%s.json" % which)), parse_lvs(text("lvs_%s.json" % which)))


@pytest.fixture(scope="module")
def stor1():
    return state("stor1")


@pytest.fixture(scope="module")
def converged():
    return state("converged")


# --- parse_lvs ---------------------------------------------------------------------------------------------------

def test_parse_lvs_keeps_every_row_in_order():
    lvs = parse_lvs(text("lvs_stor1.json"))
    assert [(lv["vg"], lv["name"]) for lv in lvs] == [
        ("ember-thick", "snap-a"), ("ember-thick", "volume-a"), ("ember-thin", "[lvol0_pmspare]"),
        ("ember-thin", "snap-b"), ("ember-thin", "thinpool"), ("ember-thin", "[thinpool_tdata]"),
        ("ember-thin", "[thinpool_tmeta]"), ("ember-thin", "volume-b"),
    ]


def test_parse_lvs_sizes_are_the_json_byte_counts_as_int():
    lvs = {lv["name"]: lv for lv in parse_lvs(text("lvs_stor1.json"))}
    for row in raw_rows("lvs_stor1.json", "lv"):
        assert lvs[row["lv_name"]]["size_bytes"] == int(row["lv_size"])
        assert isinstance(lvs[row["lv_name"]]["size_bytes"], int)
    assert lvs["volume-a"]["size_bytes"] == 1002438656 == 239 * EXTENT
    assert lvs["snap-a"]["size_bytes"] == 104857600
    assert lvs["volume-b"]["size_bytes"] == GiB
    assert lvs["thinpool"]["size_bytes"] == 4072669184 == 971 * EXTENT


def test_parse_lvs_managed_thick_origin():
    lv = {lv["name"]: lv for lv in parse_lvs(text("lvs_stor1.json"))}["volume-a"]
    assert lv == {
        "name": "volume-a", "vg": "ember-thick", "size_bytes": 1002438656, "attr": "owi-a-s---",
        "tags": ["ember.blockstore", "ember.type=bulk", "ember.volume=a"], "pool_lv": None, "origin": None,
        "data_percent": None, "metadata_percent": None, "path": "/dev/ember-thick/volume-a", "segtype": "linear",
        "managed": True, "volume": "a", "volume_type": "bulk", "backend": None, "time": None,
    }


def test_parse_lvs_cow_snapshot_is_unmanaged_with_origin():
    lv = {lv["name"]: lv for lv in parse_lvs(text("lvs_stor1.json"))}["snap-a"]
    assert lv["origin"] == "volume-a"
    assert lv["managed"] is False
    assert lv["tags"] == []
    assert lv["volume"] is None and lv["volume_type"] is None and lv["backend"] is None
    assert lv["data_percent"] == 0.0
    assert lv["attr"] == "swi-a-s---"


def test_parse_lvs_thin_volume_and_thin_snapshot():
    lvs = {lv["name"]: lv for lv in parse_lvs(text("lvs_stor1.json"))}
    vol = lvs["volume-b"]
    assert vol["pool_lv"] == "thinpool"
    assert vol["managed"] is True and vol["volume"] == "b"
    assert vol["volume_type"] is None  # volume-b carries no ember.type= tag
    assert vol["data_percent"] == 1.95
    assert vol["segtype"] == "thin"
    snap = lvs["snap-b"]
    assert snap["pool_lv"] == "thinpool" and snap["origin"] == "volume-b"
    assert snap["managed"] is False
    assert snap["data_percent"] is None  # inactive (attr ...-k): LVM prints ""


def test_parse_lvs_thin_pool_percentages_and_empty_path():
    pool = {lv["name"]: lv for lv in parse_lvs(text("lvs_stor1.json"))}["thinpool"]
    assert pool["data_percent"] == 0.51
    assert pool["metadata_percent"] == 11.52
    assert pool["path"] is None  # lv_path "" for a pool
    assert pool["pool_lv"] is None and pool["origin"] is None
    assert pool["segtype"] == "thin-pool"
    assert pool["managed"] is False


def test_parse_lvs_backend_tag_from_converged_run():
    lvs = {lv["name"]: lv for lv in parse_lvs(text("lvs_converged.json"))}
    assert lvs["volume-db01-data"]["backend"] == "lvm-thin"
    assert lvs["volume-db01-data"]["volume"] == "db01-data"
    assert lvs["volume-db01-data"]["volume_type"] == "fast"
    assert lvs["volume-logs01"]["backend"] == "lvm-thick"
    assert lvs["volume-logs01"]["volume_type"] == "bulk"
    assert lvs["volume-logs01"]["tags"] == [
        "ember.backend=lvm-thick", "ember.blockstore", "ember.type=bulk", "ember.volume=logs01"]


@pytest.mark.parametrize("empty", ["", "   \n", '{"report": []}', '{"report": [{"lv": []}]}'])
def test_parse_lvs_empty_output(empty):
    assert parse_lvs(empty) == []


def test_parse_lvs_tag_without_managed_tag_is_not_managed():
    # A volume tag alone (someone copied our naming) does not make an LV ours.
    out = json.dumps({"report": [{"lv": [{
        "lv_name": "volume-x", "vg_name": "vg", "lv_size": "4194304", "lv_attr": "-wi-a-----",
        "lv_tags": "ember.volume=x", "pool_lv": "", "origin": "", "data_percent": "", "metadata_percent": "",
        "lv_path": "/dev/vg/volume-x", "segtype": "linear"}]}]})
    (lv,) = parse_lvs(out)
    assert lv["managed"] is False
    assert lv["volume"] == "x"


# --- parse_vgs ---------------------------------------------------------------------------------------------------

def test_parse_vgs_stor1():
    assert parse_vgs(text("vgs_stor1.json")) == {
        "ember-thick": {"name": "ember-thick", "size_bytes": 4290772992, "free_bytes": 3183476736,
                        "extent_size_bytes": EXTENT, "tags": [], "pv_count": 1,
                        "missing_pv_count": 0, "attr": ""},
        "ember-thin": {"name": "ember-thin", "size_bytes": 4290772992, "free_bytes": 209715200,
                       "extent_size_bytes": EXTENT, "tags": [], "pv_count": 1,
                       "missing_pv_count": 0, "attr": ""},
    }


def test_parse_vgs_converged_thick_free_space():
    vgs = parse_vgs(text("vgs_converged.json"))
    assert vgs["ember-thick"]["free_bytes"] == 3485466624
    assert vgs["ember-thin"]["free_bytes"] == 209715200


def test_vg_used_space_is_the_sum_of_its_lvs(stor1, converged):
    # Cross-check between the two reports LVM printed: size - free is exactly what the LVs take.
    for st in (stor1, converged):
        thick = st.vgs["ember-thick"]
        used = sum(lv["size_bytes"] for lv in st.lvs if lv["vg"] == "ember-thick")
        assert thick["size_bytes"] - thick["free_bytes"] == used
    assert stor1.vgs["ember-thick"]["size_bytes"] - stor1.vgs["ember-thick"]["free_bytes"] == 1002438656 + 104857600


def test_parse_vgs_defaults_when_fields_are_empty():
    out = json.dumps({"report": [{"vg": [{"vg_name": "vg0", "vg_size": "8388608", "vg_free": "8388608",
                                          "vg_extent_size": "", "vg_tags": "a,b", "pv_count": ""}]}]})
    assert parse_vgs(out) == {"vg0": {"name": "vg0", "size_bytes": 8388608, "free_bytes": 8388608,
                                      "extent_size_bytes": DEFAULT_EXTENT, "tags": ["a", "b"], "pv_count": 0,
                                      "missing_pv_count": 0, "attr": ""}}


def test_parse_vgs_empty():
    assert parse_vgs("") == {}


# --- LvmState lookups --------------------------------------------------------------------------------------------

def test_lv_lookup_by_vg_and_name(stor1):
    assert stor1.lv("ember-thin", "thinpool")["size_bytes"] == 4072669184
    assert stor1.lv("ember-thick", "thinpool") is None
    assert stor1.lv("ember-thin", "volume-a") is None  # right name, wrong VG
    assert stor1.lv("nope", "volume-a") is None


def test_volume_lookup_uses_lv_naming(stor1):
    assert stor1.volume("ember-thick", "a")["name"] == "volume-a"
    assert stor1.volume("ember-thin", "b")["name"] == "volume-b"
    assert stor1.volume("ember-thick", "b") is None
    assert stor1.volume("ember-thick", "snap-a") is None  # snap-a is not volume-snap-a


def test_snapshots_of(stor1, converged):
    assert [s["name"] for s in stor1.snapshots_of("ember-thick", "volume-a")] == ["snap-a"]
    assert [s["name"] for s in stor1.snapshots_of("ember-thin", "volume-b")] == ["snap-b"]
    assert stor1.snapshots_of("ember-thin", "volume-a") == []
    assert stor1.snapshots_of("ember-thick", "snap-a") == []
    assert converged.snapshots_of("ember-thin", "volume-db01-data") == []


def test_managed_in_thick_excludes_snapshots_and_thin(stor1):
    assert [lv["name"] for lv in stor1.managed_in("ember-thick")] == ["volume-a"]
    # No managed thick LV in the thin VG: volume-b is thin, pool/hidden LVs are unmanaged.
    assert stor1.managed_in("ember-thin") == []


def test_managed_in_thin_pool(stor1, converged):
    assert [lv["name"] for lv in stor1.managed_in("ember-thin", "thinpool")] == ["volume-b"]
    assert [lv["name"] for lv in converged.managed_in("ember-thin", "thinpool")] == [
        "volume-archive01", "volume-db01-data"]
    assert converged.managed_in("ember-thin", "otherpool") == []
    assert stor1.managed_in("ember-thick", "thinpool") == []


def test_managed_in_converged_thick(converged):
    assert [lv["volume"] for lv in converged.managed_in("ember-thick")] == ["logs01", "scratch01"]


# --- predict_vg_size / thin_pool_size ---------------------------------------------------------------------------

def test_predict_vg_size_matches_the_lab_vg():
    # The lab's PVs are 4 GiB disks; vgcreate left 1023 extents after the 1 MiB data offset.
    vg_size = parse_vgs(text("vgs_stor1.json"))["ember-thick"]["size_bytes"]
    assert predict_vg_size([4 * GiB], EXTENT) == vg_size == 4290772992


@pytest.mark.parametrize(("pvs", "extent", "expected"), [
    ([], DEFAULT_EXTENT, 0),
    ([0], DEFAULT_EXTENT, 0),
    ([PE_START], DEFAULT_EXTENT, 0),  # only the data offset
    ([PE_START + DEFAULT_EXTENT - 1], DEFAULT_EXTENT, 0),  # less than one whole extent
    ([PE_START + DEFAULT_EXTENT], DEFAULT_EXTENT, DEFAULT_EXTENT),
    ([4 * GiB, 4 * GiB], DEFAULT_EXTENT, 2 * 4290772992),  # per PV, not over the sum
    ([1 * GiB], 32 * MiB, 31 * 32 * MiB),
    ([100], DEFAULT_EXTENT, 0),  # smaller than the offset: never negative
])
def test_predict_vg_size(pvs, extent, expected):
    assert predict_vg_size(pvs, extent) == expected


def test_thin_pool_size_percent_matches_the_lab_pool():
    # lvcreate -l 95%VG on 1023 extents gave 971 extents (rounded down), the pool LV in lvs_stor1.json.
    vg_size = parse_vgs(text("vgs_stor1.json"))["ember-thin"]["size_bytes"]
    pool = {lv["name"]: lv for lv in parse_lvs(text("lvs_stor1.json"))}["thinpool"]
    assert thin_pool_size("95%VG", vg_size, EXTENT) == pool["size_bytes"] == 4072669184


@pytest.mark.parametrize(("spec", "expected"), [
    ("100%VG", 1023 * EXTENT),
    ("50%VG", 511 * EXTENT),  # 511.5 -> 511
    ("95%vg", 971 * EXTENT),
    (" 95%VG ", 971 * EXTENT),
    ("1%VG", 10 * EXTENT),  # 10.23 -> 10
])
def test_thin_pool_size_percent(spec, expected):
    assert thin_pool_size(spec, 4290772992, EXTENT) == expected


@pytest.mark.parametrize(("spec", "expected"), [
    ("3GiB", 3 * GiB),
    ("1G", 1002438656),  # 10**9 rounded up to 239 extents, as volume-a was
    ("4MiB", EXTENT),
    ("1", EXTENT),
    (str(EXTENT + 1), 2 * EXTENT),
])
def test_thin_pool_size_absolute_rounds_up_to_extents(spec, expected):
    assert thin_pool_size(spec, 4290772992, EXTENT) == expected


def test_thin_pool_size_bad_absolute_size_names_the_field():
    with pytest.raises(SizeError, match=r"^thin_pool_size: '3 bananas'"):
        thin_pool_size("3 bananas", 4290772992, EXTENT)


@pytest.mark.parametrize("spec", ["ninety%VG", "0%VG", "150%VG"])
def test_thin_pool_size_bad_percent_names_the_field(spec):
    with pytest.raises(SizeError, match=r"^thin_pool_size: "):
        thin_pool_size(spec, 4290772992, EXTENT)


def test_a_thin_clone_is_not_a_snapshot_of_its_source():
    # A thin clone is a thin snapshot LV that the volume module made a volume (its origin stays the source): it
    # must not hold the source (a delete without cascade) or show among its snapshots.
    doc = json.loads(text("lvs_snap_sources.json"))
    rows = doc["report"][0]["lv"]
    clone = dict(next(r for r in rows if r["lv_name"] == "volume-b"), lv_name="volume-b5", origin="volume-b",
                 lv_tags="ember.blockstore,ember.source=b,ember.volume=b5", lv_path="/dev/ember-thin/volume-b5")
    rows.append(clone)
    lvm = LvmState(parse_vgs(text("vgs_stor1.json")), parse_lvs(json.dumps(doc)))
    assert lvm.lv("ember-thin", "volume-b5")["managed"] and lvm.lv("ember-thin", "volume-b5")["origin"] == "volume-b"
    assert sorted(s["name"] for s in lvm.snapshots_of("ember-thin", "volume-b")) == ["snap-b", "snap-b+nightly"]

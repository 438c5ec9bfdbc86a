# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The status tables of ``volume_info`` and ``snapshot_info`` (``_info``), row by row."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._info import (
    GIB,
    iso_utc,
    size_gib,
    snapshot_status,
    volume_status,
)

HERE = "stor1"


def lv(*tags, attr="-wi-a-----"):
    return {"tags": ["ember.blockstore", "ember.volume=v"] + list(tags), "attr": attr, "pool_lv": None,
            "data_percent": None}


def placed(status, host=HERE):
    return {"host": host, "pool_id": "%s@lvm" % host, "status": status}


@pytest.mark.parametrize(("volume", "exported", "placement", "status"), [
    (lv(), True, placed("deleting"), "deleting"),
    (None, False, placed("deleting"), "deleting"),
    (None, False, placed("creating"), "creating"),
    (None, False, placed("available"), "error"),
    (lv("ember.status=backing-up"), True, placed("available"), "backing-up"),
    (lv("ember.status=error", "ember.creating"), False, None, "error"),
    (lv("ember.reverting=nightly"), False, None, "reverting"),
    (lv("ember.creating"), False, placed("creating"), "creating"),
    (lv(), False, placed("creating"), "available"),  # the ledger's intent is older than the LV
    (lv(), True, placed("deleting", host="stor2"), "in-use"),  # another node's placement is not this node's
    (lv(), False, None, "available"),
])
def test_volume_status_table(volume, exported, placement, status):
    assert volume_status(volume, exported, placement, HERE) == (status, None)


def test_an_unknown_status_tag_is_returned_to_be_warned_about():
    assert volume_status(lv("ember.status=lost"), False, None, HERE) == ("available", "lost")


def snap(attr, pool_lv=None, data_percent=0.0):
    return {"attr": attr, "pool_lv": pool_lv, "data_percent": data_percent, "tags": []}


@pytest.mark.parametrize(("snapshot", "origin", "status"), [
    (snap("swi-a-s---"), lv(attr="owi-a-s---"), "available"),
    (snap("Swi-a-s---"), lv(attr="Owi-a-s---"), "restoring"),
    # A thin snapshot whose merge LVM deferred keeps V; its volume shows O and carries the revert's marker.
    (snap("Vwi---tz-k", pool_lv="thinpool", data_percent=None), lv("ember.reverting=s", attr="Owi-a-tz--"),
     "restoring"),
    (snap("Vwi---tz-k", pool_lv="thinpool", data_percent=None), lv("ember.reverting=other", attr="Owi-a-tz--"),
     "available"),
    (snap("swi-I-s---", data_percent=100.0), lv(attr="owi-a-s---"), "error"),
    (snap("swi-a-s---", data_percent=100.0), None, "error"),
    (snap("Vwi-a-tz--", pool_lv="thinpool", data_percent=100.0), None, "available"),  # thin: no COW store
])
def test_snapshot_status_table(snapshot, origin, status):
    assert snapshot_status(snapshot, origin, "s") == status


def test_sizes_round_up_to_whole_gib_as_cinder():
    assert [size_gib(n) for n in (None, 1, GIB, GIB + 1, 10 * GIB)] == [None, 1, 1, 2, 10]


def test_times_are_iso_8601_utc():
    assert iso_utc(None) is None
    assert iso_utc(1795169100) == "2026-11-20T10:05:00Z"

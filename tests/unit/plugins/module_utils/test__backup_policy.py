# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_backup_policy``: backup policies in the inventory and the backup module's items of one node (issue 13)."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._backup_policy import (
    backup_items,
    period_name,
    validate_policy,
)

NOW = "2026-11-30T23:05:00Z"
POOLS = [
    {"id": "stor1@lvm-thin", "vg": "ember-thin", "exists": True,
     "volumes": [{"name": "db01-data"}, {"name": "archive01"}, {"name": "nopolicy"}]},
    {"id": "stor1@lvm-thick", "vg": "ember-thick", "exists": True, "volumes": [{"name": "logs01"}]},
    {"id": "stor1@gone", "vg": "ember-gone", "exists": False, "volumes": [{"name": "ghost"}]},
]
VOLUMES = [
    {"name": "db01-data", "backup": {"policy": "daily", "keep_last": 7}},
    {"name": "archive01", "backup": {"policy": "weekly", "incremental": False, "keep_weekly": 4, "keep_daily": 2}},
    {"name": "logs01", "backup": {"policy": "manual"}},
    {"name": "nopolicy"},
    {"name": "elsewhere", "backup": {"policy": "hourly"}},
    {"name": "ghost", "backup": {"policy": "daily"}},
    {"name": "old", "state": "absent", "backup": {"policy": "bogus"}},
]


@pytest.mark.parametrize(("policy", "now", "expected"), [
    ("hourly", NOW, "hourly-2026-11-30-23"),
    ("daily", NOW, "daily-2026-11-30"),
    ("daily", "2026-12-01T00:30:00+01:00", "daily-2026-11-30"),  # 23:30 UTC
    ("weekly", NOW, "weekly-2026-w49"),
    ("weekly", "2027-01-01T12:00:00Z", "weekly-2026-w53"),  # ISO week-numbering year
    ("manual", NOW, None),
])
def test_period_names_in_utc(policy, now, expected):
    assert period_name(policy, now) == expected


def test_period_name_needs_a_time_zone():
    with pytest.raises(ValueError, match="has no time zone"):
        period_name("daily", datetime.datetime(2026, 11, 30, 23, 5))


def test_items_of_one_node():
    items = backup_items(POOLS, VOLUMES, NOW)
    assert items["backups"] == [
        {"name": "weekly-2026-w49", "volume": "archive01", "vg": "ember-thin", "state": "present",
         "is_incremental": False, "metadata": {"policy": "weekly"}},
        {"name": "daily-2026-11-30", "volume": "db01-data", "vg": "ember-thin", "state": "present",
         "is_incremental": True, "metadata": {"policy": "daily"}},
    ]
    assert items["prune"] == [
        {"volume": "archive01", "vg": "ember-thin", "state": "absent", "keep_weekly": 4, "keep_daily": 2},
        {"volume": "db01-data", "vg": "ember-thin", "state": "absent", "keep_last": 7},
    ]
    assert items["skipped"] == ["logs01"]


def test_nfs_volumes_carry_attached_and_an_attached_one_needs_the_policys_force():
    share = "198.18.0.21:/srv/ember-nfs"
    pools = [{"id": "stor1@nfs1#" + share, "vg": share, "driver": "nfs", "exists": True,
              "volumes": [{"name": "n1"}, {"name": "n2"}, {"name": "n3"}, {"name": "n4"}]}]
    volumes = [
        {"name": "n1", "backup": {"policy": "daily", "keep_last": 2}, "attachments": [{"host": "client1"}]},
        {"name": "n2", "backup": {"policy": "daily", "force": True}, "attachments": [{"host": "client1"}]},
        {"name": "n3", "backup": {"policy": "daily"}, "attachments": [{"host": "client1", "state": "absent"}]},
        {"name": "n4", "backup": {"policy": "daily"}},
    ]
    items = backup_items(pools, volumes, NOW)
    assert [(i["volume"], i["vg"], i["attached"], i["force"]) for i in items["backups"]] == [
        ("n2", share, True, True), ("n3", share, False, False), ("n4", share, False, False)]
    assert items["attached"] == ["n1"]
    assert items["prune"] == [{"volume": "n1", "vg": share, "state": "absent", "keep_last": 2}]
    assert validate_policy({"policy": "daily", "force": "yes"}, "v.backup") == [
        "v.backup.force: 'yes' is not a boolean"]


def test_a_named_run_backs_up_manual_volumes_too():
    items = backup_items(POOLS, VOLUMES, NOW, name="before-upgrade")
    assert [(i["volume"], i["name"]) for i in items["backups"]] == [
        ("archive01", "before-upgrade"), ("db01-data", "before-upgrade"), ("logs01", "before-upgrade")]
    assert items["skipped"] == []


@pytest.mark.parametrize(("value", "message"), [
    ("daily", "vol.backup: 'daily' is not a mapping"),
    ({"policy": "monthly"}, "vol.backup.policy: 'monthly' is not one of hourly, daily, weekly, manual"),
    ({}, "vol.backup.policy: None is not one of"),
    ({"policy": "daily", "keep_last": 0}, "vol.backup.keep_last: 0 is not a whole number from 1 to 10000"),
    ({"policy": "daily", "keep_daily": True}, "vol.backup.keep_daily: True is not a whole number"),
    ({"policy": "daily", "keep_weekly": "4"}, "vol.backup.keep_weekly: '4' is not a whole number"),
    ({"policy": "daily", "incremental": "yes"}, "vol.backup.incremental: 'yes' is not a boolean"),
    ({"policy": "daily", "keep": 3}, "vol.backup: unknown key(s) keep; allowed: policy, keep_last"),
])
def test_bad_policies_are_named(value, message):
    errors = validate_policy(value, "vol.backup")
    assert errors and message in "; ".join(errors)


def test_a_bad_policy_fails_the_items_naming_the_volume():
    with pytest.raises(ValueError, match=r"blockstore_volumes\[1\]\.backup\.policy: 'often'"):
        backup_items(POOLS, [{"name": "a"}, {"name": "db01-data", "backup": {"policy": "often"}}], NOW)


def test_the_plan_refuses_a_bad_policy_before_any_change():
    from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.request_spec import validate_requests
    volumes = [{"name": "db01-data", "size": "1GiB", "backup": {"policy": "daily", "keep_last": -1}}]
    with pytest.raises(Exception) as info:
        validate_requests(volumes, {})
    assert "blockstore_volumes[0].backup.keep_last: -1 is not a whole number" in str(info.value)

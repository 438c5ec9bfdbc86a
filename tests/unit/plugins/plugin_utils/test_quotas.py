# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``plugin_utils.quotas``: ``blockstore_quotas`` validated with every problem named, and the usage after the run
checked against Cinder's quotas (volumes, gigabytes with snapshots, snapshots; per type, per project, both)."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.quotas import check_quotas, validate_quotas
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError

GiB = 2**30
TYPES = {"gold": {"extra_specs": {}}, "silver": {}, "thin_fast": None}


def vol(name, size_gib=1, project=None, volume_type=None, snapshots=(), size_bytes=None, counted_as=None):
    """A volume of the after-the-run list; ``snapshots`` are sizes in bytes."""
    item = {"name": name, "project": project, "volume_type": volume_type,
            "size_bytes": size_gib * GiB if size_bytes is None else size_bytes,
            "snapshots": [{"name": f"s{i}", "size_bytes": size} for i, size in enumerate(snapshots)]}
    if counted_as:
        item["counted_as"] = counted_as
    return item


def errors_of(quotas, types=None):
    with pytest.raises(ScheduleError) as info:
        validate_quotas(quotas, TYPES if types is None else types)
    return info.value.errors


def check(volumes, quotas, types=None):
    return check_quotas(volumes, validate_quotas(quotas, TYPES if types is None else types))


# validate_quotas


@pytest.mark.parametrize("quotas", [None, {}, {"projects": None}, {"projects": {}}])
def test_empty_is_unlimited(quotas):
    assert validate_quotas(quotas, TYPES) == {"projects": {}}


def test_every_key_normalized_and_unlimited_left_out():
    quotas = {"volumes": 100, "gigabytes": 2000, "snapshots": 50, "volumes_gold": 10, "gigabytes_gold": 100,
              "snapshots_gold": 0, "volumes_silver": -1, "gigabytes_thin_fast": 7,
              "projects": {"web": {"volumes": 10, "gigabytes": 100, "snapshots": -1, "volumes_gold": 2,
                                   "gigabytes_gold": 20, "snapshots_gold": 3},
                           "db": None, "idle": {"volumes": -1}}}
    assert validate_quotas(quotas, TYPES) == {
        "volumes": 100, "gigabytes": 2000, "snapshots": 50, "volumes_gold": 10, "gigabytes_gold": 100,
        "snapshots_gold": 0, "gigabytes_thin_fast": 7,
        "projects": {"web": {"volumes": 10, "gigabytes": 100, "volumes_gold": 2, "gigabytes_gold": 20,
                             "snapshots_gold": 3},
                     "db": {}, "idle": {}}}


def test_input_is_not_changed():
    quotas = {"volumes": -1, "projects": {"web": {"gigabytes": -1}}}
    validate_quotas(quotas, TYPES)
    assert quotas == {"volumes": -1, "projects": {"web": {"gigabytes": -1}}}


def test_volume_types_may_be_the_validated_dict_or_none():
    assert validate_quotas({"volumes_gold": 1}, {"gold": {"extra_specs": {}, "description": None}}) == {
        "volumes_gold": 1, "projects": {}}
    with pytest.raises(ScheduleError) as info:
        validate_quotas({"volumes_gold": 1}, None)
    assert info.value.errors == [
        "blockstore_quotas.volumes_gold: volume type 'gold' is not a key of blockstore_volume_types "
        "(none are defined)"]


@pytest.mark.parametrize("quotas", [[], "volumes: 1", 5])
def test_not_a_dict(quotas):
    assert errors_of(quotas) == [
        f"blockstore_quotas: expected a dict of quota name -> limit, got {type(quotas).__name__}"]


@pytest.mark.parametrize("value, message", [
    ("10", "'10' is not an integer; give a whole number (GiB for gigabytes), or -1 for unlimited"),
    (1.5, "1.5 is not an integer"),
    (10.0, "10.0 is not an integer"),
    (True, "True is not an integer"),
    (False, "False is not an integer"),
    (None, "None is not an integer"),
    ([1], "[1] is not an integer"),
    (-2, "-2 is below -1; give 0 or more, or -1 for unlimited"),
])
@pytest.mark.parametrize("key", ["volumes", "gigabytes", "snapshots", "gigabytes_gold"])
def test_bad_values_name_field_and_value(key, value, message):
    errors = errors_of({key: value})
    assert len(errors) == 1
    assert errors[0].startswith(f"blockstore_quotas.{key}: {message}")


@pytest.mark.parametrize("value", [-1, 0, 1, 10**6])
def test_values_from_minus_one_up(value):
    assert validate_quotas({"gigabytes": value}, TYPES).get("gigabytes") == (None if value == -1 else value)


def test_unknown_keys_and_types():
    errors = errors_of({"volume": 1, "gigabytes_bronze": 1, "volumes_": 1, 5: 1, "backups": 1,
                        "per_volume_gigabytes": 1})
    assert errors[0].startswith("blockstore_quotas.volume: unknown key; allowed: volumes, gigabytes, snapshots, "
                                "volumes_<type>, gigabytes_<type>, snapshots_<type> (<type> a key of "
                                "blockstore_volume_types), projects")
    assert errors[1] == ("blockstore_quotas.gigabytes_bronze: volume type 'bronze' is not a key of "
                         "blockstore_volume_types (gold, silver, thin_fast)")
    assert errors[2].startswith("blockstore_quotas.volumes_: unknown key")
    assert errors[3].startswith("blockstore_quotas: key 5 is not a string")
    assert errors[4].startswith("blockstore_quotas.backups: unknown quota (there are no backups to count)")
    assert errors[5].startswith("blockstore_quotas.per_volume_gigabytes: unknown quota (Cinder's "
                                "per_volume_gigabytes is not supported)")
    assert len(errors) == 6


def test_type_names_with_underscores():
    assert validate_quotas({"snapshots_thin_fast": 2}, TYPES) == {"snapshots_thin_fast": 2, "projects": {}}


@pytest.mark.parametrize("projects", [[{"web": {}}], "web", 3])
def test_projects_not_a_dict(projects):
    assert errors_of({"projects": projects}) == [
        f"blockstore_quotas.projects: expected a dict of project name -> quotas, got {type(projects).__name__}"]


@pytest.mark.parametrize("name", ["", "  ", 5, None, True])
def test_project_name_not_a_non_empty_string(name):
    assert errors_of({"projects": {name: {"volumes": 1}}}) == [
        f"blockstore_quotas.projects: project name {name!r} is not a non-empty string"]


def test_project_errors_name_the_project_field():
    errors = errors_of({"projects": {"web": {"gigabytes": "ten", "volumes_bronze": 1, "projects": {},
                                             "snapshots_gold": -3},
                                     "db": ["volumes"]}})
    assert errors == [
        "blockstore_quotas.projects.web.gigabytes: 'ten' is not an integer; give a whole number (GiB for "
        "gigabytes), or -1 for unlimited",
        "blockstore_quotas.projects.web.volumes_bronze: volume type 'bronze' is not a key of "
        "blockstore_volume_types (gold, silver, thin_fast)",
        "blockstore_quotas.projects.web.projects: unknown key (projects are not nested); allowed: volumes, "
        "gigabytes, snapshots, volumes_<type>, gigabytes_<type>, snapshots_<type> (<type> a key of "
        "blockstore_volume_types)",
        "blockstore_quotas.projects.web.snapshots_gold: -3 is below -1; give 0 or more, or -1 for unlimited",
        "blockstore_quotas.projects.db: expected a dict of quota name -> limit, got list",
    ]


def test_all_problems_collected_in_one_error():
    quotas = {"volumes": "x", "gigabytes": True, "snapshots": -2, "foo": 1, "volumes_bronze": 1,
              "projects": {"": {}, "web": {"gigabytes": 1.5}, "db": {"volumes": 1}}}
    with pytest.raises(ScheduleError) as info:
        validate_quotas(quotas, TYPES)
    fields = [e.split(":")[0] for e in info.value.errors]
    assert fields == ["blockstore_quotas.volumes", "blockstore_quotas.gigabytes", "blockstore_quotas.snapshots",
                      "blockstore_quotas.foo", "blockstore_quotas.volumes_bronze", "blockstore_quotas.projects",
                      "blockstore_quotas.projects.web.gigabytes"]
    assert "blockstore_quotas.volumes: 'x' is not an integer" in str(info.value)
    assert "blockstore_quotas.projects.web.gigabytes: 1.5 is not an integer" in str(info.value)


# check_quotas: usage and messages


def test_no_quotas_no_errors():
    volumes = [vol(f"v{i}", 1000, "web", "gold", [GiB] * 3) for i in range(50)]
    assert check(volumes, {}) == []
    assert check_quotas(volumes, {}) == []
    assert check_quotas(volumes, None) == []
    assert check_quotas([], validate_quotas({"volumes": 0, "gigabytes": 0, "snapshots": 0}, TYPES)) == []


def test_volumes_at_limit_pass_one_more_fails():
    quotas = {"volumes": 3}
    assert check([vol("a"), vol("b"), vol("c")], quotas) == []
    assert check([vol("a"), vol("b"), vol("c"), vol("d")], quotas) == [
        "blockstore_quotas.volumes: quota exceeded for volumes: limit 3, the inventory would have 4: a, b, c, d; "
        "raise the quota or remove volumes"]


def test_volumes_limit_zero():
    assert check([], {"volumes": 0}) == []
    [message] = check([vol("a")], {"volumes": 0})
    assert message.startswith("blockstore_quotas.volumes: quota exceeded for volumes: limit 0, the inventory "
                              "would have 1: a;")


def test_gigabytes_exactly_at_limit_passes_one_byte_over_fails():
    quotas = {"gigabytes": 10}
    assert check([vol("a", 4), vol("b", 6)], quotas) == []
    assert check([vol("a", 4), vol("b", size_bytes=6 * GiB + 1)], quotas) == [
        "blockstore_quotas.gigabytes: quota exceeded for gigabytes: limit 10 GiB, the inventory would use "
        "10.01 GiB (10737418241 bytes) in 2 volumes, largest first: b, a; raise the quota, or shrink or remove "
        "volumes or snapshots"]


def test_gigabytes_count_snapshots():
    quotas = {"gigabytes": 10}
    assert check([vol("a", 8, snapshots=[GiB, GiB])], quotas) == []
    assert check([vol("a", 8, snapshots=[GiB, GiB, 1])], quotas) == [
        "blockstore_quotas.gigabytes: quota exceeded for gigabytes: limit 10 GiB, the inventory would use "
        "10.01 GiB (10737418241 bytes; volumes 8 GiB, snapshots 2.01 GiB) in 1 volume, largest first: a; raise "
        "the quota, or shrink or remove volumes or snapshots"]
    # a volume's snapshots make it the largest
    [message] = check([vol("a", 5, snapshots=[3 * GiB]), vol("b", 6)], quotas)
    assert "would use 14 GiB (volumes 11 GiB, snapshots 3 GiB) in 2 volumes, largest first: a, b;" in message


def test_gigabytes_usage_in_gib_with_two_decimals():
    [message] = check([vol("a", size_bytes=GiB + GiB // 2), vol("b", size_bytes=GiB // 4)], {"gigabytes": 1})
    assert "limit 1 GiB, the inventory would use 1.75 GiB in 2 volumes" in message
    [message] = check([vol("a", size_bytes=GiB + GiB // 3)], {"gigabytes": 1})
    assert "would use 1.34 GiB (1431655765 bytes) in 1 volume" in message


def test_gigabytes_limit_zero():
    [message] = check([vol("a", size_bytes=1)], {"gigabytes": 0})
    assert "blockstore_quotas.gigabytes: quota exceeded for gigabytes: limit 0 GiB, the inventory would use " \
           "0.01 GiB (1 bytes) in 1 volume" in message


def test_snapshots_at_limit_pass_one_more_fails():
    quotas = {"snapshots": 3}
    assert check([vol("a", snapshots=[1, 1]), vol("b", snapshots=[1]), vol("c")], quotas) == []
    assert check([vol("a", snapshots=[1, 1]), vol("b", snapshots=[1, 1]), vol("c")], quotas) == [
        "blockstore_quotas.snapshots: quota exceeded for snapshots: limit 3, the inventory would have 4 of 2 "
        "volumes: a (2 snapshots), b (2 snapshots); raise the quota or delete snapshots"]
    [message] = check([vol("a", snapshots=[1]), vol("b", snapshots=[1, 1, 1])], {"snapshots": 0})
    assert "limit 0, the inventory would have 4 of 2 volumes: b (3 snapshots), a (1 snapshot);" in message


def test_snapshots_do_not_count_as_volumes():
    assert check([vol("a", snapshots=[GiB] * 5)], {"volumes": 1}) == []


def test_unlimited_minus_one_never_fails():
    volumes = [vol(f"v{i}", 100, "web", "gold", [GiB]) for i in range(20)]
    quotas = {"volumes": -1, "gigabytes": -1, "snapshots": -1, "volumes_gold": -1,
              "projects": {"web": {"volumes": -1, "gigabytes_gold": -1}}}
    assert check(volumes, quotas) == []
    # a negative limit handed to check_quotas directly (not normalized) is unlimited too
    assert check_quotas(volumes, {"volumes": -1, "projects": {"web": {"gigabytes": -1}}}) == []


def test_per_type():
    volumes = [vol("g1", 10, volume_type="gold", snapshots=[2 * GiB]), vol("g2", 10, volume_type="gold"),
               vol("s1", 100, volume_type="silver", snapshots=[GiB] * 4), vol("n1", 100)]
    assert check(volumes, {"volumes_gold": 2, "gigabytes_gold": 22, "snapshots_gold": 1, "volumes_silver": 1,
                           "snapshots_silver": 4, "gigabytes_silver": 104}) == []
    assert check(volumes, {"volumes_gold": 1, "gigabytes_gold": 21, "snapshots_gold": 0,
                           "snapshots_silver": 3}) == [
        "blockstore_quotas.gigabytes_gold: quota exceeded for gigabytes of volume type gold: limit 21 GiB, the "
        "inventory would use 22 GiB (volumes 20 GiB, snapshots 2 GiB) in 2 volumes, largest first: g1, g2; raise "
        "the quota, or shrink or remove volumes or snapshots",
        "blockstore_quotas.snapshots_gold: quota exceeded for snapshots of volume type gold: limit 0, the "
        "inventory would have 1 of 1 volume: g1 (1 snapshot); raise the quota or delete snapshots",
        "blockstore_quotas.snapshots_silver: quota exceeded for snapshots of volume type silver: limit 3, the "
        "inventory would have 4 of 1 volume: s1 (4 snapshots); raise the quota or delete snapshots",
        "blockstore_quotas.volumes_gold: quota exceeded for volumes of volume type gold: limit 1, the inventory "
        "would have 2: g1, g2; raise the quota or remove volumes",
    ]


def test_per_type_does_not_count_other_types_or_untyped():
    volumes = [vol("g1", volume_type="gold"), vol("s1", volume_type="silver"), vol("n1"), vol("n2")]
    assert check(volumes, {"volumes_gold": 1, "volumes_silver": 1, "volumes": 4}) == []


def test_per_project():
    volumes = [vol("w1", 60, "web"), vol("w2", 50, "web", snapshots=[GiB]), vol("d1", 500, "db"), vol("x", 1)]
    quotas = {"projects": {"web": {"volumes": 2, "gigabytes": 111, "snapshots": 1}, "db": {"volumes": 1}}}
    assert check(volumes, quotas) == []
    quotas = {"projects": {"web": {"volumes": 1, "gigabytes": 110, "snapshots": 0}, "db": {"gigabytes": 499}}}
    assert check(volumes, quotas) == [
        "blockstore_quotas.projects.db.gigabytes: quota exceeded for gigabytes in project db: limit 499 GiB, the "
        "inventory would use 500 GiB in 1 volume, largest first: d1; raise the quota, or shrink or remove volumes "
        "or snapshots",
        "blockstore_quotas.projects.web.gigabytes: quota exceeded for gigabytes in project web: limit 110 GiB, "
        "the inventory would use 111 GiB (volumes 110 GiB, snapshots 1 GiB) in 2 volumes, largest first: w1, w2; "
        "raise the quota, or shrink or remove volumes or snapshots",
        "blockstore_quotas.projects.web.snapshots: quota exceeded for snapshots in project web: limit 0, the "
        "inventory would have 1 of 1 volume: w2 (1 snapshot); raise the quota or delete snapshots",
        "blockstore_quotas.projects.web.volumes: quota exceeded for volumes in project web: limit 1, the "
        "inventory would have 2: w1, w2; raise the quota or remove volumes",
    ]


def test_per_project_per_type():
    volumes = [vol("w1", 10, "web", "gold"), vol("w2", 10, "web", "gold", [GiB]), vol("w3", 10, "web", "silver"),
               vol("w4", 10, "web"), vol("d1", 10, "db", "gold")]
    quotas = {"projects": {"web": {"volumes_gold": 2, "gigabytes_gold": 21, "snapshots_gold": 1,
                                   "volumes_silver": 1},
                           "db": {"volumes_gold": 1}}}
    assert check(volumes, quotas) == []
    quotas = {"projects": {"web": {"volumes_gold": 1, "gigabytes_gold": 20, "snapshots_silver": 0,
                                   "volumes_silver": 0}}}
    assert check(volumes, quotas) == [
        "blockstore_quotas.projects.web.gigabytes_gold: quota exceeded for gigabytes of volume type gold in "
        "project web: limit 20 GiB, the inventory would use 21 GiB (volumes 20 GiB, snapshots 1 GiB) in 2 "
        "volumes, largest first: w2, w1; raise the quota, or shrink or remove volumes or snapshots",
        "blockstore_quotas.projects.web.volumes_gold: quota exceeded for volumes of volume type gold in project "
        "web: limit 1, the inventory would have 2: w1, w2; raise the quota or remove volumes",
        "blockstore_quotas.projects.web.volumes_silver: quota exceeded for volumes of volume type silver in "
        "project web: limit 0, the inventory would have 1: w3; raise the quota or remove volumes",
    ]


def test_global_type_and_project_quotas_together_sorted_by_key():
    volumes = [vol("a", 10, "web", "gold"), vol("b", 10, "db", "gold")]
    quotas = {"volumes_gold": 1, "volumes": 1, "gigabytes": 19,
              "projects": {"web": {"volumes_gold": 0, "gigabytes": 9}, "db": {"volumes": 0}}}
    keys = [m.split(":")[0] for m in check(volumes, quotas)]
    assert keys == ["blockstore_quotas.gigabytes", "blockstore_quotas.projects.db.volumes",
                    "blockstore_quotas.projects.web.gigabytes", "blockstore_quotas.projects.web.volumes_gold",
                    "blockstore_quotas.volumes", "blockstore_quotas.volumes_gold"]


def test_transfer_counts_for_the_receiving_project_only():
    # web01 moves from web to db (Cinder's volume transfer): the list holds the state after the run
    before = [vol("web01", 50, "web"), vol("web02", 50, "web"), vol("db01", 50, "db")]
    after = [vol("web01", 50, "db"), vol("web02", 50, "web"), vol("db01", 50, "db")]
    quotas = {"projects": {"web": {"volumes": 1, "gigabytes": 50}, "db": {"volumes": 2, "gigabytes": 100}}}
    assert [m.split(":")[0] for m in check(before, quotas)] == [
        "blockstore_quotas.projects.web.gigabytes", "blockstore_quotas.projects.web.volumes"]
    assert check(after, quotas) == []
    quotas["projects"]["db"] = {"volumes": 1}
    assert check(after, quotas) == [
        "blockstore_quotas.projects.db.volumes: quota exceeded for volumes in project db: limit 1, the inventory "
        "would have 2: db01, web01; raise the quota or remove volumes"]


def test_volume_without_project_counts_for_global_quotas_only():
    volumes = [vol("a", 10), vol("b", 10, "web")]
    assert check(volumes, {"projects": {"web": {"volumes": 1, "gigabytes": 10}}}) == []
    [message] = check(volumes, {"volumes": 1})
    assert "would have 2: a, b;" in message


def test_unmanaged_counts_for_global_quotas_only():
    volumes = [vol("w1", 10, "web", "gold"), vol("old", 10, "web", "gold", [GiB], counted_as="unmanaged"),
               vol("w2", 10, "web", counted_as="inventory")]
    assert check(volumes, {"projects": {"web": {"volumes": 2, "volumes_gold": 1, "gigabytes": 20,
                                                "snapshots": 0}}}) == []
    assert check(volumes, {"volumes": 2, "volumes_gold": 1, "snapshots": 0}) == [
        "blockstore_quotas.snapshots: quota exceeded for snapshots: limit 0, the inventory would have 1 of 1 "
        "volume: old (unmanaged, 1 snapshot); raise the quota or delete snapshots",
        "blockstore_quotas.volumes: quota exceeded for volumes: limit 2, the inventory would have 3: old "
        "(unmanaged), w1, w2; raise the quota or remove volumes",
        "blockstore_quotas.volumes_gold: quota exceeded for volumes of volume type gold: limit 1, the inventory "
        "would have 2: old (unmanaged), w1; raise the quota or remove volumes",
    ]


def test_absent_volumes_do_not_count():
    volumes = [vol("a", 10), dict(vol("gone", 10), state="absent")]
    assert check(volumes, {"volumes": 1, "gigabytes": 10}) == []


def test_at_most_ten_names_then_counted():
    volumes = [vol(f"v{i:02d}", 1, "web") for i in range(13)]
    [message] = check(volumes, {"projects": {"web": {"volumes": 12}}})
    assert message == ("blockstore_quotas.projects.web.volumes: quota exceeded for volumes in project web: limit "
                       "12, the inventory would have 13: v00, v01, v02, v03, v04, v05, v06, v07, v08, v09 and 3 "
                       "more; raise the quota or remove volumes")
    volumes = [vol(f"v{i:02d}", i + 1) for i in range(11)]
    [message] = check(volumes, {"gigabytes": 1})
    assert ("in 11 volumes, largest first: v10, v09, v08, v07, v06, v05, v04, v03, v02, v01 and 1 more;"
            in message)


def test_same_result_whatever_the_order():
    volumes = [vol(f"v{i}", i % 5 + 1, ["web", "db", None][i % 3], ["gold", None][i % 2], [GiB] * (i % 3))
               for i in range(30)]
    quotas = {"volumes": 5, "gigabytes": 10, "snapshots": 2, "volumes_gold": 1, "gigabytes_gold": 1,
              "projects": {"web": {"volumes": 1, "gigabytes_gold": 1, "snapshots": 0}, "db": {"gigabytes": 1}}}
    forward = check(volumes, quotas)
    assert len(forward) == 8  # web has no snapshots (i % 3 == 0)
    assert check(list(reversed(volumes)), quotas) == forward
    assert forward == sorted(forward)


def test_many_volumes_one_pass():
    volumes = [vol(f"v{i:05d}", 1, f"p{i % 100}", ["gold", "silver", None][i % 3], [GiB]) for i in range(10000)]
    quotas = {"volumes": 10000, "gigabytes": 20000, "snapshots": 10000,
              "projects": {f"p{i}": {"volumes": 100, "gigabytes_gold": 100} for i in range(100)}}
    assert check(volumes, quotas) == []
    quotas["projects"]["p7"]["volumes"] = 99
    [message] = check(volumes, quotas)
    assert message.startswith("blockstore_quotas.projects.p7.volumes: quota exceeded for volumes in project p7: "
                              "limit 99, the inventory would have 100: v00007, v00107,")
    assert message.endswith(" and 90 more; raise the quota or remove volumes")

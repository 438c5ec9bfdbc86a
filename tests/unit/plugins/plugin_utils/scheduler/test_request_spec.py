# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Inventory validation and the request (request_spec.py): volumes, volume types, options, sizes (a bare
number is GiB, as in Cinder) and the zones of a new volume (Cinder's create flow)."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.request_spec import (
    resolve_zones,
    type_availability_zones,
    validate_requests,
    validate_volume_types,
)
from scheduler_helpers import TYPES, GiB, MiB, pool_facts, schedule_error


class TestValidation:
    def errors(self, volumes, volume_types=..., **kwargs):
        # Ellipsis, not None, stands for the shared TYPES: None is itself a value under test (no types defined).
        if volume_types is ...:
            volume_types = TYPES
        return schedule_error(volumes, [pool_facts()], volume_types, **kwargs).errors

    def test_unknown_key(self):
        assert self.errors([{"name": "a", "size": 1, "sise": 2, "zone": "x"}]) == [
            ("blockstore_volumes[0]: unknown key(s) sise, zone; allowed: attachments, availability_zone, backend, "
             "backup, cascade, description, force, is_multiattach, manage, metadata, migration_policy, name, project, "
             "size, snapshots, source, state, volume_type")]

    def test_metadata_is_checked_as_the_volume_module_stores_it(self):
        (ok,) = validate_requests([{"name": "a", "size": 1, "metadata": {"app": "pg"}, "description": "é ok"}])
        assert (ok.metadata, ok.description) == ({"app": "pg"}, "é ok")
        (error,) = self.errors([{"name": "a", "size": 1, "metadata": {"a=b": "pg"}}])
        assert error.startswith("blockstore_volumes[0].metadata: the key 'a=b' is not 1-255 letters")
        (error,) = self.errors([{"name": "a", "size": 1, "metadata": {"k%d" % i: "v" * 200 for i in range(30)}}])
        assert error.startswith("blockstore_volumes[0].metadata: the description and metadata take ")

    @pytest.mark.parametrize("name", [None, "", "DB01", "db_01", "-x", "x" * 64, 7])
    def test_bad_name(self, name):
        item = {"size": "1GiB"} if name is None else {"name": name, "size": "1GiB"}
        (error,) = self.errors([item])
        assert error.startswith(f"blockstore_volumes[0].name: {name!r} is not a valid volume name")

    @pytest.mark.parametrize(("size", "fragment"), [
        ("ten", "'ten' is not a size"), ("10 XiB", "unknown unit"), (-1, "is negative"), (True, "is not a size"),
        (0, "0 is zero"), ("0GiB", "'0GiB' is zero"),
    ])
    def test_bad_size(self, size, fragment):
        (error,) = self.errors([{"name": "ok", "size": "1GiB"}, {"name": "a", "size": size}])
        assert error.startswith("blockstore_volumes[1].size: ")
        assert fragment in error

    def test_size_required_when_present(self):
        assert self.errors([{"name": "a"}]) == [
            "blockstore_volumes[0].size: missing; a present volume needs a size such as 10GiB"]
        assert plan([{"name": "a", "state": "absent"}], [])["volumes"][0]["action"] == "absent"

    def test_unknown_volume_type(self):
        assert self.errors([{"name": "a", "size": 1, "volume_type": "fsat"}]) == [
            ("blockstore_volumes[0].volume_type: 'fsat' is not a defined volume type; defined: bulk, fast, shared, "
             "thick")]
        assert self.errors([{"name": "a", "size": 1, "volume_type": "fast"}], None) == [
            "blockstore_volumes[0].volume_type: 'fast' is not a defined volume type; defined: none"]

    def test_duplicate_names(self):
        assert self.errors([{"name": "a", "size": 1}, {"name": "b", "size": 1}, {"name": "a", "state": "absent"}]) == [
            "blockstore_volumes[2].name: 'a' is already used by blockstore_volumes[0]"]

    def test_wrong_types(self):
        errors = self.errors([
            "db01",
            {"name": "a", "size": 1, "state": "gone"},
            {"name": "b", "size": 1, "force": "yes"},
            {"name": "c", "size": 1, "description": 5},
            {"name": "d", "size": 1, "description": None},
            {"name": "e", "size": 1, "availability_zone": 5},
            {"name": "f", "size": 1, "availability_zone": ["az1", ""]},
        ])
        assert errors == [
            "blockstore_volumes[0]: expected a dict with at least a name, got str",
            "blockstore_volumes[1].state: 'gone' is not one of present, absent, unmanaged",
            "blockstore_volumes[2].force: 'yes' is not a boolean",
            "blockstore_volumes[3].description: 5 is a number; quote it in YAML ('5') to make it a string, "
            "not a string",
            "blockstore_volumes[5].availability_zone: 5 is not a zone name or a non-empty list of zone names",
            "blockstore_volumes[6].availability_zone: ['az1', ''] is not a zone name or a non-empty list of zone names",
        ]
        assert self.errors({"name": "a"}) == ["blockstore_volumes: expected a list of volumes, got dict"]

    def test_attachments_shape(self):
        errors = self.errors([
            {"name": "a", "size": 1, "attachments": {"host": "app01"}},
            {"name": "b", "size": 1, "attachments": ["app01"]},
            {"name": "c", "size": 1, "attachments": [{"host": "app01", "lun": 1}]},
            {"name": "d", "size": 1, "attachments": [{"hostname": "app01"}]},
            {"name": "e", "size": 1, "volume_type": "shared", "attachments": [{"host": "x"}, {"host": "x"}]},
        ])
        assert errors == [
            "blockstore_volumes[0].attachments: expected a list of {host: name}, got dict",
            "blockstore_volumes[1].attachments[0]: expected a dict {host: name}, got 'app01'",
            "blockstore_volumes[2].attachments[0]: unknown key(s) lun; allowed: force, host, qos_cgroup, state",
            "blockstore_volumes[3].attachments[0]: unknown key(s) hostname; allowed: force, host, qos_cgroup, state",
            "blockstore_volumes[3].attachments[0].host: None is not a host name",
            "blockstore_volumes[4].attachments[1].host: 'x' is listed twice",
        ]

    def test_consumers(self):
        vols = [{"name": "a", "size": 1, "attachments": [{"host": "app01"}, ], },
                {"name": "b", "size": 1, "attachments": [{"host": "app09"}]}]
        assert self.errors(vols, consumers=["app01", "app02"]) == [
            "blockstore_volumes[1].attachments[0].host: 'app09' is not a consumer host; known: app01, app02"]
        assert len(plan(vols, [pool_facts()])["volumes"]) == 2  # without consumers, any host name

    def test_multiattach(self):
        two = [{"host": "app01"}, {"host": "app02"}]
        assert self.errors([{"name": "a", "size": 1, "volume_type": "bulk", "attachments": two}]) == [
            ("blockstore_volumes[0].attachments: 2 hosts (app01, app02), but volume type bulk does not allow "
             "multiattach; add the extra spec multiattach: \"<is> True\" to it, or set is_multiattach: true on the "
             "volume")]
        assert self.errors([{"name": "a", "size": 1, "attachments": two}]) == [
            ("blockstore_volumes[0].attachments: 2 hosts (app01, app02), but a volume without a volume type cannot be "
             "multiattached; use a type with the extra spec multiattach: \"<is> True\", or set is_multiattach: true "
             "on the volume")]
        assert self.errors([{"name": "a", "size": 1, "attachments": two}], default_volume_type="bulk") == [
            ("blockstore_volumes[0].attachments: 2 hosts (app01, app02), but volume type bulk does not allow "
             "multiattach; add the extra spec multiattach: \"<is> True\" to it, or set is_multiattach: true on the "
             "volume")]
        types = dict(TYPES, loose={"extra_specs": {"multiattach": "True"}})
        assert len(self.errors([{"name": "a", "size": 1, "volume_type": "loose", "attachments": two}], types)) == 1
        result = plan([{"name": "a", "size": 1, "volume_type": "shared", "attachments": two},
                       {"name": "b", "size": 1, "attachments": two}], [pool_facts()], TYPES,
                      default_volume_type="shared")
        assert [v["volume_type"] for v in result["volumes"]] == ["shared", "shared"]
        assert plan([{"name": "a", "size": 1, "volume_type": "bulk", "attachments": two[:1]}], [pool_facts()],
                    TYPES)["volumes"][0]["attachments"] == ["app01"]

    def test_all_problems_are_collected(self):
        errors = self.errors([{"name": "A", "size": "x"}, {"name": "b", "size": 1, "volume_type": "nope", "x": 1}])
        assert len(errors) == 4
        assert errors[0].startswith("blockstore_volumes[0].name")
        assert errors[1].startswith("blockstore_volumes[0].size")
        assert errors[2].startswith("blockstore_volumes[1]: unknown key(s) x")
        assert errors[3].startswith("blockstore_volumes[1].volume_type")

    def test_validation_comes_before_scheduling(self):
        err = schedule_error([{"name": "huge", "size": "1PiB"}, {"name": "bad name", "size": "1GiB"}], [pool_facts()])
        assert len(err.errors) == 1
        assert err.errors[0].startswith("blockstore_volumes[1].name: 'bad name' is not a valid volume name")

    def test_options(self):
        assert schedule_error([], [], TYPES, default_volume_type="gold").errors == [
            "blockstore_default_volume_type: 'gold' is not a defined volume type; defined: bulk, fast, shared, "
            "thick"]
        for bad in (True, "1", float("nan"), float("inf"), None):
            assert schedule_error([], [], weight_multiplier=bad).errors == [
                f"blockstore_capacity_weight_multiplier: {bad!r} is not a finite number"]
        assert schedule_error([], [], consumers="app01").errors == ["consumers: 'app01' is not a list of host names"]

    def test_error_type(self):
        assert issubclass(ScheduleError, ValueError)
        assert ScheduleError("one").errors == ["one"]
        assert str(ScheduleError(["one", "two"])) == "one\ntwo"


class TestVolumeTypeValidation:
    def test_valid(self):
        assert validate_volume_types(TYPES)["fast"] == {
            "extra_specs": {"thin_provisioning_support": "<is> True"}, "description": "thin, over-subscribed",
            "qos_specs": {}, "mutual_chap": None}
        plain = {"extra_specs": {}, "description": None, "qos_specs": {}, "mutual_chap": None}
        assert validate_volume_types({"plain": None}) == {"plain": plain}
        assert validate_volume_types(None) == {}

    def test_problems(self):
        with pytest.raises(ScheduleError) as excinfo:
            validate_volume_types({
                "bad name": {},
                "a": {"extra_specs": {"multiattach": True}, "qos": {}},
                "b": {"extra_specs": ["x"], "description": 3},
                "c": "fast",
            })
        assert excinfo.value.errors == [
            ("blockstore_volume_types: 'bad name' is not a valid volume type name; use letters, digits, '_', '.', "
             "'+' or '-'"),
            "blockstore_volume_types.a: unknown key(s) qos; allowed: description, extra_specs, mutual_chap, qos_specs",
            ("blockstore_volume_types.a.extra_specs.multiattach: True is not a string; quote it, for example "
             "\"<is> True\" for a boolean or \"== True\" for a number"),
            "blockstore_volume_types.b.extra_specs: expected a dict, got list",
            "blockstore_volume_types.b.description: 3 is not a string",
            "blockstore_volume_types.c: expected a dict with extra_specs and description, got str",
        ]
        with pytest.raises(ScheduleError, match="^blockstore_volume_types: expected a dict"):
            validate_volume_types(["fast"])

    def test_validate_requests_directly(self):
        (req,) = validate_requests([{"name": "a", "size": "1GiB", "availability_zone": "az1"}],
                                   validate_volume_types(TYPES))
        assert (req.name, req.size, req.state, req.availability_zones, req.attachments, req.field) == (
            "a", GiB, "present", ("az1",), [], "blockstore_volumes[0]")


class TestSizes:
    """A bare number is GiB (Cinder's API and openstack.cloud's volume module); units are kept."""

    @pytest.mark.parametrize(("size", "expected"), [
        (10, 10 * GiB), ("10", 10 * GiB), (1.5, 3 * GiB // 2), ("0.5", GiB // 2), ("10GiB", 10 * GiB),
        ("512MiB", 512 * MiB), ("1G", 10**9), ("1073741824B", GiB), ("10 gib", 10 * GiB)])
    def test_size(self, size, expected):
        (req,) = validate_requests([{"name": "a", "size": size}])
        assert req.size == expected

    def test_size_10_is_10_gib_in_the_plan(self):
        vol = plan([{"name": "a", "size": 10}], [pool_facts()])["volumes"][0]
        assert (vol["requested_size_bytes"], vol["size_bytes"]) == (10 * GiB, 10 * GiB)

    @pytest.mark.parametrize(("size", "fragment"), [
        ("-1GiB", "'-1GiB' is negative"), (-1, "-1 is negative"), (-0.5, "-0.5 is negative"),
        ("9" * 5000, "'" + "9" * 39 + "... (5000 characters) is too long to be a size"),
        (10**30, "is more than 8 EiB, the largest size supported"),
        ("99999999999999999999GiB", "is more than 8 EiB"),
    ], ids=["negative-unit", "negative-int", "negative-float", "5000-digits", "10**30", "too-big-unit"])
    def test_bad_sizes_fail_cleanly(self, size, fragment):
        with pytest.raises(ScheduleError) as excinfo:
            validate_requests([{"name": "a", "size": size}])
        (error,) = excinfo.value.errors
        assert error.startswith("blockstore_volumes[0].size: ")
        assert fragment in error
        assert len(error) < 250


class TestZones:
    class Req:
        field = "blockstore_volumes[0]"

        def __init__(self, zones=None):
            self.availability_zones = zones

    KNOWN = {"az1", "az2", "az3"}

    @pytest.mark.parametrize(("spec", "zones"), [
        (None, None), ("az1", ["az1"]), ("az1,az2", ["az1", "az2"]), (" az1 , az2 ,", ["az1", "az2"]),
        ("", [])])
    def test_type_availability_zones(self, spec, zones):
        specs = {} if spec is None else {"RESKEY:availability_zones": spec}
        assert type_availability_zones(specs) == zones

    def test_resolve(self):
        gold = {"RESKEY:availability_zones": "az1,az3,az9"}
        assert resolve_zones(self.Req(), None, {}, None, self.KNOWN) == (None, None)
        assert resolve_zones(self.Req(), None, {}, "az2", self.KNOWN) == (("az2",), None)
        assert resolve_zones(self.Req(("az3",)), None, {}, "az2", self.KNOWN) == (("az3",), None)
        # the type's zones that pools report; the default zone does not apply to a type with zones
        assert resolve_zones(self.Req(), "gold", gold, "az2", self.KNOWN) == (("az1", "az3"), None)
        assert resolve_zones(self.Req(("az3",)), "gold", gold, None, self.KNOWN) == (("az3",), None)
        zones, error = resolve_zones(self.Req(("az2",)), "gold", gold, None, self.KNOWN)
        assert zones is None and "az2 is not a zone volume type gold allows" in error
        zones, error = resolve_zones(self.Req(), "none", {"RESKEY:availability_zones": "x"}, None, self.KNOWN)
        assert zones is None and "no pool reports any of them" in error

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CapabilitiesFilter (filters/capabilities_filter.py): Cinder's own cases
(cinder/tests/unit/scheduler/test_host_filters.py, ``BasicFiltersTestCase.test_capability_filter_*``), then this
project's."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.capabilities_filter import (
    CapabilitiesFilter,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.host_manager import PoolState
from scheduler_helpers import GiB, spec, state

# (test name, capabilities reported, extra specs, passes). Identical results. The cases with a None extra spec
# are checked against the filter directly: the inventory's validation refuses a None extra spec value.
CINDER_CASES = [
    ("passes_extra_specs_simple", {"opt1": "1", "opt2": "2"}, {"opt1": "1", "opt2": "2"}, True),
    ("fails_extra_specs_simple", {"opt1": "1", "opt2": "2"}, {"opt1": "1", "opt2": "222"}, False),
    ("passes_extra_specs_complex", {"opt1": 10, "opt2": 5}, {"opt1": ">= 2", "opt2": "<= 8"}, True),
    ("fails_extra_specs_complex", {"opt1": 10, "opt2": 5}, {"opt1": ">= 2", "opt2": ">= 8"}, False),
    ("passes_extra_specs_list_simple", {"opt1": ["1", "2"], "opt2": "2"}, {"opt1": "1", "opt2": "2"}, True),
    ("passes_extra_specs_list_complex-is-true", {"opt1": [True, False], "opt2": ["1", "2"]},
     {"opt1": "<is> True", "opt2": "<= 8"}, True),
    ("passes_extra_specs_list_complex-is-false", {"opt1": [True, False], "opt2": ["1", "2"]},
     {"opt1": "<is> False", "opt2": "<= 8"}, True),
    ("fails_extra_specs_list_simple", {"opt1": ["1", "2"], "opt2": ["2"]}, {"opt1": "3", "opt2": "2"}, False),
    ("fails_extra_specs_list_complex", {"opt1": [True, False], "opt2": ["1", "2"]},
     {"opt1": "fake", "opt2": "<= 8"}, False),
    ("passes_scope_extra_specs", {"scope_lv1": {"opt1": 10}}, {"capabilities:scope_lv1:opt1": ">= 2"}, True),
    ("passes_fakescope_extra_specs", {"scope_lv1": {"opt1": 10}, "opt2": 5},
     {"scope_lv1:opt1": "= 2", "opt2": ">= 3"}, True),
    ("fails_scope_extra_specs", {"scope_lv1": {"opt1": 10}}, {"capabilities:scope_lv1:opt1": "<= 2"}, False),
    ("passes_multi_level_scope_extra_specs", {"scope_lv0": {"scope_lv1": {"scope_lv2": {"opt1": 10}}}},
     {"capabilities:scope_lv0:scope_lv1:scope_lv2:opt1": ">= 2"}, True),
    ("fails_unenough_level_scope_extra_specs", {"scope_lv0": {"scope_lv1": None}},
     {"capabilities:scope_lv0:scope_lv1:scope_lv2:opt1": ">= 2"}, False),
    ("fails_wrong_scope_extra_specs", {"scope_lv0": {"opt1": 10}}, {"capabilities:scope_lv1:opt1": ">= 2"}, False),
    ("passes_none_extra_specs", {"scope_lv0": {"opt1": None}}, {"capabilities:scope_lv0:opt1": None}, True),
    ("fails_none_extra_specs", {"scope_lv0": {"opt1": 10}}, {"capabilities:scope_lv0:opt1": None}, False),
    ("fails_none_caps", {"scope_lv0": {"opt1": None}}, {"capabilities:scope_lv0:opt1": "foo"}, False),
    ("passes_multi_level_scope_extra_specs_list",
     {"scope_lv0": {"scope_lv1": {"scope_lv2": {"opt1": [True, False]}}}},
     {"capabilities:scope_lv0:scope_lv1:scope_lv2:opt1": "<is> True"}, True),
    ("fails_multi_level_scope_extra_specs_list",
     {"scope_lv0": {"scope_lv1": {"scope_lv2": {"opt1": [True, False], "opt2": ["1", "2"]}}}},
     {"capabilities:scope_lv0:scope_lv1:scope_lv2:opt1": "<is> True",
      "capabilities:scope_lv0:scope_lv1:scope_lv2:opt2": "3"}, False),
    ("fails_wrong_scope_extra_specs_list", {"scope_lv0": {"opt1": [True, False]}},
     {"capabilities:scope_lv1:opt1": "<is> True"}, False),
]


@pytest.mark.parametrize(("name", "caps", "especs", "passes"), CINDER_CASES, ids=[c[0] for c in CINDER_CASES])
def test_cinder_capabilities_filter_cases(name, caps, especs, passes):
    capabilities = {"enabled": True}
    capabilities.update(caps)
    pool = PoolState({"id": "host1@b", "host": "host1", "backend": "b", "total_bytes": 1024 * GiB,
                      "free_bytes": 1024 * GiB, "capabilities": capabilities})
    ok, reason = CapabilitiesFilter.passes(pool, spec(GiB, volume_type="fake_type", extra_specs=especs))
    assert ok is passes, reason


class TestProject:
    def test_no_extra_specs_passes(self):
        assert CapabilitiesFilter.passes(state(), spec(GiB)) == (True, "")
        assert CapabilitiesFilter.passes(state(), spec(GiB, extra_specs={})) == (True, "")

    def test_unscoped_key(self):
        pool = state(pid="stor1@lvm-thin")
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"volume_backend_name": "lvm-thin"}))[0]
        ok, reason = CapabilitiesFilter.passes(pool, spec(GiB, volume_type="bulk",
                                                          extra_specs={"volume_backend_name": "lvm"}))
        assert not ok
        assert reason == "CapabilitiesFilter: volume_backend_name: pool reports 'lvm-thin', type bulk wants 'lvm'"

    def test_capabilities_scope(self):
        pool = state(thin=True)
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={
            "capabilities:thin_provisioning_support": "<is> True"}))[0]
        assert not CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={
            "capabilities:thin_provisioning_support": "<is> False"}))[0]

    def test_other_scopes_are_ignored(self):
        specs = {"provisioning:type": "thick", "qos:read_iops_sec": "1000", "vendor:feature": "<is> True",
                 "volume_backend_name": "lvm"}
        assert CapabilitiesFilter.passes(state(), spec(GiB, extra_specs=specs)) == (True, "")

    def test_missing_capability_fails(self):
        ok, reason = CapabilitiesFilter.passes(state(), spec(GiB, volume_type="gold",
                                                             extra_specs={"compression": "<is> True"}))
        assert not ok
        assert reason == ("CapabilitiesFilter: pool does not report capability 'compression' "
                          "(type gold wants '<is> True')")
        assert not CapabilitiesFilter.passes(state(), spec(GiB, extra_specs={"capabilities:nope": "x"}))[0]

    def test_nested_capabilities(self):
        pool = state(tier={"media": "ssd", "level": 2})
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"capabilities:tier:media": "ssd"}))[0]
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"capabilities:tier:level": ">= 2"}))[0]
        assert not CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"capabilities:tier:media": "hdd"}))[0]
        ok, reason = CapabilitiesFilter.passes(state(), spec(GiB, extra_specs={"capabilities:storage_protocol:x": "y"}))
        assert not ok
        assert "does not report capability 'storage_protocol:x'" in reason

    def test_list_capability_matches_any_element(self):
        pool = state(storage_protocol=["iSCSI", "iSER"])
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"storage_protocol": "iSER"}))[0]
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"storage_protocol": "<in> SC"}))[0]
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"storage_protocol": "<or> FC <or> iSCSI"}))[0]
        assert not CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"storage_protocol": "FC"}))[0]

    def test_every_spec_must_match(self):
        pool = state(pid="stor1@lvm-thin", thin=True)
        specs = {"volume_backend_name": "lvm-thin", "thin_provisioning_support": "<is> True",
                 "multiattach": "<is> False"}
        ok, reason = CapabilitiesFilter.passes(pool, spec(GiB, extra_specs=specs))
        assert not ok
        assert reason.startswith("CapabilitiesFilter: multiattach: pool reports True")

    def test_plain_value_against_a_boolean_capability_explains_the_operator(self):
        ok, reason = CapabilitiesFilter.passes(state(), spec(GiB, volume_type="shared",
                                                             extra_specs={"multiattach": "True"}))
        assert not ok
        assert reason == ("CapabilitiesFilter: multiattach: pool reports True, type shared wants 'True'; without an "
                          "operator values are compared as they are: use '<is> True' or '== True'")

    def test_numeric_operators_on_capabilities(self):
        pool = state(reserved=10, max_iops=5000)
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"max_iops": "= 4000"}))[0]
        assert not CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"max_iops": "= 6000"}))[0]
        assert CapabilitiesFilter.passes(pool, spec(GiB, extra_specs={"reserved_percentage": "<= 10"}))[0]

    def test_reserved_type_zone_key_is_not_a_capability(self):
        # RESKEY:availability_zones is a scoped key: the CapabilitiesFilter ignores it (the zones are applied by
        # the request, see request_spec.resolve_zones)
        specs = {"RESKEY:availability_zones": "az1, az2"}
        assert CapabilitiesFilter.passes(state(az="az9"), spec(GiB, extra_specs=specs)) == (True, "")

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: schedule
short_description: Plan where each inventory volume lives, Cinder-scheduler style
version_added: 0.1.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - The same plan as the P(ember.blockstore.schedule#filter) filter, with every input given by name.
  - Validates O(volumes) as a whole, keeps existing volumes on their pool, places new ones (largest first, then
    by name) with Cinder's AvailabilityZoneFilter, CapacityFilter and CapabilitiesFilter and its
    CapacityWeigher, and fails before any change when a volume fits nowhere. A bare number as a size is GiB.
  - Takes no terms.
options:
  volumes:
    description: The volumes the inventory asks for (C(blockstore_volumes)); see the filter for the keys.
    type: list
    elements: dict
    required: true
  pools:
    description:
      - Pool facts, one dict per backend per storage host, as the M(ember.blockstore.backend_info) module returns
        them in RV(ember.blockstore.backend_info#module:pools).
    type: list
    elements: dict
    required: true
  volume_types:
    description:
      - Volume types (C(blockstore_volume_types)), a dict of type name to a dict with C(extra_specs) and
        C(description).
    type: dict
extends_documentation_fragment:
  - ember.blockstore.schedule
"""

EXAMPLES = r"""
# pool_facts: registered from ember.blockstore.backend_info on each storage node.
- name: Plan the volumes over the pools gathered from the storage nodes
  ansible.builtin.set_fact:
    blockstore_plan: >-
      {{ lookup('ember.blockstore.schedule', volumes=blockstore_volumes, volume_types=blockstore_volume_types,
                pools=groups['blockstore_storage'] | map('extract', hostvars)
                      | map(attribute='pool_facts') | map(attribute='pools') | flatten) }}
  run_once: true
"""

RETURN = r"""
_raw:
  description:
    - A one-element list holding the plan, a dict with C(volumes) (one entry per requested volume with its
      C(action) and pool), C(unmanaged) and C(pools); see the P(ember.blockstore.schedule#filter) filter.
    - C(lookup) returns the plan itself; C(query) returns the list.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        if terms:
            raise AnsibleLookupError("ember.blockstore.schedule takes no terms; pass volumes=, pools=, ... by name")
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [plan(self.get_option("volumes"), self.get_option("pools"),
                         volume_types=self.get_option("volume_types"),
                         weight_multiplier=self.get_option("weight_multiplier"),
                         default_volume_type=self.get_option("default_volume_type"),
                         consumers=self.get_option("consumers"),
                         default_availability_zone=self.get_option("default_availability_zone"))]
        except ScheduleError as exc:
            raise AnsibleLookupError(str(exc)) from exc

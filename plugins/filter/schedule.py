# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: schedule
short_description: Plan where each inventory volume lives, Cinder-scheduler style
version_added: 0.1.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - Validates O(volumes) (the inventory's C(blockstore_volumes)) as a whole, keeps volumes that already exist where
    they are, and places new ones on the pools given as input, as Cinder's filter scheduler does.
  - Filters run in Cinder's default order, AvailabilityZoneFilter, CapacityFilter, CapabilitiesFilter, then the
    CapacityWeigher picks the pool with the most virtual free capacity (or the least, with a negative
    O(weight_multiplier)); ties go to the lowest pool id. Capacity is computed as in Cinder 21.0 and later, so a
    thin pool takes up to C(max_over_subscription_ratio) times its capacity after the reserve.
  - New volumes are placed largest first, then by name, never in the order O(volumes) lists them, so the plan
    does not depend on that order. Each placement consumes capacity before the next one.
  - Fails, before anything is changed, when a volume's name clashes with an LV or tgt target on a storage node
    that is not ember.blockstore's (reported by C(backend_info) as C(clashes)), naming host, VG and LV (or the
    target IQN).
  - Fails, before anything is changed, when the input is invalid, a volume would shrink, an in-use volume would be
    deleted without its C(force) key, or volumes fit nowhere (C(No valid backend for <name>:) with the filters
    that rejected the pools; one message under 8 KiB however many volumes and pools).
  - A bare number as a size is GiB, as in Cinder (C(10) is 10 GiB); units are accepted, C(1G) and C(1GB) are 10^9
    bytes, C(1GiB) is 2^30 bytes.
  - See docs/scheduler.md for the Cinder release followed and the differences.
positional: _input, volumes
options:
  _input:
    description:
      - Pool facts, one dict per backend per storage host, as the M(ember.blockstore.backend_info) module returns
        them in RV(ember.blockstore.backend_info#module:pools).
    type: list
    elements: dict
    required: true
  volumes:
    description:
      - The volumes the inventory asks for (C(blockstore_volumes)).
      - Each item has C(name) (required), C(size) (required when present), C(volume_type), C(availability_zone)
        (a zone or a list of zones), C(state) (V(present) or V(absent)), C(attachments) (a list of dicts with a
        C(host) key), C(force) and C(description). Other keys (also C(metadata), not stored yet) are errors.
    type: list
    elements: dict
    required: true
  volume_types:
    description:
      - Volume types (C(blockstore_volume_types)), a dict of type name to a dict with C(extra_specs) and
        C(description).
      - Extra specs use Cinder's operators, for example V(<is> True) for the capability
        C(thin_provisioning_support).
    type: dict
extends_documentation_fragment:
  - ember.blockstore.schedule
"""

EXAMPLES = r"""
# pool_facts: registered from ember.blockstore.backend_info on each storage node.
- name: Plan the volumes over the pools gathered from the storage nodes
  ansible.builtin.set_fact:
    blockstore_plan: >-
      {{ groups['blockstore_storage'] | map('extract', hostvars) | map(attribute='pool_facts')
         | map(attribute='pools') | flatten
         | ember.blockstore.schedule(blockstore_volumes, volume_types=blockstore_volume_types,
                                     consumers=groups['blockstore_consumers']) }}
  run_once: true
  delegate_to: localhost
  delegate_facts: true

- name: Volumes the plan creates on this storage node
  ansible.builtin.debug:
    msg: "{{ hostvars['localhost'].blockstore_plan.volumes | selectattr('host', 'equalto', inventory_hostname)
             | selectattr('action', 'equalto', 'create') | map(attribute='name') }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    volumes:
      description:
        - One entry per requested volume, in inventory order, with C(name), C(state), C(action) (V(create),
          V(extend), V(none), V(delete) or V(absent)), C(size_bytes) (the size the volume will have, rounded up to
          the pool's extent; null for absent), C(requested_size_bytes), C(current_size_bytes) (null when new),
          C(volume_type), C(extra_specs), C(availability_zone), C(host), C(backend), C(pool_id), C(driver), C(vg),
          C(thin_pool), C(attachments) (host names), C(force), C(description) and C(reason).
        - C(availability_zone) is the zone the volume got (its pool's).
      type: list
      elements: dict
    unmanaged:
      description: Volumes found on the pools but not in the inventory; they are never touched.
      type: list
      elements: dict
    pools:
      description: Each pool's C(id), C(free_bytes), C(provisioned_bytes) and C(allocated_bytes) after the plan.
      type: list
      elements: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.plugin_utils.clashes import name_clashes
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan


def schedule(pools, volumes, volume_types=None, weight_multiplier=1.0, default_volume_type=None, consumers=None,
             default_availability_zone=None):
    """Return the plan of ``volumes`` over ``pools``; see :func:`..plugin_utils.scheduler.filter_scheduler.plan`.
    Volumes whose names something unmanaged holds on a storage node (``backend_info`` clashes) are refused
    first."""
    clashes = name_clashes(volumes, pools)
    if clashes:
        raise AnsibleFilterError("\n".join(clashes))
    try:
        return plan(volumes, pools, volume_types=volume_types, weight_multiplier=weight_multiplier,
                    default_volume_type=default_volume_type, consumers=consumers,
                    default_availability_zone=default_availability_zone)
    except ScheduleError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """ember.blockstore scheduling filters."""

    def filters(self):
        return {"schedule": schedule}

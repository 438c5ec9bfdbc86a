# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pool state during planning, as Cinder's ``BackendState``/``PoolState`` (cinder/scheduler/host_manager.py at
master ab09bc39: ``update_from_volume_capability`` l. 434-443, ``consume_from_volume`` l. 337-354).

Imports only leaf files (:mod:`.sched_utils`, :mod:`.exception`, :mod:`.filters.extra_specs_ops`), never the
filters or the weigher: the values the CapacityFilter and the CapacityWeigher read are computed here from the
shared capacity arithmetic, so there is no import loop between pool state and the filters.
"""

from __future__ import annotations

import math

from ansible_collections.ember.blockstore.plugins.module_utils._naming import type_name
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.extra_specs_ops import (
    bool_from_string,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.sched_utils import (
    INFINITE_UNKNOWN,
    calculate_max_over_subscription_ratio,
    reserved_capacity,
    total_available_capacity,
)

__all__ = ["POOLS_FIELD", "PoolState", "load_pools"]

POOLS_FIELD = "pools"
INF = math.inf


class PoolState:
    """One backend on one storage host, with the capacity it has left during planning.

    Static values (capabilities, zone, reserve, over-subscription ratio and the capacity it allows) are computed
    once. ``room[thin]`` is the largest request in bytes the CapacityFilter lets through (``inf``: any size;
    ``-inf``: none) and ``virtual_free[thin]`` the CapacityWeigher's value (``None`` for infinite/unknown
    capacity), for a thick (0) and a thin (1) request; both come from
    :func:`.sched_utils.calculate_virtual_free_capacity`'s arithmetic and are recomputed by :meth:`consume`.
    For a pool with finite capacity that passes at all, ``room[thin] == virtual_free[thin]``: the filter and the
    weigher read the same number, as in Cinder since 21.0.0.
    """

    __slots__ = (
        "allocated",
        "availability_zone",
        "backend",
        "capabilities",
        "driver",
        "extent",
        "facts",
        "finite",
        "free",
        "host",
        "id",
        "indexes",
        "mosr",
        "provisioned",
        "reserved_bytes",
        "reserved_percentage",
        "room",
        "thick_capacity",
        "thin_capacity",
        "thin_pool",
        "thin_support",
        "total",
        "vg",
        "virtual_free",
        "volumes",
    )

    def __init__(self, facts, field="pool"):
        if not isinstance(facts, dict):
            raise ScheduleError(f"{field}: expected a dict of pool facts, got {type_name(facts)}")
        errors = []

        def need_str(key, required=True):
            value = facts.get(key)
            if value is None and not required:
                return None
            if not isinstance(value, str) or not value:
                errors.append(f"{field}.{key}: {value!r} is not a non-empty string")
                return None
            return str(value)

        self.id = need_str("id")
        self.host = need_str("host")
        self.backend = need_str("backend")
        self.driver = need_str("driver", required=False)
        self.vg = need_str("vg", required=False)
        self.thin_pool = need_str("thin_pool", required=False)
        self.extent = self._bytes(facts, "extent_size_bytes", field, errors, default=None)
        self.total = self._bytes(facts, "total_bytes", field, errors, special=True)
        self.free = self._bytes(facts, "free_bytes", field, errors, special=True, default=None)
        self.allocated = self._bytes(facts, "allocated_bytes", field, errors, default=0)
        # host_manager.py update_from_volume_capability: provisioned_capacity_gb defaults to allocated.
        self.provisioned = self._bytes(facts, "provisioned_bytes", field, errors, default=self.allocated)
        caps = facts.get("capabilities")
        if caps is None:
            caps = {}
        if not isinstance(caps, dict):
            errors.append(f"{field}.capabilities: expected a dict, got {type_name(caps)}")
            caps = {}
        self.capabilities = caps
        az = caps.get("availability_zone", facts.get("availability_zone"))
        self.availability_zone = None if az is None else str(az)
        pct = caps.get("reserved_percentage", 0) or 0
        if isinstance(pct, bool) or not isinstance(pct, (int, float)) or not 0 <= pct <= 100:
            errors.append(f"{field}.capabilities.reserved_percentage: {pct!r} is not a number from 0 to 100")
            pct = 0
        self.reserved_percentage = pct
        self.thin_support = bool_from_string(caps.get("thin_provisioning_support", False))
        mosr = caps.get("max_over_subscription_ratio")
        self.mosr = 1.0
        if not errors:
            try:
                self.mosr = calculate_max_over_subscription_ratio(mosr, self.thin_support, self.total, self.free,
                                                                  self.provisioned)
            except (TypeError, ValueError):
                errors.append(f"{field}.capabilities.max_over_subscription_ratio: {mosr!r} is not a number or 'auto'")
        if self.total in INFINITE_UNKNOWN or self.total is None:
            self.reserved_bytes = None
            self.thick_capacity = self.thin_capacity = None
        else:
            self.reserved_bytes = reserved_capacity(self.total, pct)
            self.thick_capacity = total_available_capacity(self.total, self.reserved_bytes, 1, False)
            self.thin_capacity = total_available_capacity(self.total, self.reserved_bytes, self.mosr, True)
        volumes = facts.get("volumes") or []
        if not isinstance(volumes, list):
            errors.append(f"{field}.volumes: expected a list, got {type_name(volumes)}")
            volumes = []
        self.volumes = []
        for i, vol in enumerate(volumes):
            vfield = f"{field}.volumes[{i}]"
            if not isinstance(vol, dict) or not isinstance(vol.get("name"), str):
                errors.append(f"{vfield}: expected a dict with a string name, got {vol!r}"[:400])
                continue
            size = self._bytes(vol, "size_bytes", vfield, errors)
            vtype = vol.get("volume_type")
            attached = vol.get("attached_to") or []
            if not isinstance(attached, list):
                attached = [attached]
            snapshots = vol.get("managed_snapshots") or []
            if not isinstance(snapshots, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                                          for s in snapshots):
                errors.append(f"{vfield}.managed_snapshots: expected a list of dicts with a string name"[:400])
                snapshots = []
            self.volumes.append({"name": str(vol["name"]), "size_bytes": size,
                                 "volume_type": None if vtype is None else str(vtype),
                                 "attached_to": [str(a) for a in attached],
                                 "snapshots": {str(s["name"]): dict(s) for s in snapshots},
                                 "description": vol.get("description"),
                                 "metadata": dict(vol.get("metadata") or {}),
                                 "migrated_from": vol.get("migrated_from"),
                                 # the LV's name (volume-<name>, or its own for a volume managed without rename)
                                 "lv_name": vol.get("lv_name") if isinstance(vol.get("lv_name"), str) else None})
        if errors:
            raise ScheduleError(errors)
        self.facts = facts  # as reported (the migration planner reads its migration LVs and wipe settings)
        self.indexes = []  # the planner's per-group indexes this pool is in (see filter_scheduler)
        # free and total are numbers and total > 0: refresh() may take its short path
        self.finite = (isinstance(self.free, int) and isinstance(self.total, int) and self.total > 0)
        self.refresh()

    @staticmethod
    def _bytes(facts, key, field, errors, special=False, default=...):
        value = facts.get(key, default)
        if value is ... or (value is None and default is ...):
            errors.append(f"{field}.{key}: missing")
            return None
        if value is None or (special and value in INFINITE_UNKNOWN):
            return value
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(f"{field}.{key}: {value!r} is not an integer number of bytes"[:400])
            return None
        return value

    def _room(self, thin):
        """The CapacityFilter's decision as the largest size that passes (capacity_filter.py, in its order)."""
        free, total = self.free, self.total
        if free is None:
            return -INF  # "Free capacity not set: volume node info collection broken."
        if free in INFINITE_UNKNOWN:
            return INF
        if total in INFINITE_UNKNOWN:
            return INF if not self.reserved_percentage else -INF
        if total <= 0:
            return -INF
        if thin and self.thin_support:
            if self.mosr < 1:
                return -INF
            return self.thin_capacity - self.provisioned
        return min(free, self.thick_capacity - self.provisioned)

    def _virtual_free(self, thin):
        """The CapacityWeigher's value (weights/capacity.py ``_weigh_object``); None for infinite/unknown."""
        free, total = self.free, self.total
        if free is None or free in INFINITE_UNKNOWN or total in INFINITE_UNKNOWN:
            return None
        if thin and self.thin_support:
            return self.thin_capacity - self.provisioned
        return min(free, self.thick_capacity - self.provisioned)

    def refresh(self):
        """Recompute the filter and weigher values that depend on free/provisioned capacity."""
        if self.finite:  # the common case, inlined (this runs after every placement)
            thick = min(self.free, self.thick_capacity - self.provisioned)
            if not self.thin_support:
                self.room = self.virtual_free = (thick, thick)
                return
            thin = self.thin_capacity - self.provisioned
            self.virtual_free = (thick, thin)
            self.room = (thick, thin if self.mosr >= 1 else -INF)
            return
        self.room = (self._room(False), self._room(True))
        self.virtual_free = (self._virtual_free(False), self._virtual_free(True))

    def consume(self, size):
        """Account for ``size`` more bytes placed here, as Cinder's ``BackendState.consume_from_volume``
        (host_manager.py): allocated and provisioned grow, free shrinks unless infinite/unknown (by the full
        size, thin or not; the thin path does not read it). The planner's indexes are told."""
        before = self.room
        self.allocated += size
        self.provisioned += size
        if self.free is not None and self.free not in INFINITE_UNKNOWN:
            self.free -= size
        self.refresh()
        for index in self.indexes:
            index.moved(self, before)

    def usage(self):
        return {"id": self.id, "free_bytes": self.free, "provisioned_bytes": self.provisioned,
                "allocated_bytes": self.allocated}


def load_pools(pools):
    """Validate a list of ``backend_info`` pool dicts; return :class:`PoolState` objects sorted by id."""
    if pools is None:
        pools = []
    if not isinstance(pools, (list, tuple)):
        raise ScheduleError(f"{POOLS_FIELD}: expected a list of pool facts, got {type_name(pools)}")
    states, errors, seen = [], [], {}
    for i, facts in enumerate(pools):
        field = f"{POOLS_FIELD}[{i}]"
        try:
            state = PoolState(facts, field)
        except ScheduleError as exc:
            errors.extend(exc.errors)
            continue
        if state.id in seen:
            errors.append(f"{field}.id: {state.id!r} is also the id of {seen[state.id]}")
            continue
        seen[state.id] = field
        states.append(state)
    if errors:
        raise ScheduleError(errors)
    states.sort(key=lambda p: p.id)
    return states

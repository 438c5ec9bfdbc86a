# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The planner: which pool holds each volume of the inventory, and what must change.

It follows Cinder's filter scheduler (``cinder/scheduler/filter_scheduler.py``):

1. validate the whole request list (:mod:`.request_spec`);
2. keep existing volumes where they are (sticky) and check only an extend's growth (CapacityFilter with
   ``new_size``);
3. place each new volume by running the filters :class:`AvailabilityZoneFilter`, :class:`CapacityFilter` and
   :class:`CapabilitiesFilter` (Cinder's default ``scheduler_default_filters``, in that order) and then the
   :class:`CapacityWeigher`; the chosen pool's state is updated as in Cinder's
   ``BackendState.consume_from_volume`` before the next volume is placed;
4. fail the whole plan, before any change, when a volume fits nowhere (one bounded message for all of them,
   see :mod:`.exception`).

Deliberate difference: Cinder places requests in the order they arrive. A declarative plan must not depend on
the order a list was written in, so new volumes are placed in a fixed order that does not come from the list:
volumes the placement ledger pins first (by name), then the others largest first, then by name. Existing
volumes are checked by name. Pools are considered in id order and weight ties go to the lowest id.
The output ``volumes`` list keeps the inventory's order.
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from heapq import merge
from itertools import islice

from ansible_collections.ember.blockstore.plugins.module_utils._size import format_size, round_up
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import (
    FEW_POOLS,
    FULL_VOLUMES,
    SAMPLES,
    NoValidBackendReport,
    Rejection,
    ScheduleError,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.availability_zone_filter import (
    AvailabilityZoneFilter,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.capabilities_filter import (
    CapabilitiesFilter,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.capacity_filter import (
    CapacityFilter,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.host_manager import load_pools
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.request_spec import (
    RequestSpec,
    check_options,
    multiattach_error,
    resolve_zones,
    type_availability_zones,
    validate_requests,
    validate_volume_types,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.weights.capacity import CapacityWeigher

__all__ = ["FILTERS", "pin_matches", "placement_order", "plan"]

# Cinder's default scheduler_default_filters, in order (cinder/scheduler/host_manager.py, HostManager)
FILTERS = (AvailabilityZoneFilter, CapacityFilter, CapabilitiesFilter)
INF = math.inf
_MIXED = object()


class _Group:
    """The pools that pass the filters that do not depend on capacity (AvailabilityZoneFilter and
    CapabilitiesFilter) for one (volume type, zones), in id order, and an index of their capacity.

    When the candidates share one extent size (and the weigher is not switched off), ``keys`` holds
    ``(room, pool id)`` of every candidate with finite capacity, sorted: since ``room`` is both what the
    CapacityFilter compares the size with and the CapacityWeigher's value, the winner is found by bisection
    instead of by filtering and weighing every pool (the same choice; see :meth:`_Planner.place`). Pools with
    infinite/unknown capacity are kept apart (they pass any size and weigh least); pools that refuse any size
    are left out. :meth:`moved` keeps ``keys`` sorted after a pool's :meth:`PoolState.consume`.
    """

    __slots__ = ("az_fail", "by_id", "candidates", "caps_fail", "extent", "infinite", "keys", "thin")

    def __init__(self, pools, spec, indexed):
        self.thin = 1 if spec.thin else 0
        self.az_fail, self.caps_fail, self.candidates = [], [], []
        for pool in pools:
            if AvailabilityZoneFilter.explain(pool, spec) is not None:
                self.az_fail.append(pool)
            elif CapabilitiesFilter.explain(pool, spec) is not None:
                self.caps_fail.append(pool)
            else:
                self.candidates.append(pool)
        extents = {p.extent for p in self.candidates}
        self.extent = extents.pop() if len(extents) == 1 else _MIXED
        self.keys = self.infinite = self.by_id = None
        if indexed and self.extent is not _MIXED:
            thin = self.thin
            self.by_id = {p.id: p for p in self.candidates}
            self.infinite = [p for p in self.candidates if p.room[thin] == INF]
            finite = [p for p in self.candidates if -INF < p.room[thin] < INF]
            self.keys = sorted((p.room[thin], p.id) for p in finite)
            for pool in finite:
                pool.indexes.append(self)

    def moved(self, pool, before):
        old, new = before[self.thin], pool.room[self.thin]
        if old != new:
            keys = self.keys
            del keys[bisect_left(keys, (old, pool.id))]
            insort(keys, (new, pool.id))


def placement_order(new):
    """The order new volumes are placed in: pinned ones first by name, then largest first, then by name
    (``new`` is a list of ``(pinned, request)``); never the inventory's order."""
    return sorted(new, key=lambda item: (not item[0], -item[1].size, item[1].name))


class _Planner:
    """State of one planning run; see :func:`plan`."""

    def __init__(self, pools, volume_types, multiplier):
        self.pools = pools
        self.types = volume_types
        self.multiplier = float(multiplier)
        self.errors = []
        self.report = NoValidBackendReport(flt.name for flt in FILTERS)
        self.groups = {}  # (volume type, zones) -> _Group
        self.existing = {}  # volume name -> [(pool, volume facts)]
        self.zones = {pool.availability_zone for pool in pools if pool.availability_zone is not None}
        for pool in pools:
            for vol in pool.volumes:
                self.existing.setdefault(vol["name"], []).append((pool, vol))

    def extra_specs(self, volume_type):
        return self.types.get(volume_type, {}).get("extra_specs", {}) if volume_type else {}

    def spec(self, req, volume_type, size, zones=...):
        return RequestSpec(name=req.name, size=size,
                           availability_zones=req.availability_zones if zones is ... else zones,
                           volume_type=volume_type, extra_specs=self.extra_specs(volume_type))

    def group(self, spec):
        key = (spec.volume_type, spec.availability_zones)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group(self.pools, spec, indexed=self.multiplier != 0)
        return group

    def place(self, spec):
        """Choose a pool for a new volume (filters, then weigher; ties by pool id) and consume from it."""
        group = self.group(spec)
        thin = group.thin
        if group.keys is not None:
            pool, weight, others = self._place_indexed(group, round_up(spec.size, group.extent))
        else:
            pool, weight, others = self._place_linear(group, spec.size, thin)
        if pool is None:
            self.reject(spec, group)
            return None, None
        vfree = pool.virtual_free[thin]
        against = f"over {others} other pool{'' if others == 1 else 's'}" if others else "the only pool that passed"
        reason = (f"placed: weight {weight:.2f} (virtual free {'unknown' if vfree is None else format_size(vfree)}) "
                  f"{against}")
        pool.consume(round_up(spec.size, pool.extent))
        return pool, reason

    def _place_indexed(self, group, need):
        """The winner by bisection over the sorted ``(room, id)`` keys (every candidate has the same extent, so
        one rounded size). Spreading: the largest room (the lowest id among equals) wins if it is at least
        ``need``; stacking: the smallest room that is at least ``need``. Pools with infinite/unknown capacity
        weigh least either way, so they win only when no finite pool passes (the lowest id of them)."""
        keys, infinite = group.keys, group.infinite
        first = bisect_left(keys, (need, ""))
        passing = len(keys) - first
        if passing:
            if self.multiplier > 0:
                top = keys[-1][0]
                winner = keys[bisect_left(keys, (top, ""))]
                weight = self.multiplier if (infinite or keys[first][0] != top) else 0.0
            else:
                winner = keys[first]
                weight = 0.0
            return group.by_id[winner[1]], weight, passing + len(infinite) - 1
        if infinite:
            return infinite[0], 0.0, len(infinite) - 1
        return None, None, None

    def _place_linear(self, group, size, thin):
        """Filter every candidate and weigh those that pass (candidates with different extents, or weigher
        multiplier 0)."""
        pools = group.candidates
        if group.extent is not _MIXED:
            need = round_up(size, group.extent)
            passing = [p for p in pools if p.room[thin] >= need]
        else:
            passing = [p for p in pools if p.room[thin] >= round_up(size, p.extent)]
        if not passing:
            return None, None, None
        values = [p.virtual_free[thin] for p in passing]
        best, weight = CapacityWeigher.best(values, self.multiplier)  # pools are sorted: ties go to the lowest id
        return passing[best], weight, len(passing) - 1

    def place_away(self, spec, source):
        """Choose a migration destination for ``spec``: the filters and the weigher over every pool but
        ``source`` (Cinder's ``migrate_volume`` asks the scheduler for a host other than the volume's, and
        ``find_retype_backend`` filters as for a new volume). Returns ``(pool, reason)`` or ``(None, why)``
        with each pool's reason; the chosen pool is consumed from (the source is freed only after the switch)."""
        group = self.group(spec)
        thin = group.thin
        passing, reasons = [], []
        for pool in self.pools:
            if pool is source:
                reasons.append(f"{pool.id}: the volume's current pool")
            elif pool not in group.candidates:
                reasons.append(f"{pool.id}: {_refusal(pool, spec)}")
            elif pool.room[thin] < round_up(spec.size, pool.extent):
                reasons.append(f"{pool.id}: {CapacityFilter.passes(pool, spec)[1]}")
            else:
                passing.append(pool)
        if not passing:
            return None, "; ".join(reasons[:FEW_POOLS]) + (f"; and {len(reasons) - FEW_POOLS} more pools"
                                                           if len(reasons) > FEW_POOLS else "")
        values = [p.virtual_free[thin] for p in passing]
        best, weight = CapacityWeigher.best(values, self.multiplier)
        pool = passing[best]
        pool.consume(round_up(spec.size, pool.extent))
        others = len(passing) - 1
        return pool, (f"migrate from {source.id}: weight {weight:.2f} "
                      + (f"over {others} other pool{'' if others == 1 else 's'}" if others else
                         "the only pool that passed"))

    def reject(self, spec, group):
        """Record that ``spec`` fits nowhere: per filter (the first each pool failed, in Cinder's order), how
        many pools, with the reasons of the first ones for the volumes shown in full."""
        detailed = len(self.report.rejections) < FULL_VOLUMES
        limit = FEW_POOLS if len(self.pools) <= FEW_POOLS else SAMPLES
        thin = group.thin
        capacity_caps_fail, caps_fail = [], []
        for pool in group.caps_fail:  # these pools reach the CapacityFilter before the CapabilitiesFilter
            need = round_up(spec.size, pool.extent)
            (capacity_caps_fail if need and need > pool.room[thin] else caps_fail).append(pool)
        by_filter = {}
        for flt, failed in ((AvailabilityZoneFilter, group.az_fail),
                            (CapacityFilter, (group.candidates, capacity_caps_fail)),
                            (CapabilitiesFilter, caps_fail)):
            if isinstance(failed, tuple):
                count = len(failed[0]) + len(failed[1])
                first = list(islice(merge(*failed, key=lambda p: p.id), limit)) if detailed else []
            else:
                count = len(failed)
                first = failed[:limit] if detailed else []
            if not count:
                continue
            samples = []
            for pool in first:
                if flt is CapacityFilter:
                    samples.append((pool.id, flt.explain(pool, round_up(spec.size, pool.extent), thin)))
                else:
                    samples.append((pool.id, flt.explain(pool, spec)))
            by_filter[flt.name] = (count, samples)
        self.report.add(Rejection(spec.name, by_filter, len(self.pools)))


def _refusal(pool, spec):
    """Why the first of :data:`FILTERS` (Cinder's order) refuses ``spec`` on ``pool``, or None when all pass."""
    for flt in FILTERS:
        ok, why = flt.passes(pool, spec)
        if not ok:
            return why
    return None


def source_of(req, planner):
    """Resolve a new volume's ``source`` against the facts (Cinder's create flow checks the source volume or
    snapshot exists): the source volume must exist on one reporting pool, and its snapshot if one is named. A
    request without a size gets the source's (the volume's size, or its size when the snapshot was taken); a
    smaller size is refused, as Cinder refuses a volume smaller than its source. Returns an error or None."""
    src = req.source
    found = planner.existing.get(src["volume"], [])
    if len(found) != 1:
        return (f"{req.field}.source.volume: volume {src['volume']!r} does not exist on any storage host that "
                "reported" if not found else
                f"{req.field}.source.volume: {src['volume']!r} exists on several pools")
    pool, vol = found[0]
    size = vol["size_bytes"]
    if src["snapshot"] is not None:
        snap = vol["snapshots"].get(src["snapshot"])
        if snap is None:
            return (f"{req.field}.source.snapshot: volume {src['volume']} on {pool.id} has no snapshot "
                    f"{src['snapshot']!r}; known: {', '.join(sorted(vol['snapshots'])) or 'none'}")
        size = snap.get("volume_size_bytes") or size
    if req.size is None:
        req.size = size
    elif round_up(req.size, pool.extent) < size:
        return (f"{req.field}.size: {format_size(req.size)} ({req.size} bytes) is smaller than its source "
                f"{src['volume']}{'' if src['snapshot'] is None else ' snapshot ' + src['snapshot']} "
                f"({format_size(size)}, {size} bytes); Cinder refuses a volume smaller than its source")
    req.source_pool = pool
    req.source_volume_type = vol["volume_type"]
    return None


def place_from_source(req, spec, planner, changing):
    """``(pool, reason, error)`` for a new volume made from a source: on the source's pool, as Cinder's LVM
    driver requires (it copies within one volume group), after the same filters as any placement. A thick clone
    also needs room for the temporary COW snapshot of the source (its size, as Cinder's create_cloned_volume
    takes it) while it copies. A source the same run creates, extends or deletes is refused (the volume module
    copies only a source that stays as it is during the run)."""
    src, pool = req.source, req.source_pool
    what = "clone of " + src["volume"] if src["snapshot"] is None else (
        "from snapshot %s of %s" % (src["snapshot"], src["volume"]))
    action = changing.get(src["volume"])
    if action in ("create", "extend", "delete", "revert", "migrate", "unmanage"):
        done = {"create": "created", "extend": "extended", "delete": "deleted", "revert": "reverted",
                "migrate": "migrated", "unmanage": "unmanaged"}[action]
        return None, None, (f"{req.field}.source.volume: {src['volume']} is {done} in the same run "
                            f"(action {action}); make {req.name} from it in a later run")
    if src["snapshot"] is not None and changing.get((src["volume"], src["snapshot"])) == "delete":
        return None, None, (f"{req.field}.source.snapshot: snapshot {src['snapshot']} of {src['volume']} is "
                            f"deleted in the same run; make {req.name} from it in an earlier run or keep it")
    thin = pool.thin_pool is not None
    if src["snapshot"] is None and not thin:
        spec.size += planner.existing[src["volume"]][0][1]["size_bytes"]
    why = _refusal(pool, spec)
    if why:
        return None, None, f"No valid backend for {req.name} ({what}): it must go on {pool.id}: {why}"
    pool.consume(round_up(spec.size, pool.extent))
    return pool, f"{what} on its pool {pool.id}", None


def snapshot_actions(req, pool, vol, size):
    """``(actions, need, errors)`` for the snapshots the inventory lists under one volume on ``pool``, as the
    snapshot module will apply them after the volume's create or extend (``size``: its size then, bytes).

    Each action: ``name``, ``state``, ``action`` (create, none, update (the description), delete, absent,
    revert), ``cow_size_bytes`` (a thick snapshot's COW store: the option, else the volume's size as Cinder's LVM
    driver sizes it; None for thin), ``cow_size_given`` (whether the inventory set ``cow_size``: only then does the
    snapshot module get it; otherwise it takes the volume's size when it runs, after the extend, which is the same
    number, and a check run, where the extend is only predicted, does not see a COW size larger than the volume),
    ``description``, ``force``. ``need``: the bytes new snapshots take from the
    pool (the COW stores; on a thin pool each counts the volume's size in provisioned capacity, as Cinder's LVM
    driver reports thin snapshots). ``vol`` is the volume's facts (None for a new volume).
    A revert is refused here, before any change, for every reason the snapshot module would refuse it: the
    snapshot does not exist (yet), the volume is in-use or changes size, its size differs from the snapshot's,
    a newer snapshot exists (without ``force``), or other snapshots of the volume change in the same run. A
    snapshot the volume was reverted to already (tag ``ember.reverted``) is ``none``: in the inventory a revert
    happens once."""
    thin = pool.thin_pool is not None
    have = vol["snapshots"] if vol else {}
    actions, errors, need, reverts = [], [], 0, []
    for snap in req.snapshots or []:
        name, state, field = snap["name"], snap["state"], snap["field"]
        found = have.get(name)
        act = {"name": name, "state": state, "action": "none", "cow_size_bytes": None,
               "description": snap["description"], "force": snap["force"]}
        if thin and snap["cow_size"] is not None:
            errors.append(f"{field}.cow_size: {req.name} is on thin pool {pool.id}: its snapshots share the pool "
                          "and have no COW size")
            continue
        if state == "present":
            if found is None:
                cow = None if thin else round_up(snap["cow_size"] or size, pool.extent)
                act.update(action="create", cow_size_bytes=cow, cow_size_given=snap["cow_size"] is not None)
                need += size if thin else cow
            elif snap["description"] is not None and snap["description"] != found.get("description"):
                act["action"] = "update"
        elif state == "absent":
            act["action"] = "delete" if found is not None else "absent"
        else:
            reverts.append((act, snap))
        actions.append(act)
    changing = [a["name"] for a in actions if a["action"] in ("create", "update", "delete")]
    for act, snap in reverts:
        field, name = snap["field"], snap["name"]
        found = have.get(name)
        why = None
        if vol is None:
            why = f"{req.name} does not exist yet: create it and its snapshot first, revert in a later run"
        elif found is None:
            why = f"{req.name} on {pool.id} has no snapshot {name} to revert to; create it (state: present) first"
        elif found.get("reverted"):
            continue
        elif vol["attached_to"]:
            why = (f"{req.name} on {pool.id} is in-use (attached to {', '.join(vol['attached_to'])}); Cinder "
                   "reverts only an available volume: detach it first")
        elif size != vol["size_bytes"]:
            why = f"{req.name} is extended in the same run; revert first, extend in a later run"
        elif found.get("volume_size_bytes") not in (None, vol["size_bytes"]):
            why = (f"{req.name} is {format_size(vol['size_bytes'])} but was "
                   f"{format_size(found['volume_size_bytes'])} when snapshot {name} was taken; Cinder reverts only "
                   "when the sizes are equal")
        elif not found.get("latest") and not snap["force"]:
            newer = sorted(other for other in have if other != name)
            why = (f"{name} is not {req.name}'s latest snapshot (others: {', '.join(newer)}); Cinder reverts only "
                   "to the latest: set force: true to revert to it anyway")
        elif changing:
            why = (f"snapshot(s) {', '.join(changing)} of {req.name} change in the same run; revert in a run of "
                   "its own")
        if why:
            errors.append(f"{field}.state: reverted: {why}")
        else:
            act["action"] = "revert"
    return actions, need, errors


def pin_matches(pool, pin):
    """Whether ``pin`` (a volume's ``backend``: Cinder's ``host@backend#pool``) names ``pool``: its id, or for an
    LVM pool its id followed by ``#`` and the pool name Cinder's LVM driver reports (the volume_backend_name) or
    the volume group."""
    if pin == pool.id:
        return True
    if "#" in pool.id:
        return False
    head, sep, tail = pin.partition("#")
    return bool(sep) and head == pool.id and tail in (pool.capabilities.get("volume_backend_name"), pool.vg)


def _is_thin(pool):
    return pool.thin_pool is not None or pool.driver == "lvm_thin"


def placement_problems(req, pool, vol, extra_specs):
    """What no longer fits about an existing volume's pool, one phrase each (empty: it may stay): an
    availability zone that excludes the pool's, a new volume type whose extra specs the pool does not satisfy
    (Cinder's ``retype`` asks the scheduler with the CapabilitiesFilter whether the current host still fits,
    cinder/scheduler/manager.py ``retype``/``find_retype_backend``), a type that asks for the other provisioning
    (``provisioning:type`` thick on a thin pool or thin on a thick one), a type restricted to zones without the
    pool's, and a ``backend`` pin naming another pool."""
    problems = []
    if req.availability_zones and pool.availability_zone not in req.availability_zones:
        problems.append(f"availability_zone: the pool is in {pool.availability_zone}, the inventory asks "
                        f"{', '.join(req.availability_zones)}")
    retype = req.volume_type is not None and vol["volume_type"] is not None and req.volume_type != vol["volume_type"]
    if retype:
        spec = RequestSpec(name=req.name, size=0, volume_type=req.volume_type, extra_specs=extra_specs)
        why = CapabilitiesFilter.explain(pool, spec)
        if why:
            problems.append(f"volume_type {vol['volume_type']} -> {req.volume_type}: {why}")
        wanted = (extra_specs or {}).get("provisioning:type")
        if wanted in ("thin", "thick") and (wanted == "thin") != _is_thin(pool):
            problems.append(f"volume_type {vol['volume_type']} -> {req.volume_type}: provisioning:type {wanted}, "
                            f"the pool is {'thin' if _is_thin(pool) else 'thick'}")
        zones = type_availability_zones(extra_specs)
        if zones is not None and pool.availability_zone not in zones:
            problems.append(f"volume_type {vol['volume_type']} -> {req.volume_type}: the type allows zone(s) "
                            f"{', '.join(zones) or '(none)'}, the pool is in {pool.availability_zone}")
    if req.backend is not None and not pin_matches(pool, req.backend):
        problems.append(f"backend: pinned to {req.backend}")
    return problems


def migration_blockers(req, pool, vol, size):
    """Why an existing volume that must move cannot migrate in this run (messages naming the field), after
    Cinder's ``migrate_volume`` API checks (cinder/volume/api.py ``migrate_volume``: no snapshots, an
    available volume unless forced) and what the generic migration copies (an LVM volume, at its size)."""
    errors = []
    if pool.driver == "nfs":
        errors.append(f"{req.field}: {req.name} is on NFS pool {pool.id}; migration moves volumes of LVM pools only")
    if vol.get("lv_name") and vol["lv_name"] != "volume-" + req.name:
        errors.append(f"{req.field}: {req.name} on {pool.id} is the LV {vol['lv_name']}, managed under its own name; "
                      f"migration moves volume-<name> LVs only: manage it with rename: true first")
    held = sorted(vol["snapshots"])
    if held:
        errors.append(f"{req.field}: {req.name} on {pool.id} has snapshot(s) {', '.join(held)}; Cinder refuses to "
                      "migrate a volume with snapshots: delete them first")
    taken = [snap["name"] for snap in req.snapshots or [] if snap["state"] != "absent"]
    if taken and not held:
        errors.append(f"{req.field}.snapshots: {req.name} migrates in this run; take snapshot(s) "
                      f"{', '.join(taken)} in a later run")
    attached = sorted(set(vol["attached_to"]) | set(req.attachments or []))
    if attached and not req.force:
        errors.append(f"{req.field}: {req.name} on {pool.id} must migrate but is attached ({', '.join(attached)}); "
                      "detach it first, or set force: true once the consumers no longer write to it (the copy "
                      "is only consistent if its data is frozen)")
    if size > vol["size_bytes"]:
        errors.append(f"{req.field}.size: {req.name} migrates in this run; extend it in a later run")
    return errors


def _pool_ref(pool, vol_name=None):
    facts = pool.facts
    return {"host": pool.host, "pool_id": pool.id, "backend": pool.backend, "driver": pool.driver, "vg": pool.vg,
            "thin_pool": pool.thin_pool, "availability_zone": pool.availability_zone,
            "volume_clear": facts.get("volume_clear", "zero"),
            "volume_clear_size_bytes": facts.get("volume_clear_size_bytes") or 0}


def migration_state(pools, planner):
    """Read what earlier migrations left on the pools (``backend_info``'s ``migration_lvs``): destination LVs
    (``migrate-<name>``), sources switched away (``migrated-<name>``), and a volume found on two pools where one
    copy records ``migrated_from`` the other (a switch that stopped between the destination's retag and the
    source's). Returns ``(targets, migrated, finishing)``: ``{name: (pool, lv facts)}``, ``[(pool, lv facts)]``
    and ``{name: source pool}``; the switched-away copy of a finishing volume is taken out of
    ``planner.existing``, so the volume is planned on its destination."""
    targets, migrated, finishing = {}, [], {}
    for pool in pools:
        for lv in pool.facts.get("migration_lvs") or []:
            if lv.get("role") == "target":
                targets[lv["name"]] = (pool, lv)
            elif lv.get("role") == "migrated":
                migrated.append((pool, lv))
    for name, found in sorted(planner.existing.items()):
        if len(found) != 2:
            continue
        by_id = {p.id: (p, v) for p, v in found}
        for pool, vol in found:
            other = by_id.get(vol.get("migrated_from"))
            if other is not None and other[0] is not pool:
                finishing[name] = other[0]
                planner.existing[name] = [(pool, vol)]
                break
    return targets, migrated, finishing


def _static_refusal(pool, spec):
    """The AvailabilityZoneFilter's or the CapabilitiesFilter's reason to refuse ``spec`` on ``pool`` (not the
    CapacityFilter's: used for a pool whose LV already holds the bytes), or None."""
    return AvailabilityZoneFilter.explain(pool, spec) or CapabilitiesFilter.explain(pool, spec)


def plan_migrations(planner, migrating, targets, entries, migrations):
    """Choose the destination of every volume that must migrate (Cinder's ``retype`` with migration policy
    on-demand, then ``migrate_volume``): a pool holding this volume's destination LV from an interrupted run
    when it still fits (the migration resumes there; its capacity is already in the facts), else the
    ``backend`` pin (after every filter), else the filters and the weigher over every other pool
    (:meth:`_Planner.place_away`). Volumes that resume go first, then the largest, then by name: never the
    inventory's order. Fills ``entries`` (action ``migrate`` on the destination) and ``migrations``."""
    order = sorted(migrating, key=lambda m: (m[0].name not in targets, -m[3]["size_bytes"], m[0].name))
    for req, pos, source, vol, vtype, specs, moves in order:
        zones, problem = resolve_zones(req, vtype, specs, None, planner.zones)
        if problem:
            planner.errors.append(problem)
            continue
        size = vol["size_bytes"]
        spec = planner.spec(req, vtype, size, zones)
        dest, reason, resume = None, None, False
        target = targets.get(req.name)
        if target is not None and target[0] is not source:
            tpool, lv = target
            why = _static_refusal(tpool, spec)
            if why is None and req.backend is not None and not pin_matches(tpool, req.backend):
                why = f"backend pins {req.backend}"
            if why is None and (lv.get("size_bytes") or 0) < size:
                why = "its destination LV is smaller than the volume"
            if why is None and lv.get("source_pool_id") != source.id:
                why = f"its destination LV records another source ({lv.get('source_pool_id')})"
            if why is None:
                dest, resume = tpool, True
                reason = f"migrate from {source.id}: resuming (its destination LV {lv['lv_name']} exists)"
        if dest is None and req.backend is not None:
            dest = next((p for p in planner.pools if pin_matches(p, req.backend)), None)
            why = (f"no pool of the storage hosts that reported is {req.backend}; known: "
                   f"{', '.join(p.id for p in planner.pools)}") if dest is None else _refusal(dest, spec)
            if why:
                planner.errors.append(f"{req.field}.backend: No valid backend for {req.name}: migration from "
                                      f"{source.id} to {req.backend}: {why}")
                continue
            dest.consume(round_up(size, dest.extent))
            reason = f"migrate from {source.id} to the pinned pool {dest.id} (backend)"
        elif dest is None:
            dest, reason = planner.place_away(spec, source)
            if dest is None:
                planner.errors.append(f"No valid backend for {req.name} (migration from {source.id}: "
                                      f"{'; '.join(moves)}): {reason}")
                continue
        if dest.driver == "nfs":
            planner.errors.append(f"{req.field}: {req.name} would migrate to NFS pool {dest.id}; migration moves "
                                  "volumes between LVM pools only: pin an LVM pool with backend")
            continue
        dsize = round_up(size, dest.extent)
        entry = _entry(req, "migrate", dest, vtype, specs, dsize, size, f"{reason}; {'; '.join(moves)}")
        migration = {"name": req.name, "action": "migrate", "size_bytes": size, "destination_size_bytes": dsize,
                     "source": _pool_ref(source), "destination": _pool_ref(dest), "volume_type": vtype,
                     "previous_volume_type": vol["volume_type"], "changes": list(moves), "resume": resume,
                     "force": req.force, "attached": sorted(set(vol["attached_to"]) | set(req.attachments or [])),
                     "description": vol.get("description"), "metadata": dict(vol.get("metadata") or {}),
                     "reason": entry["reason"]}
        entry["migration"] = dict(migration)
        entries[pos] = entry
        migrations.append(migration)


def leftover_steps(planner, targets, migrated, finishing, entries, requested):
    """What earlier migrations left and this run finishes or rolls back (see docs/design.md, "Migration"):

    - ``rollback``: a destination LV (``migrate-<name>``) that no migration of this run uses while the volume is
      intact where it was (the source stayed authoritative): the copy is removed;
    - ``finish``: a volume on two pools, one copy recording ``migrated_from`` the other (the switch stopped
      after the destination's retag): the other copy is switched away and deleted;
    - ``cleanup``: a source switched away (``migrated-<name>``) whose volume is on the destination it records:
      it is wiped and deleted;
    - ``keep``: a leftover that cannot be tied to its volume (no such volume, or elsewhere): nothing is done, the
      plan says so.
    """
    out = []
    moving = {e["name"]: e["pool_id"] for e in entries if e is not None and e["action"] == "migrate"}
    for name, (pool, lv) in sorted(targets.items()):
        if moving.get(name) == pool.id:
            continue
        item = {"name": name, "lv_name": lv["lv_name"], "size_bytes": lv.get("size_bytes"), "source": None,
                "destination": _pool_ref(pool)}
        if planner.existing.get(name):
            where = planner.existing[name][0][0].id
            out.append(dict(item, action="rollback", reason=f"{name} stays on {where}: its unfinished migration "
                            f"copy {lv['lv_name']} on {pool.id} is removed"))
        else:
            out.append(dict(item, action="keep", reason=f"no volume {name} exists on a pool that reported; the "
                            f"migration copy {lv['lv_name']} on {pool.id} is kept (check it and remove it by hand)"))
    for pool, lv in sorted(migrated, key=lambda item: (item[1]["name"], item[0].id)):
        found = planner.existing.get(lv["name"]) or []
        item = {"name": lv["name"], "lv_name": lv["lv_name"], "size_bytes": lv.get("size_bytes"),
                "source": _pool_ref(pool), "destination": None}
        if found and found[0][0].id == lv.get("destination_pool_id") and found[0][0] is not pool:
            out.append(dict(item, action="cleanup", destination=_pool_ref(found[0][0]),
                            reason=f"{lv['name']} lives on {found[0][0].id}: the switched-away copy "
                                   f"{lv['lv_name']} on {pool.id} is deleted"))
        else:
            out.append(dict(item, action="keep", reason=f"the switched-away copy {lv['lv_name']} on {pool.id} "
                            f"records destination {lv.get('destination_pool_id')}, where no volume {lv['name']} "
                            "is: kept (check it and remove it by hand)"))
    for name, src in sorted(finishing.items()):
        dest, vol = planner.existing[name][0]
        out.append({"name": name, "action": "finish", "lv_name": "volume-" + name, "size_bytes": vol["size_bytes"],
                    "source": _pool_ref(src), "destination": _pool_ref(dest),
                    "reason": f"{name} was switched to {dest.id}; its old copy on {src.id} is switched away and "
                              "deleted"})
    return out


def manageable_index(pools):
    """``{pool id: {lv name: fact}}`` of the LVs ``backend_info`` reports for manage requests
    (``pools[].manageable``, only when the gather passed ``manage_lvs``)."""
    out = {}
    for pool in pools or []:
        if isinstance(pool, dict) and isinstance(pool.get("manageable"), list):
            out[pool.get("id")] = {lv["name"]: lv for lv in pool["manageable"]
                                   if isinstance(lv, dict) and "name" in lv}
    return out


def _ember_tags(fact):
    return [t for t in fact.get("tags") or [] if str(t).startswith("ember.")]


def _manage_fact(req, manageable):
    """The LV fact a manage request names on its pool: ``manage.lv``, or with ``rename`` an LV ``volume-<name>``
    without tags (renamed by a run that stopped before tagging it); None when not reported."""
    facts = manageable.get("%s@%s" % (req.manage["host"], req.manage["backend"])) or {}
    fact = facts.get(req.manage["lv"])
    if fact is None and req.manage["rename"]:
        renamed = facts.get("volume-" + req.name)
        if renamed is not None and not _ember_tags(renamed):
            fact = renamed
    return fact


def manage_conflict(req, found, manageable):
    """A manage request whose volume exists already is a no-op (the volume it made, or one of that name), unless
    the LV it names is still there without the project's tags: then the name is taken by another volume."""
    if not found:
        return None
    fact = _manage_fact(req, manageable)
    if fact is None or _ember_tags(fact):
        return None
    pool = found[0][0]
    return (f"{req.field}.manage: a volume named {req.name} already exists (on {pool.id}), and LV {fact['name']} on "
            f"{req.manage['host']} is not managed; choose another name to manage the LV under")


def manage_entry(req, by_id, manageable, planner, default_volume_type):
    """``(entry, error)`` of a manage request whose volume does not exist: Cinder's ``manage_existing`` and
    ``manage_existing_get_size`` of the LVM driver (cinder/volume/drivers/lvm.py), decided before any change from
    what ``backend_info`` reported of the LV (``pools[].manageable``).

    The pool is ``<manage.host>@<manage.backend>`` (it must have reported; LVM backends only). Refused, naming the
    host and the VG: the LV is not there; it carries the project's tags (managed already, under another name); it
    is in use by the host (open, holders in sysfs, mounted); it is a snapshot or has snapshots; it is not of the
    pool's kind (a thin volume of its thin pool, or a plain LV of a thick pool); the volume type's extra specs or
    the zones asked for do not match the pool (AvailabilityZoneFilter, CapabilitiesFilter); the size asked for is
    smaller than the LV (volumes never shrink). The size is the LV's exact size in bytes (Cinder rounds it up to
    whole GiB: a thick LV cannot grow without writing); a bigger ``size`` is an extend after the manage, checked by
    the CapacityFilter like any extend, as are new snapshots listed with it. The LV's capacity is already counted
    in the pool's facts; the entry counts in the quotas like any present volume."""
    host, backend, lv = req.manage["host"], req.manage["backend"], req.manage["lv"]
    where = f"{req.field}.manage"
    pool = by_id.get(f"{host}@{backend}")
    if pool is None:
        known = sorted(p.id for p in by_id.values() if p.host == host)
        return None, (f"{where}: no pool {host}@{backend} reported (host {host} did not report, or has no backend "
                      f"{backend}; its pools: {', '.join(known) or 'none'})")
    if pool.driver == "nfs":
        return None, f"{where}.backend: {backend} on {host} is an NFS backend; only LVs of LVM backends are managed"
    fact = _manage_fact(req, manageable)
    if fact is None:
        return None, f"{where}.lv: LV {lv} not found on {host} in VG {pool.vg}"
    name = fact["name"]
    tags = _ember_tags(fact)
    if tags:
        held = fact.get("managed_as") or next((t.split("=", 1)[1] for t in tags if t.startswith("ember.volume=")),
                                              None)
        return None, (f"{where}.lv: LV {name} on {host} in VG {pool.vg} is already managed by ember.blockstore"
                      f"{' as volume ' + held if held else ''} (tags: {', '.join(tags)}); unmanage it first")
    users = (["open"] if fact.get("open") else []) + ["holder " + h for h in fact.get("holders") or []] \
        + ["mounted on " + m for m in fact.get("mounted") or []]
    if users:
        return None, (f"{where}.lv: LV {name} on {host} in VG {pool.vg} is in use by the host ({', '.join(users)}); "
                      "stop using it (unmount it, remove what holds it) and run again")
    if fact.get("snapshot_of"):
        return None, (f"{where}.lv: LV {name} on {host} in VG {pool.vg} is a snapshot of {fact['snapshot_of']}; "
                      "manage the origin, not its snapshots")
    if fact.get("snapshots"):
        return None, (f"{where}.lv: LV {name} on {host} in VG {pool.vg} has snapshots "
                      f"({', '.join(fact['snapshots'])}); remove them first")
    if not fact.get("in_pool"):
        kind = f"a thin volume of pool {fact.get('pool_lv')}" if fact.get("thin") else f"a {fact.get('kind')} LV"
        holds = f"thin volumes of thin pool {pool.thin_pool}" if pool.thin_pool else "thick (plain) LVs"
        return None, f"{where}.lv: LV {name} on {host} in VG {pool.vg} is {kind}; pool {pool.id} holds {holds}"
    vtype = req.volume_type if req.volume_type is not None else default_volume_type
    specs = planner.extra_specs(vtype)
    problem = req.volume_type is None and multiattach_error(req.field, req.attachments, vtype, specs,
                                                            req.is_multiattach)
    if problem:
        return None, problem
    current = fact["size_bytes"]
    size = round_up(req.size, pool.extent) if req.size is not None else current
    if size < current:
        return None, (f"{req.field}.size: volumes never shrink: LV {name} on {host} is {format_size(current)} "
                      f"({current} bytes), inventory asks {format_size(size)} ({size} bytes)")
    snaps, need, problems = snapshot_actions(req, pool, None, size)
    if problems:
        return None, "; ".join(problems)
    spec = planner.spec(req, vtype, size - current + need)
    for flt in (AvailabilityZoneFilter, CapabilitiesFilter):
        why = flt.explain(pool, spec)
        if why is not None:
            return None, f"{where}: {req.name} cannot be managed on {pool.id} ({flt.name}): {why}"
    if spec.size:
        ok, why = CapacityFilter.passes(pool, spec)
        if not ok:
            return None, f"No valid backend for {req.name}: growth after its manage stays on {pool.id}: {why}"
        pool.consume(spec.size)
    renamed = name if not req.manage["rename"] else "volume-" + req.name
    reason = f"manage LV {name}" + (f" as {renamed}" if renamed != name else "") + (
        f", extend by {format_size(size - current)}" if size > current else "")
    entry = _entry(req, "manage", pool, vtype, specs, size, current, reason)
    entry["manage"] = {"lv": name, "rename": req.manage["rename"], "host": host, "backend": backend}
    entry["snapshots"] = snaps
    return entry, None


def unmanage_entry(req, found, planner):
    """``(entry, error)`` of ``state: unmanaged``: Cinder's ``unmanage`` (its API refuses a volume that is not
    available or has snapshots). The volume's ``ember.*`` tags go (the volume module), its ledger entry is dropped,
    the LV and its data stay. Refused: it is attached (its consumers named), has snapshots (named), or is a volume
    of an NFS backend. A volume that does not exist is ``none`` (unmanaged already, or never managed)."""
    vtype = req.volume_type
    if not found:
        return _entry(req, "none", None, vtype, planner.extra_specs(vtype), None, None,
                      "not managed (nothing to unmanage)"), None
    pool, vol = found[0]
    where = f"{req.field}.state"
    if pool.driver == "nfs":
        return None, f"{where}: unmanaged: {req.name} is on NFS backend {pool.id}; only LVM volumes are unmanaged"
    if vol["attached_to"]:
        return None, (f"{where}: unmanaged: {req.name} on {pool.id} is in-use (attached to "
                      f"{', '.join(vol['attached_to'])}); detach it first (Cinder unmanages only an available "
                      "volume)")
    if vol["snapshots"]:
        held = ", ".join(sorted(vol["snapshots"]))
        return None, (f"{where}: unmanaged: {req.name} on {pool.id} has snapshot(s) {held}; delete them first "
                      "(Cinder does not unmanage a volume with snapshots)")
    entry = _entry(req, "unmanage", pool, vol["volume_type"], planner.extra_specs(vol["volume_type"]),
                   vol["size_bytes"], vol["size_bytes"], "existing; unmanage (its tags removed, the LV and data kept)")
    return entry, None


def _entry(req, action, pool, volume_type, extra_specs, size, current, reason):
    return {
        "name": req.name, "state": req.state, "action": action, "size_bytes": size,
        "requested_size_bytes": req.size, "current_size_bytes": current,
        "volume_type": volume_type, "extra_specs": dict(extra_specs or {}),
        "availability_zone": pool.availability_zone if pool else None,
        "host": pool.host if pool else None, "backend": pool.backend if pool else None,
        "pool_id": pool.id if pool else None, "driver": pool.driver if pool else None,
        "vg": pool.vg if pool else None, "thin_pool": pool.thin_pool if pool else None,
        "attachments": list(req.attachments), "force": req.force, "description": req.description,
        "metadata": req.metadata,
        "cascade": req.cascade, "snapshots": [], "project": req.project, "source": req.source,
        "qos_specs": {}, "qos_cgroups": dict(req.qos_cgroups or {}), "reason": reason,
        "detach_force": list(req.detach_force), "detach": [], "retype_from": None, "migration": None,
        "migration_policy": req.migration_policy,
    }


def plan(volumes, pools, volume_types=None, weight_multiplier=1.0, default_volume_type=None, consumers=None,
         pinned=None, exclude=None, default_availability_zone=None):
    """Plan the inventory's volumes over the reported pools; raise :class:`ScheduleError` if anything is wrong.

    ``volumes`` is ``blockstore_volumes``, ``pools`` the ``backend_info`` pool dicts, ``volume_types``
    ``blockstore_volume_types``. ``weight_multiplier`` is Cinder's ``capacity_weight_multiplier`` (positive
    spreads to the pool with the most virtual free capacity, negative stacks). ``default_volume_type`` applies
    to new volumes without a type. ``consumers``, when given, lists the hosts attachments may name.
    ``pinned`` maps a volume name to a pool id: a new volume with a pin is placed on that pool only (the
    placement ledger recorded it there before a run that did not finish), after the same filters.
    ``exclude`` maps a volume name to ``{"host", "pool_id", "reason"}``: the volume lives on a storage host that
    did not report; it is validated but neither placed nor changed (action ``unknown``).
    ``default_availability_zone`` (``blockstore_default_availability_zone``, Cinder's
    ``default_availability_zone``) is the zone of new volumes that name none and whose type does not restrict
    zones (``RESKEY:availability_zones``).

    A request with ``manage`` whose volume does not exist is Cinder's ``manage_existing`` (see :func:`manage_entry`);
    one with ``state: unmanaged`` its ``unmanage`` (see :func:`unmanage_entry`).

    Returns ``{"volumes": [...], "unmanaged": [...], "pools": [...]}`` (plain JSON types): one entry per request
    in inventory order with its ``action`` (create, extend, none, delete, absent, manage, unmanage), pool and
    ``availability_zone``; volumes found on pools but not in the inventory (never touched); and each pool's
    free/provisioned/allocated bytes after the plan. The placements do not depend on the order of ``volumes``
    or ``pools``.
    """
    types = validate_volume_types(volume_types)
    check_options(types, weight_multiplier, default_volume_type, consumers, default_availability_zone)
    requests = validate_requests(volumes, types, default_volume_type, consumers)
    states = load_pools(pools)
    planner = _Planner(states, types, weight_multiplier)
    errors = planner.errors
    entries = [None] * len(requests)
    pinned = pinned or {}
    exclude = exclude or {}
    new, migrating, migrations, to_manage = [], [], [], []
    targets, migrated, finishing = migration_state(states, planner)
    manageable = manageable_index(pools)

    # Existing volumes first, by name: sticky, extend growth consumed before any placement, deletes checked.
    for pos, req in sorted(enumerate(requests), key=lambda item: item[1].name):
        if req.name in exclude:
            where = exclude[req.name]
            vtype = req.volume_type
            entry = _entry(req, "unknown", None, vtype, planner.extra_specs(vtype), None, None,
                           where.get("reason") or "host did not report")
            entry.update(host=where.get("host"), pool_id=where.get("pool_id"))
            entries[pos] = entry
            continue
        found = planner.existing.get(req.name, [])
        if len(found) > 1:
            errors.append(f"{req.field}.name: {req.name!r} exists on several pools "
                          f"({', '.join(p.id for p, dummy in found)}); a volume name must be unique")
            continue
        if req.state == "unmanaged":
            entries[pos], problem = unmanage_entry(req, found, planner)
            if problem:
                errors.append(problem)
            continue
        if req.manage is not None and req.state == "present":
            problem = manage_conflict(req, found, manageable)
            if problem:
                errors.append(problem)
                continue
            if not found:
                to_manage.append((req, pos))
                continue
        if not found:
            if req.state == "present":
                if req.source is not None and req.source.get("image") is None:
                    problem = source_of(req, planner)
                    if problem:
                        errors.append(problem)
                        continue
                new.append((req.name in pinned, req, pos))
            else:
                vtype = req.volume_type
                entries[pos] = _entry(req, "absent", None, vtype, planner.extra_specs(vtype), None, None,
                                      "does not exist")
            continue
        pool, vol = found[0]
        current = vol["size_bytes"]
        vtype = req.volume_type if req.volume_type is not None else vol["volume_type"]
        specs = planner.extra_specs(vtype)
        if req.state == "absent":
            in_use = vol["attached_to"]
            if in_use and not req.force:
                errors.append(f"{req.field}: {req.name} on {pool.id} is in-use (attached to {', '.join(in_use)}); "
                              "set force: true to detach and delete it")
                continue
            held = sorted(vol["snapshots"])
            if held and not req.cascade:
                errors.append(f"{req.field}: {req.name} on {pool.id} has snapshot(s) {', '.join(held)}; set "
                              "cascade: true to delete them with it (Cinder refuses to delete a volume with "
                              "snapshots unless cascade)")
                continue
            reason = f"existing; delete (forced, attached to {', '.join(in_use)})" if in_use else "existing; delete"
            if held:
                reason += f" with snapshot(s) {', '.join(held)} (cascade)"
            entries[pos] = _entry(req, "delete", pool, vtype, specs, None, current, reason)
            entries[pos]["snapshots"] = [{"name": name, "state": "absent", "action": "delete", "cow_size_bytes": None,
                                          "description": None, "force": False} for name in held]
            continue
        problem = req.volume_type is None and multiattach_error(req.field, req.attachments, vtype, specs,
                                                                req.is_multiattach)
        if problem:
            errors.append(problem)
            continue
        # A volume made from a source keeps it only at creation: without a size it stays as it is.
        size = round_up(req.size, pool.extent) if req.size is not None else current
        if size < current:
            errors.append(f"{req.field}.size: volumes never shrink: {req.name} is {format_size(current)} "
                          f"({current} bytes) on {pool.id}, inventory asks {format_size(size)} ({size} bytes)")
            continue
        moves = placement_problems(req, pool, vol, specs)
        if moves:
            if req.migration_policy != "on-demand":
                errors.append(f"{req.field}: {req.name} exists on {pool.id}, which no longer fits: "
                              f"{'; '.join(moves)}; volumes are not moved unless asked: set migration_policy: "
                              "on-demand to migrate it")
                continue
            problems = migration_blockers(req, pool, vol, size)
            if problems:
                errors.extend(problems)
                continue
            migrating.append((req, pos, pool, vol, vtype, specs, moves))
            continue
        retype_from = vol["volume_type"] if (req.volume_type is not None and vol["volume_type"] is not None
                                             and req.volume_type != vol["volume_type"]) else None
        snaps, need, problems = snapshot_actions(req, pool, vol, size)
        if problems:
            errors.extend(problems)
            continue
        changed = [key for key, value in (("description", req.description), ("metadata", req.metadata))
                   if value is not None and value != (vol[key] if key == "metadata" else (vol[key] or ""))]
        if retype_from is not None:
            changed.append(f"retype in place from {retype_from} (the pool satisfies {vtype})")
        if size == current and not need:
            action = "retype" if retype_from is not None else ("update" if changed else "none")
            reason = f"existing; {' and '.join(changed)}" if retype_from else (
                f"existing; update {' and '.join(changed)}" if changed else "existing")
            entries[pos] = _entry(req, action, pool, vtype, specs, size, current, reason)
            entries[pos]["snapshots"] = snaps
            entries[pos]["retype_from"] = retype_from
            continue
        spec = planner.spec(req, vtype, size - current + need)
        ok, why = CapacityFilter.passes(pool, spec)
        if not ok:
            what = (f"extend from {format_size(current)} to {format_size(size)}" if size > current else "")
            if need:
                what += (" and " if what else "") + f"new snapshot(s) needing {format_size(need)}"
            errors.append(f"No valid backend for {req.name}: {what} stays on {pool.id}: {why}")
            continue
        pool.consume(size - current + need)
        action = "extend" if size > current else ("retype" if retype_from else ("update" if changed else "none"))
        reason = f"existing; extend by {format_size(size - current)}" if size > current else (
            f"existing; update {' and '.join(changed)}" if changed else "existing")
        if retype_from and size > current:
            reason += f"; retype in place from {retype_from}"
        entries[pos] = _entry(req, action, pool, vtype, specs, size, current, reason)
        entries[pos]["snapshots"] = snaps
        entries[pos]["retype_from"] = retype_from

    by_id = {pool.id: pool for pool in states}
    for req, pos in to_manage:  # after the extends of existing volumes, before any new volume is placed
        entries[pos], problem = manage_entry(req, by_id, manageable, planner, default_volume_type)
        if problem:
            errors.append(problem)
    plan_migrations(planner, migrating, targets, entries, migrations)
    changing = {entry["name"]: entry["action"] for entry in entries if entry is not None}
    for entry in entries:  # a revert rewrites the volume's data in the run; a deleted snapshot is gone
        if entry is not None and entry["action"] == "none":
            for snap in entry["snapshots"]:
                if snap["action"] in ("revert", "delete"):
                    changing.setdefault((entry["name"], snap["name"]), snap["action"])
                if snap["action"] == "revert":
                    changing[entry["name"]] = "revert"
    changing.update((req.name, "create") for dummy, req, dummy in new)
    for is_pinned, req, pos in placement_order(new):
        vtype = req.volume_type if req.volume_type is not None else default_volume_type
        source_type = getattr(req, "source_volume_type", None)  # set by source_of: a volume source only
        if req.source is not None and req.volume_type is None and source_type is not None:
            vtype = source_type  # Cinder: a clone or a volume from a snapshot keeps the source's type
        specs = planner.extra_specs(vtype)
        problem = req.volume_type is None and multiattach_error(req.field, req.attachments, vtype, specs,
                                                                req.is_multiattach)
        if problem:
            errors.append(problem)
            continue
        zones, problem = resolve_zones(req, vtype, specs, default_availability_zone, planner.zones)
        if problem:
            errors.append(problem)
            continue
        # New snapshots go on the volume's pool: the placement asks for room for them too.
        need = sum(snap["cow_size"] or req.size for snap in req.snapshots if snap["state"] == "present")
        spec = planner.spec(req, vtype, req.size + need, zones)
        if req.source is not None and req.source.get("image") is None:
            pool, reason, problem = place_from_source(req, spec, planner, changing)
            if problem:
                errors.append(problem)
                continue
        elif req.backend is not None and not (is_pinned and req.backend == pinned[req.name]):
            pool = next((p for p in states if pin_matches(p, req.backend)), None)
            why = (f"no pool of the storage hosts that reported is {req.backend}; known: "
                   f"{', '.join(p.id for p in states) or 'none'}") if pool is None else _refusal(pool, spec)
            if why is None and is_pinned and pool.id != pinned[req.name]:
                why = f"the placement ledger records an unfinished create of it on {pinned[req.name]}"
            if why:
                errors.append(f"{req.field}.backend: No valid backend for {req.name}: pinned to {req.backend}: {why}")
                continue
            pool.consume(round_up(spec.size, pool.extent))
            reason = f"pinned to {pool.id} (backend)"
        elif is_pinned:
            pool = by_id.get(pinned[req.name])
            why = "did not report" if pool is None else _refusal(pool, spec)
            if why:
                errors.append(f"No valid backend for {req.name}: the placement ledger records it on "
                              f"{pinned[req.name]} (a create that did not finish): {why}")
                continue
            pool.consume(round_up(spec.size, pool.extent))
            reason = f"finishing a create recorded on {pool.id} in the placement ledger"
        else:
            pool, reason = planner.place(spec)
        if pool is not None and req.source is not None and req.source.get("image") is not None \
                and pool.driver == "nfs":
            errors.append(f"{req.field}.source.image: {req.name} would go on {pool.id}, an nfs pool; volumes of nfs "
                          "backends are not made from images: give it a volume type of an LVM backend")
            continue
        if pool is not None:
            size = round_up(req.size, pool.extent)
            snaps, dummy, problems = snapshot_actions(req, pool, None, size)
            if problems:
                errors.extend(problems)
                continue
            entries[pos] = _entry(req, "create", pool, vtype, spec.extra_specs, size, None, reason)
            entries[pos]["snapshots"] = snaps

    if errors or planner.report:
        raise ScheduleError(errors, planner.report)
    for entry in entries:  # the volume type's QoS specs, enforced by the consumers it is attached to
        entry["qos_specs"] = dict(types.get(entry["volume_type"], {}).get("qos_specs") or {})
        entry["mutual_chap"] = types.get(entry["volume_type"], {}).get("mutual_chap")
    requested = {req.name for req in requests}
    migrations.extend(leftover_steps(planner, targets, migrated, finishing, entries, requested))
    unmanaged = [{"name": vol["name"], "pool_id": pool.id, "host": pool.host, "backend": pool.backend,
                  "size_bytes": vol["size_bytes"], "volume_type": vol["volume_type"], "reason": "not in inventory"}
                 for pool in states for vol in sorted(pool.volumes, key=lambda v: v["name"])
                 if vol["name"] not in requested]
    return {"volumes": entries, "unmanaged": unmanaged, "pools": [p.usage() for p in states],
            "migrations": sorted(migrations, key=lambda m: (m["name"], m["action"]))}

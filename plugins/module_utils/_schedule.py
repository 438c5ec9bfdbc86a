# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Scheduler and planner: which pool holds each volume of the inventory, and what must change.

Pure Python (standard library only) so the ``ember.blockstore.schedule`` filter and lookup, the modules and the
unit tests share it. It follows Cinder's filter scheduler (``cinder/scheduler/filter_scheduler.py``):

1. validate the whole request list (:func:`validate_volume_types`, :func:`validate_requests`);
2. keep existing volumes where they are (sticky) and check only an extend's growth;
3. place each new volume, one request at a time in inventory order, by running the filters
   :class:`AvailabilityZoneFilter`, :class:`CapacityFilter` and :class:`CapabilitiesFilter` (Cinder's default
   ``scheduler_default_filters`` in that order) and then :class:`CapacityWeigher`; the chosen pool's state is
   updated as in Cinder's ``BackendState.consume_from_volume`` before the next request is placed;
4. fail the whole plan, before any change, when a volume fits nowhere.

Capacities are integer bytes here (Cinder uses GiB floats); formulas are otherwise Cinder's.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    validate_type_name,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._size import (
    SizeError,
    format_size,
    parse_size,
    round_up,
)

__all__ = [
    "FILTERS",
    "AvailabilityZoneFilter",
    "CapabilitiesFilter",
    "CapacityFilter",
    "CapacityWeigher",
    "PoolState",
    "RequestSpec",
    "ScheduleError",
    "VolumeRequest",
    "bool_from_string",
    "extra_specs_match",
    "load_pools",
    "max_over_subscription_ratio",
    "plan",
    "validate_requests",
    "validate_volume_types",
]

VOLUMES_FIELD = "blockstore_volumes"
TYPES_FIELD = "blockstore_volume_types"
POOLS_FIELD = "pools"
# ``metadata`` (Cinder's volume metadata) is not accepted until the volume module stores it on the host:
# a key that would be silently dropped is an error instead.
VOLUME_KEYS = frozenset(("name", "size", "volume_type", "availability_zone", "state", "attachments", "force",
                         "description"))
TYPE_KEYS = frozenset(("extra_specs", "description"))
ATTACHMENT_KEYS = frozenset(("host",))
INFINITE_UNKNOWN = ("infinite", "unknown")
# Cinder's ``max_over_subscription_ratio`` default and the ratio ``auto`` starts from on an empty pool
# (``INITIAL_AUTO_MOSR`` in cinder/scheduler/sched_utils.py (older: cinder/utils.py)).
DEFAULT_MOSR = 20.0
INITIAL_AUTO_MOSR = 20.0
GIB = 2**30


class ScheduleError(ValueError):
    """Invalid input, or a plan that cannot be made. ``errors`` holds one message per problem."""

    def __init__(self, errors):
        if isinstance(errors, str):
            errors = [errors]
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


# --------------------------------------------------------------------------------------------------------------
# Cinder's extra_specs_ops
# --------------------------------------------------------------------------------------------------------------

_TRUE_STRINGS = ("1", "t", "true", "on", "y", "yes")


def bool_from_string(subject):
    """Interpret a value as a boolean like ``oslo_utils.strutils.bool_from_string`` (non-strict): a bool is
    returned as is; anything else is turned into a string and is true only for 1/t/true/on/y/yes (any case)."""
    if isinstance(subject, bool):
        return subject
    if not isinstance(subject, str):
        subject = str(subject)
    return subject.strip().lower() in _TRUE_STRINGS


def _num_op(compare):
    return lambda x, y: compare(float(x), float(y))


_OPS = {
    "=": _num_op(operator.ge),  # sic: Cinder's ``=`` means "at least"
    "<in>": lambda x, y: y in x,
    "<is>": lambda x, y: bool_from_string(x) is bool_from_string(y),
    "==": _num_op(operator.eq),
    "!=": _num_op(operator.ne),
    ">=": _num_op(operator.ge),
    "<=": _num_op(operator.le),
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
}


def extra_specs_match(value, req):
    """Whether capability ``value`` satisfies extra spec ``req``, as Cinder's ``extra_specs_ops.match``
    (cinder/scheduler/filters/extra_specs_ops.py).

    ``req`` starts with an operator: ``=`` (numeric >=), ``==`` ``!=`` ``>=`` ``<=`` (numeric), ``s==`` ``s!=``
    ``s<`` ``s<=`` ``s>`` ``s>=`` (string), ``<in>`` (substring), ``<is>`` (boolean) or ``<or> a <or> b`` (any of);
    without an operator it is compared for equality with the capability as reported. Only the first word after
    an operator counts. One deviation: a comparison that raises ``TypeError`` (for example ``s<`` against a
    number) does not match, where Cinder would fail the whole request.
    """
    if req is None:
        return value is None
    words = req.split()
    op = words.pop(0) if words else None
    method = _OPS.get(op)
    if op != "<or>" and method is None:
        return value == req
    if value is None:
        return False
    if op == "<or>":  # <or> v1 <or> v2 <or> v3
        while words:
            if words.pop(0) == value:
                return True
            if not words:
                break
            words.pop(0)  # the next <or>
        return False
    try:
        return bool(words) and bool(method(value, words[0]))
    except (ValueError, TypeError):
        return False


# --------------------------------------------------------------------------------------------------------------
# Pools
# --------------------------------------------------------------------------------------------------------------

def max_over_subscription_ratio(reported, thin_support, total, free, provisioned):
    """The effective over-subscription ratio of a pool, as Cinder's ``calculate_max_over_subscription_ratio``
    (cinder/scheduler/sched_utils.py): 1.0 without thin support or with infinite/unknown capacity; a missing or
    zero value means the default 20.0; ``auto`` is ``1 + provisioned / (used + 1)`` with ``used = total - free``
    and both in GiB (so the ``+ 1`` is 1 GiB, as in Cinder), or 20.0 while nothing is provisioned.
    Raises ``ValueError``/``TypeError`` for a value that is neither a number nor ``auto``."""
    if not thin_support:
        return 1.0
    if total in INFINITE_UNKNOWN or free in INFINITE_UNKNOWN:
        return 1.0
    if reported in (None, "", 0):
        return DEFAULT_MOSR
    if reported == "auto":
        if provisioned:
            return 1.0 + (provisioned / GIB) / ((total - free) / GIB + 1.0)
        return INITIAL_AUTO_MOSR
    if isinstance(reported, bool):
        raise TypeError(reported)
    return float(reported)


class PoolState:
    """One backend on one storage host, with the capacity it has left during planning (Cinder's
    ``BackendState``/``PoolState`` in cinder/scheduler/host_manager.py).

    Static values (capabilities, zone, reserved bytes, over-subscription ratio) are computed once; ``room`` (the
    largest size the CapacityFilter lets through) and ``virtual_free`` (the CapacityWeigher's value), each indexed
    by ``thin`` (0 or 1), are recomputed after every :meth:`consume`.
    """

    __slots__ = (
        "allocated",
        "availability_zone",
        "backend",
        "capabilities",
        "driver",
        "extent",
        "free",
        "host",
        "id",
        "mosr",
        "provisioned",
        "reserved_bytes",
        "reserved_percentage",
        "room",
        "thin_pool",
        "thin_support",
        "total",
        "vg",
        "virtual_free",
        "volumes",
    )

    def __init__(self, facts, field="pool"):
        if not isinstance(facts, dict):
            raise ScheduleError(f"{field}: expected a dict of pool facts, got {type(facts).__name__}")
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
        # Cinder: provisioned_capacity_gb defaults to allocated_capacity_gb.
        self.provisioned = self._bytes(facts, "provisioned_bytes", field, errors, default=self.allocated)
        caps = facts.get("capabilities")
        if caps is None:
            caps = {}
        if not isinstance(caps, dict):
            errors.append(f"{field}.capabilities: expected a dict, got {type(caps).__name__}")
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
                self.mosr = max_over_subscription_ratio(mosr, self.thin_support, self.total, self.free,
                                                        self.provisioned)
            except (TypeError, ValueError):
                errors.append(f"{field}.capabilities.max_over_subscription_ratio: {mosr!r} is not a number or 'auto'")
        if self.total in INFINITE_UNKNOWN or self.total is None:
            self.reserved_bytes = None
        else:
            # Cinder: math.floor(total * reserved_percentage / 100)
            self.reserved_bytes = math.floor(self.total * (float(pct) / 100))
        volumes = facts.get("volumes") or []
        if not isinstance(volumes, list):
            errors.append(f"{field}.volumes: expected a list, got {type(volumes).__name__}")
            volumes = []
        self.volumes = []
        for i, vol in enumerate(volumes):
            vfield = f"{field}.volumes[{i}]"
            if not isinstance(vol, dict) or not isinstance(vol.get("name"), str):
                errors.append(f"{vfield}: expected a dict with a string name, got {vol!r}")
                continue
            size = self._bytes(vol, "size_bytes", vfield, errors)
            vtype = vol.get("volume_type")
            attached = vol.get("attached_to") or []
            if not isinstance(attached, list):
                attached = [attached]
            self.volumes.append({"name": str(vol["name"]), "size_bytes": size,
                                 "volume_type": None if vtype is None else str(vtype),
                                 "attached_to": [str(a) for a in attached]})
        if errors:
            raise ScheduleError(errors)
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
            errors.append(f"{field}.{key}: {value!r} is not an integer number of bytes")
            return None
        return value

    def refresh(self):
        """Recompute the filter and weigher values that depend on free/provisioned capacity."""
        self.room = (CapacityFilter.room(self, False), CapacityFilter.room(self, True))
        self.virtual_free = (CapacityWeigher.virtual_free(self, False), CapacityWeigher.virtual_free(self, True))

    def consume(self, size):
        """Account for ``size`` more bytes placed here, as Cinder's ``BackendState.consume_from_volume``
        (cinder/scheduler/host_manager.py): allocated and provisioned grow, free shrinks unless infinite/unknown
        (by the full size, thin or not)."""
        self.allocated += size
        self.provisioned += size
        if self.free is not None and self.free not in INFINITE_UNKNOWN:
            self.free -= size
        self.refresh()

    def usage(self):
        return {"id": self.id, "free_bytes": self.free, "provisioned_bytes": self.provisioned,
                "allocated_bytes": self.allocated}


def load_pools(pools):
    """Validate a list of ``backend_facts`` pool dicts; return :class:`PoolState` objects sorted by id."""
    if pools is None:
        pools = []
    if not isinstance(pools, (list, tuple)):
        raise ScheduleError(f"{POOLS_FIELD}: expected a list of pool facts, got {type(pools).__name__}")
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


# --------------------------------------------------------------------------------------------------------------
# Filters and weigher
# --------------------------------------------------------------------------------------------------------------

@dataclass
class RequestSpec:
    """What the filters see of one request: ``size`` in bytes (the growth for an extend), the zones asked for
    (``None`` = any), the volume type's extra specs and whether the type allows thin provisioning
    (everything but ``provisioning:type: thick``)."""

    name: str
    size: int
    availability_zones: tuple | None = None
    volume_type: str | None = None
    extra_specs: dict | None = None

    @property
    def thin(self):
        return (self.extra_specs or {}).get("provisioning:type") != "thick"


def _pct(value):
    return f"{value:g}%"


class AvailabilityZoneFilter:
    """As in Cinder's AvailabilityZoneFilter (cinder/scheduler/filters/availability_zone_filter.py): a pool passes
    when no zone is asked for, or when its zone is the one (or one of those) asked for."""

    name = "AvailabilityZoneFilter"

    @staticmethod
    def passes(pool, spec):
        zones = spec.availability_zones
        if not zones or pool.availability_zone in zones:
            return True, ""
        asked = zones[0] if len(zones) == 1 else "one of " + ", ".join(zones)
        return False, f"AvailabilityZoneFilter: pool is in {pool.availability_zone}, volume asks {asked}"


class CapacityFilter:
    """As in Cinder's CapacityFilter (cinder/scheduler/filters/capacity_filter.py).

    Free capacity not reported fails; free ``infinite``/``unknown`` passes; total ``infinite``/``unknown`` passes
    only with no reserved percentage; total <= 0 fails. ``usable = free - floor(total * reserved% / 100)``.
    Thin path (the pool reports ``thin_provisioning_support``, its ratio is >= 1 and the type does not ask
    ``provisioning:type: thick``): fail when ``(provisioned + size) / total > max_over_subscription_ratio``,
    else pass when ``usable * ratio >= size``; a thin pool with a ratio < 1 fails. Thick path: pass when
    ``usable >= size``. The size is rounded up to the pool's extent first (what LVM will allocate).
    """

    name = "CapacityFilter"

    @staticmethod
    def room(pool, thin):
        """Largest size in bytes that passes on ``pool`` (``inf``: any; ``-inf``: none)."""
        free, total = pool.free, pool.total
        if free is None:
            return -math.inf
        if free in INFINITE_UNKNOWN:
            return math.inf
        if total in INFINITE_UNKNOWN:
            return math.inf if not pool.reserved_percentage else -math.inf
        if total <= 0:
            return -math.inf
        usable = free - pool.reserved_bytes
        if thin and pool.thin_support:
            if pool.mosr < 1:
                return -math.inf
            return min(pool.mosr * total - pool.provisioned, usable * pool.mosr)
        return usable

    @classmethod
    def passes(cls, pool, spec):
        size = round_up(spec.size, pool.extent)
        if size == 0 or size <= pool.room[1 if spec.thin else 0]:
            return True, ""
        return False, "CapacityFilter: " + cls._explain(pool, size, spec.thin)

    @staticmethod
    def _explain(pool, size, thin):
        free, total = pool.free, pool.total
        if free is None:
            return "free capacity not reported"
        if total in INFINITE_UNKNOWN:
            return f"total capacity is {total}, so reserved {_pct(pool.reserved_percentage)} cannot be computed"
        if total <= 0:
            return f"total capacity is {format_size(total)}"
        usable = free - pool.reserved_bytes
        detail = f"(free {format_size(free)} - reserved {_pct(pool.reserved_percentage)})"
        if thin and pool.thin_support:
            if pool.mosr < 1:
                return f"thin pool with max_over_subscription_ratio {pool.mosr:.2f}, below the minimum of 1"
            if size > pool.mosr * total - pool.provisioned:
                ratio = (pool.provisioned + size) / total
                digits = next((d for d in range(2, 10) if f"{ratio:.{d}f}" != f"{pool.mosr:.{d}f}"), 10)
                return (f"provisioned ratio ({format_size(pool.provisioned)} + {format_size(size)}) / "
                        f"{format_size(total)} = {ratio:.{digits}f} exceeds max_over_subscription_ratio "
                        f"{pool.mosr:.2f}")
            return (f"needs {format_size(size)}, usable {format_size(usable)} x max_over_subscription_ratio "
                    f"{pool.mosr:.2f} = {format_size(usable * pool.mosr)} {detail}")
        return f"needs {format_size(size)}, usable {format_size(usable)} {detail}"


class CapabilitiesFilter:
    """As in Cinder's CapabilitiesFilter (cinder/scheduler/filters/capabilities_filter.py): every unscoped or
    ``capabilities:``-scoped extra spec must match the pool's capability (nested scopes walk into dicts) with
    :func:`extra_specs_match`; other scopes (``provisioning:type``, ``qos:``...) are ignored; a capability the
    pool does not report fails; a list capability matches when any element matches."""

    name = "CapabilitiesFilter"

    @staticmethod
    def passes(pool, spec):
        for key, req in (spec.extra_specs or {}).items():
            scope = key.split(":")
            if len(scope) > 1 and scope[0] != "capabilities":
                continue
            if scope[0] == "capabilities":
                del scope[0]
            cap = pool.capabilities
            for part in scope:
                try:
                    cap = cap[part]
                except (TypeError, KeyError):
                    return False, (f"CapabilitiesFilter: pool does not report capability {':'.join(scope)!r} "
                                   f"(type {spec.volume_type} wants {req!r})")
            values = cap if isinstance(cap, list) else [cap]
            if not any(extra_specs_match(value, req) for value in values):
                hint = ""
                words = req.split()
                if not isinstance(cap, (str, list)) and words and words[0] != "<or>" and words[0] not in _OPS:
                    hint = f"; without an operator values are compared as they are: use '<is> {req}' or '== {req}'"
                return False, (f"CapabilitiesFilter: {key}: pool reports {cap!r}, type {spec.volume_type} "
                               f"wants {req!r}{hint}")
        return True, ""


FILTERS = (AvailabilityZoneFilter, CapacityFilter, CapabilitiesFilter)


class CapacityWeigher:
    """As in Cinder's CapacityWeigher (cinder/scheduler/weights/capacity.py) with the virtual free capacity of
    ``calculate_capacity_factors`` (cinder/scheduler/sched_utils.py): thin ``(total - reserved) * ratio -
    provisioned``; thick ``min(free, total - reserved - provisioned)``. Pools with infinite or unknown capacity
    weigh ``-1`` when spreading and ``+inf`` (then max + offset) when stacking, so they come last either way.
    Weights are min-max normalised to 0..1 (all equal: 0) and multiplied by the multiplier; highest wins."""

    name = "CapacityWeigher"
    OFFSET_MIN = 10000
    OFFSET_MULT = 100

    @staticmethod
    def virtual_free(pool, thin):
        """Virtual free bytes of ``pool``; ``None`` when its capacity is infinite or unknown."""
        free, total = pool.free, pool.total
        if free in INFINITE_UNKNOWN or total in INFINITE_UNKNOWN or free is None:
            return None
        available = total - pool.reserved_bytes
        if thin and pool.thin_support:
            return available * pool.mosr - pool.provisioned
        return min(free, available - pool.provisioned)

    @classmethod
    def weigh(cls, values, multiplier=1.0):
        """Weights for a list of :meth:`virtual_free` values (``None`` = infinite/unknown), as Cinder's
        ``CapacityWeigher.weigh_objects`` followed by ``base_weight.normalize`` and the multiplier."""
        if not values:
            return []
        raw = values
        if None in raw:
            placeholder = -1.0 if multiplier > 0 else math.inf
            raw = [placeholder if v is None else v for v in raw]
        lo, hi = min(raw), max(raw)
        if math.isinf(hi):
            finite = [w for w in raw if not math.isinf(w)]
            if not finite:
                return [0.0] * len(raw)
            hi = max(finite)
            offset = (hi - lo) * cls.OFFSET_MULT
            hi += cls.OFFSET_MIN if offset == 0.0 else offset
            raw = [hi if math.isinf(w) else w for w in raw]
        if hi == lo:
            return [0.0] * len(raw)
        scale = multiplier / (hi - lo)
        return [(w - lo) * scale for w in raw]

    @classmethod
    def best(cls, values, multiplier=1.0):
        """``(index, weight)`` of the winner among :meth:`virtual_free` values: the highest weight of
        :meth:`weigh`, the first one on a tie. Found without building the weight list: the largest value when
        spreading, the smallest when stacking (infinite/unknown pools lose either way). Values are compared
        exactly, so two values that differ by less than float rounding of the normalised weight still differ."""
        if not values:
            raise ValueError("no values to weigh")
        if multiplier == 0:
            return 0, 0.0
        raw = values
        if None in raw:
            placeholder = -1.0 if multiplier > 0 else math.inf
            raw = [placeholder if v is None else v for v in raw]
        lo, hi = min(raw), max(raw)
        if lo == hi:
            return 0, 0.0
        if multiplier < 0:
            return raw.index(lo), 0.0
        return raw.index(hi), float(multiplier)


# --------------------------------------------------------------------------------------------------------------
# Validation of the inventory
# --------------------------------------------------------------------------------------------------------------

@dataclass
class VolumeRequest:
    """One validated ``blockstore_volumes`` item."""

    index: int
    name: str
    state: str = "present"
    size: int | None = None
    volume_type: str | None = None
    availability_zones: tuple | None = None
    attachments: list | None = None
    force: bool = False
    description: str | None = None

    @property
    def field(self):
        return f"{VOLUMES_FIELD}[{self.index}]"


def validate_volume_types(volume_types):
    """Validate ``blockstore_volume_types`` (name -> {extra_specs, description}); return a plain dict
    name -> {"extra_specs": {str: str}, "description": str | None}. Extra spec values must be strings, as Cinder
    stores them; YAML ``true`` would never equal a capability, so it is refused with a hint."""
    if volume_types is None:
        return {}
    if not isinstance(volume_types, dict):
        raise ScheduleError(f"{TYPES_FIELD}: expected a dict of name -> type, got {type(volume_types).__name__}")
    result, errors = {}, []
    for name, spec in volume_types.items():
        field = f"{TYPES_FIELD}.{name}"
        try:
            validate_type_name(name, TYPES_FIELD)
        except NameError_ as exc:
            errors.append(str(exc))
            continue
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            errors.append(f"{field}: expected a dict with extra_specs and description, got {type(spec).__name__}")
            continue
        unknown = sorted(str(k) for k in spec if k not in TYPE_KEYS)
        if unknown:
            errors.append(f"{field}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(TYPE_KEYS))}")
        specs = spec.get("extra_specs") or {}
        if not isinstance(specs, dict):
            errors.append(f"{field}.extra_specs: expected a dict, got {type(specs).__name__}")
            specs = {}
        clean = {}
        for key, value in specs.items():
            if not isinstance(key, str) or not key:
                errors.append(f"{field}.extra_specs: key {key!r} is not a non-empty string")
            elif not isinstance(value, str):
                errors.append(f"{field}.extra_specs.{key}: {value!r} is not a string; quote it, for example "
                              f"\"<is> {value}\" for a boolean or \"== {value}\" for a number")
            else:
                clean[str(key)] = str(value)
        description = spec.get("description")
        if description is not None and not isinstance(description, str):
            errors.append(f"{field}.description: {description!r} is not a string")
            description = None
        result[str(name)] = {"extra_specs": clean, "description": None if description is None else str(description)}
    if errors:
        raise ScheduleError(errors)
    return result


def _multiattach_error(field, hosts, volume_type, extra_specs):
    """Message when a volume with several attachments has a type whose extra spec ``multiattach`` is not
    ``<is> True`` (Cinder's multiattach volume types), else ``None``."""
    if len(hosts) < 2:
        return None
    spec = (extra_specs or {}).get("multiattach")
    if spec is not None and spec.split()[:1] == ["<is>"] and extra_specs_match(True, spec):
        return None
    if volume_type is None:
        return (f"{field}.attachments: {len(hosts)} hosts, but a volume without a volume type cannot be "
                f"multiattached; use a type with the extra spec multiattach: \"<is> True\"")
    return (f"{field}.attachments: {len(hosts)} hosts, but volume type {volume_type} does not allow multiattach; "
            f"add the extra spec multiattach: \"<is> True\" to it")


def validate_requests(volumes, volume_types=None, default_volume_type=None, consumers=None):
    """Validate the whole ``blockstore_volumes`` list; return :class:`VolumeRequest` objects in order.

    ``volume_types`` is the output of :func:`validate_volume_types`. Every problem is collected and raised as
    one :class:`ScheduleError` whose messages name the field (``blockstore_volumes[2].size``) and the value.
    """
    volume_types = volume_types or {}
    if volumes is None:
        volumes = []
    if not isinstance(volumes, (list, tuple)):
        raise ScheduleError(f"{VOLUMES_FIELD}: expected a list of volumes, got {type(volumes).__name__}")
    consumer_set = None if consumers is None else set(consumers)
    requests, errors, seen = [], [], {}
    for index, item in enumerate(volumes):
        field = f"{VOLUMES_FIELD}[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{field}: expected a dict with at least a name, got {type(item).__name__}")
            continue
        before = len(errors)
        unknown = sorted(str(k) for k in item if k not in VOLUME_KEYS)
        if unknown:
            errors.append(f"{field}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(VOLUME_KEYS))}")
        name = item.get("name")
        try:
            validate_volume_name(name, field + ".name")
        except NameError_ as exc:
            errors.append(str(exc))
            name = None
        if name is not None:
            if name in seen:
                errors.append(f"{field}.name: {name!r} is already used by {seen[name]}")
            else:
                seen[name] = field
        state = item.get("state", "present")
        if state not in ("present", "absent"):
            errors.append(f"{field}.state: {state!r} is not one of present, absent")
        size = item.get("size")
        if size is None:
            if state == "present":
                errors.append(f"{field}.size: missing; a present volume needs a size such as 10GiB")
        else:
            try:
                size = parse_size(size, field + ".size")
            except SizeError as exc:
                errors.append(str(exc))
                size = None
            else:
                if size == 0:
                    errors.append(f"{field}.size: {item['size']!r} is zero; a volume needs at least one byte")
        vtype = item.get("volume_type")
        if vtype is not None and (not isinstance(vtype, str) or vtype not in volume_types):
            errors.append(f"{field}.volume_type: {vtype!r} is not a defined volume type; defined: "
                          f"{', '.join(sorted(volume_types)) or 'none'}")
            vtype = None
        zones = item.get("availability_zone")
        if zones is not None:
            zlist = [zones] if isinstance(zones, str) else zones
            if not isinstance(zlist, list) or not all(isinstance(z, str) and z for z in zlist):
                errors.append(f"{field}.availability_zone: {zones!r} is not a zone name or a list of zone names")
                zones = None
            else:
                zones = tuple(str(z) for z in zlist) or None
        attachments = item.get("attachments")
        if attachments is None:
            attachments = []
        hosts = []
        if not isinstance(attachments, list):
            errors.append(f"{field}.attachments: expected a list of {{host: name}}, got {type(attachments).__name__}")
        else:
            for i, att in enumerate(attachments):
                afield = f"{field}.attachments[{i}]"
                if not isinstance(att, dict):
                    errors.append(f"{afield}: expected a dict {{host: name}}, got {att!r}")
                    continue
                extra = sorted(str(k) for k in att if k not in ATTACHMENT_KEYS)
                if extra:
                    errors.append(f"{afield}: unknown key(s) {', '.join(extra)}; allowed: host")
                host = att.get("host")
                if not isinstance(host, str) or not host:
                    errors.append(f"{afield}.host: {host!r} is not a host name")
                elif host in hosts:
                    errors.append(f"{afield}.host: {host!r} is listed twice")
                elif consumer_set is not None and host not in consumer_set:
                    errors.append(f"{afield}.host: {host!r} is not a consumer host; known: "
                                  f"{', '.join(sorted(consumer_set)) or 'none'}")
                else:
                    hosts.append(str(host))
        force = item.get("force", False)
        if not isinstance(force, bool):
            errors.append(f"{field}.force: {force!r} is not a boolean")
        description = item.get("description")
        if description is not None and not isinstance(description, str):
            errors.append(f"{field}.description: {description!r} is not a string")
        if vtype is not None:  # without an explicit type, plan() checks the default or the existing volume's type
            problem = _multiattach_error(field, hosts, vtype, volume_types[vtype]["extra_specs"])
            if problem:
                errors.append(problem)
        if len(errors) > before:
            continue
        requests.append(VolumeRequest(
            index=index, name=str(name), state=state, size=size, volume_type=None if vtype is None else str(vtype),
            availability_zones=zones, attachments=hosts, force=force,
            description=None if description is None else str(description)))
    if errors:
        raise ScheduleError(errors)
    return requests


# --------------------------------------------------------------------------------------------------------------
# Planning
# --------------------------------------------------------------------------------------------------------------

def _check_options(volume_types, weight_multiplier, default_volume_type, consumers):
    errors = []
    if isinstance(weight_multiplier, bool) or not isinstance(weight_multiplier, (int, float)) \
            or math.isnan(weight_multiplier) or math.isinf(weight_multiplier):
        errors.append(f"weight_multiplier: {weight_multiplier!r} is not a finite number")
    if default_volume_type is not None and default_volume_type not in volume_types:
        errors.append(f"default_volume_type: {default_volume_type!r} is not a defined volume type; defined: "
                      f"{', '.join(sorted(volume_types)) or 'none'}")
    if consumers is not None and (not isinstance(consumers, list) or not all(isinstance(c, str) for c in consumers)):
        errors.append(f"consumers: {consumers!r} is not a list of host names")
    if errors:
        raise ScheduleError(errors)


class _Planner:
    """State of one planning run; see :func:`plan`."""

    def __init__(self, pools, volume_types, multiplier):
        self.pools = pools
        self.types = volume_types
        self.multiplier = float(multiplier)
        self.errors = []
        self.groups = {}  # (volume type, zones) -> (candidate pools sorted by id, their extents)
        self.existing = {}  # volume name -> [(pool, volume facts)]
        for pool in pools:
            for vol in pool.volumes:
                self.existing.setdefault(vol["name"], []).append((pool, vol))

    def spec(self, req, volume_type, size):
        specs = self.types.get(volume_type, {}).get("extra_specs", {}) if volume_type else {}
        return RequestSpec(name=req.name, size=size, availability_zones=req.availability_zones,
                           volume_type=volume_type, extra_specs=specs)

    def candidates(self, spec):
        """Pools that pass the filters that do not depend on capacity, computed once per (type, zones)."""
        key = (spec.volume_type, spec.availability_zones)
        group = self.groups.get(key)
        if group is None:
            pools = [p for p in self.pools
                     if AvailabilityZoneFilter.passes(p, spec)[0] and CapabilitiesFilter.passes(p, spec)[0]]
            group = (pools, {p.extent for p in pools})
            self.groups[key] = group
        return group

    def no_valid_backend(self, spec):
        reasons = []
        for pool in self.pools:
            for flt in FILTERS:
                ok, reason = flt.passes(pool, spec)
                if not ok:
                    reasons.append(f"{pool.id}: {reason}")
                    break
        return f"No valid backend for {spec.name}: {'; '.join(reasons) or 'no pools reported'}"

    def place(self, spec):
        """Choose a pool for a new volume (filters, then weigher; ties by pool id) and consume from it."""
        pools, extents = self.candidates(spec)
        thin = 1 if spec.thin else 0
        # CapacityFilter.passes() inlined over the cached ``room``: this loop runs requests x pools times.
        if len(extents) == 1:
            need = round_up(spec.size, next(iter(extents)))
            passing = [p for p in pools if p.room[thin] >= need]
        else:
            size = spec.size
            passing = [p for p in pools if p.room[thin] >= round_up(size, p.extent)]
        if not passing:
            self.errors.append(self.no_valid_backend(spec))
            return None, None
        values = [p.virtual_free[thin] for p in passing]
        best, weight = CapacityWeigher.best(values, self.multiplier)  # pools are sorted: ties go to the lowest id
        pool = passing[best]
        vfree = values[best]
        others = len(passing) - 1
        against = f"over {others} other pool{'' if others == 1 else 's'}" if others else "the only pool that passed"
        reason = (f"placed: weight {weight:.2f} (virtual free {'unknown' if vfree is None else format_size(vfree)}) "
                  f"{against}")
        pool.consume(round_up(spec.size, pool.extent))
        return pool, reason


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
        "reason": reason,
    }


def plan(volumes, pools, volume_types=None, weight_multiplier=1.0, default_volume_type=None, consumers=None,
         pinned=None, exclude=None):
    """Plan the inventory's volumes over the reported pools; raise :class:`ScheduleError` if anything is wrong.

    ``volumes`` is ``blockstore_volumes``, ``pools`` the ``backend_facts`` pool dicts, ``volume_types``
    ``blockstore_volume_types``. ``weight_multiplier`` is Cinder's ``capacity_weight_multiplier`` (positive
    spreads to the pool with the most virtual free capacity, negative stacks). ``default_volume_type`` applies
    to new volumes without a type. ``consumers``, when given, lists the hosts attachments may name.
    ``pinned`` maps a volume name to a pool id: a new volume with a pin is placed on that pool only (the
    placement ledger recorded it there before a run that did not finish), after the same filters.
    ``exclude`` maps a volume name to ``{"host", "pool_id", "reason"}``: the volume lives on a storage host that
    did not report; it is validated but neither placed nor changed (action ``unknown``).

    Returns ``{"volumes": [...], "unmanaged": [...], "pools": [...]}`` (plain JSON types): one entry per request
    in order with its ``action`` (create, extend, none, delete, absent) and pool; volumes found on pools but not
    in the inventory (never touched); and each pool's free/provisioned/allocated bytes after the plan.
    """
    types = validate_volume_types(volume_types)
    _check_options(types, weight_multiplier, default_volume_type, consumers)
    requests = validate_requests(volumes, types, default_volume_type, consumers)
    states = load_pools(pools)
    planner = _Planner(states, types, weight_multiplier)
    errors = planner.errors
    entries = [None] * len(requests)
    new = []

    exclude = exclude or {}
    # Existing volumes first: sticky, extend growth consumed before any placement, deletes checked.
    for pos, req in enumerate(requests):
        if req.name in exclude:
            where = exclude[req.name]
            vtype = req.volume_type
            entry = _entry(req, "unknown", None, vtype, types.get(vtype, {}).get("extra_specs", {}) if vtype else {},
                           None, None, where.get("reason") or "host did not report")
            entry.update(host=where.get("host"), pool_id=where.get("pool_id"))
            entries[pos] = entry
            continue
        found = planner.existing.get(req.name, [])
        if len(found) > 1:
            errors.append(f"{req.field}.name: {req.name!r} exists on several pools "
                          f"({', '.join(p.id for p, dummy in found)}); a volume name must be unique")
            continue
        if not found:
            if req.state == "present":
                new.append((pos, req))
            else:
                vtype = req.volume_type
                specs = types.get(vtype, {}).get("extra_specs", {}) if vtype else {}
                entries[pos] = _entry(req, "absent", None, vtype, specs, None, None, "does not exist")
            continue
        pool, vol = found[0]
        current = vol["size_bytes"]
        vtype = req.volume_type if req.volume_type is not None else vol["volume_type"]
        specs = types.get(vtype, {}).get("extra_specs", {}) if vtype else {}
        if req.state == "absent":
            in_use = vol["attached_to"]
            if in_use and not req.force:
                errors.append(f"{req.field}: {req.name} on {pool.id} is in-use (attached to {', '.join(in_use)}); "
                              "set force: true to detach and delete it")
                continue
            reason = f"existing; delete (forced, attached to {', '.join(in_use)})" if in_use else "existing; delete"
            entries[pos] = _entry(req, "delete", pool, vtype, specs, None, current, reason)
            continue
        if req.volume_type is not None and vol["volume_type"] is not None and req.volume_type != vol["volume_type"]:
            errors.append(f"{req.field}.volume_type: {req.name} exists on {pool.id} with volume type "
                          f"{vol['volume_type']}, inventory asks {req.volume_type}; changing the type (retype) "
                          "is not supported")
            continue
        if req.availability_zones and pool.availability_zone not in req.availability_zones:
            errors.append(f"{req.field}.availability_zone: {req.name} exists on {pool.id} in zone "
                          f"{pool.availability_zone}, inventory asks {', '.join(req.availability_zones)}; "
                          "volumes are not moved")
            continue
        problem = req.volume_type is None and _multiattach_error(req.field, req.attachments, vtype, specs)
        if problem:
            errors.append(problem)
            continue
        size = round_up(req.size, pool.extent)
        if size < current:
            errors.append(f"{req.field}.size: volumes never shrink: {req.name} is {format_size(current)} "
                          f"({current} bytes) on {pool.id}, inventory asks {format_size(size)} ({size} bytes)")
            continue
        if size == current:
            entries[pos] = _entry(req, "none", pool, vtype, specs, size, current, "existing")
            continue
        spec = planner.spec(req, vtype, size - current)
        ok, why = CapacityFilter.passes(pool, spec)
        if not ok:
            errors.append(f"No valid backend for {req.name}: extend from {format_size(current)} to "
                          f"{format_size(size)} stays on {pool.id}: {why}")
            continue
        pool.consume(size - current)
        entries[pos] = _entry(req, "extend", pool, vtype, specs, size, current,
                              f"existing; extend by {format_size(size - current)}")

    pinned = pinned or {}
    by_id = {pool.id: pool for pool in states}
    for pos, req in new:
        vtype = req.volume_type if req.volume_type is not None else default_volume_type
        spec = planner.spec(req, vtype, req.size)
        problem = req.volume_type is None and _multiattach_error(req.field, req.attachments, vtype, spec.extra_specs)
        if problem:
            errors.append(problem)
            continue
        if req.name in pinned:
            pool = by_id.get(pinned[req.name])
            why = "did not report" if pool is None else None
            if pool is not None:
                for flt in FILTERS:
                    ok, why = flt.passes(pool, spec)
                    if not ok:
                        break
                else:
                    why = None
            if why:
                errors.append(f"No valid backend for {req.name}: the placement ledger records it on "
                              f"{pinned[req.name]} (a create that did not finish): {why}")
                continue
            pool.consume(round_up(spec.size, pool.extent))
            reason = f"finishing a create recorded on {pool.id} in the placement ledger"
        else:
            pool, reason = planner.place(spec)
        if pool is not None:
            entries[pos] = _entry(req, "create", pool, vtype, spec.extra_specs, round_up(req.size, pool.extent),
                                  None, reason)

    if errors:
        raise ScheduleError(errors)
    requested = {req.name for req in requests}
    unmanaged = [{"name": vol["name"], "pool_id": pool.id, "host": pool.host, "backend": pool.backend,
                  "size_bytes": vol["size_bytes"], "volume_type": vol["volume_type"], "reason": "not in inventory"}
                 for pool in states for vol in sorted(pool.volumes, key=lambda v: v["name"])
                 if vol["name"] not in requested]
    return {"volumes": entries, "unmanaged": unmanaged, "pools": [p.usage() for p in states]}

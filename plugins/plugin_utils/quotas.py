# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quotas on the inventory, checked on the controller in the plan before any change (``blockstore_quotas``).

The names are Cinder's (``cinder/quota.py``, ``VolumeTypeQuotaEngine``, checked against Cinder master
``ab09bc39``): ``volumes``, ``gigabytes`` and ``snapshots``, and per volume type ``volumes_<type>``,
``gigabytes_<type>`` and ``snapshots_<type>`` (``QuotaEngine.add_volume_type_opts``). As in Cinder with
``no_snapshot_gb_quota = false`` (its default), ``gigabytes`` counts the sizes of the volumes *and* of their
snapshots, and a snapshot counts toward the quotas of its volume's type. ``-1`` (or no key) is unlimited.

Where Cinder checks one request against the usage recorded in its database, the inventory is the desired state:
usage is what will exist *after the run*, once every host has converged. So

* a volume whose ``project`` changes (Cinder's volume transfer) counts for the receiving project only;
* a volume with ``state: absent`` does not count (the caller leaves it out; :func:`check_quotas` skips it too);
* a volume on a host that the plan leaves alone (``counted_as: "unmanaged"``) counts for the quotas at the top
  of ``blockstore_quotas`` only (``volumes``, ``gigabytes_gold``...), never for those of a project.

The top-level keys limit the whole inventory, which is where this differs from Cinder, whose top-level quota
values are defaults applied to each project separately. Per project limits are under ``projects``.

Pure: plain data in, a normalized dict or a sorted list of messages out; no Ansible import.
"""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._naming import type_name
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError

__all__ = ["QUOTAS_FIELD", "RESOURCES", "UNLIMITED", "check_quotas", "validate_quotas"]

QUOTAS_FIELD = "blockstore_quotas"
TYPES_FIELD = "blockstore_volume_types"
RESOURCES = ("volumes", "gigabytes", "snapshots")  # Cinder's order in VolumeTypeQuotaEngine
PROJECTS = "projects"
UNLIMITED = -1
GiB = 2**30
NAMES = 10  # volumes named per exceeded quota, then counted
# Cinder quotas that ember.blockstore does not implement: named in the error so nobody thinks a typo was meant.
NOT_SUPPORTED = {
    "per_volume_gigabytes": "Cinder's per_volume_gigabytes is not supported",
    "backups": "there are no backups to count",
    "backup_gigabytes": "there are no backups to count",
    "groups": "there are no groups to count",
}
ALLOWED = "volumes, gigabytes, snapshots, volumes_<type>, gigabytes_<type>, snapshots_<type>"


def _type_name(key):
    """(resource, volume type) for ``gigabytes_gold``, else ``None``."""
    for resource in RESOURCES:
        if key.startswith(resource + "_") and len(key) > len(resource) + 1:
            return resource, key[len(resource) + 1:]
    return None


def _limit(field, value):
    """The integer limit, or an error message naming the field and the value."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None, (f"{field}: {value!r} is not an integer; give a whole number (GiB for gigabytes), "
                      f"or -1 for unlimited")
    if value < UNLIMITED:
        return None, f"{field}: {value} is below -1; give 0 or more, or -1 for unlimited"
    return value, None


def _validate_limits(field, limits, types, errors, projects_allowed):
    """The limited keys of one level (the top of ``blockstore_quotas`` or one project); appends to ``errors``."""
    clean = {}
    for key, value in limits.items():
        if not isinstance(key, str):
            errors.append(f"{field}: key {key!r} is not a string; allowed: {ALLOWED}"
                          + (f", {PROJECTS}" if projects_allowed else ""))
            continue
        where = f"{field}.{key}"
        if key == PROJECTS and projects_allowed:
            continue
        if key in NOT_SUPPORTED:
            errors.append(f"{where}: unknown quota ({NOT_SUPPORTED[key]}); allowed: {ALLOWED}"
                          + (f", {PROJECTS}" if projects_allowed else ""))
            continue
        typed = None if key in RESOURCES else _type_name(key)
        if key not in RESOURCES and typed is None:
            nested = " (projects are not nested)" if key == PROJECTS else ""
            errors.append(f"{where}: unknown key{nested}; allowed: {ALLOWED} (<type> a key of {TYPES_FIELD})"
                          + (f", {PROJECTS}" if projects_allowed else ""))
            continue
        if typed is not None and typed[1] not in types:
            defined = ", ".join(sorted(types)) if types else "none are defined"
            errors.append(f"{where}: volume type {typed[1]!r} is not a key of {TYPES_FIELD} ({defined})")
            continue
        limit, error = _limit(where, value)
        if error:
            errors.append(error)
        elif limit != UNLIMITED:
            clean[key] = limit
    return clean


def validate_quotas(quotas, volume_types=None):
    """Validate ``blockstore_quotas``; return it normalized, or raise :class:`ScheduleError` listing every problem.

    ``volume_types`` is ``blockstore_volume_types`` (or the output of ``validate_volume_types``): only its keys are
    read. The result is ``{<key>: int >= 0, ..., "projects": {<project>: {<key>: int >= 0, ...}}}``: unlimited
    keys (-1) are left out, ``projects`` is always there (a project whose keys are all unlimited maps to ``{}``).
    ``None`` or ``{}`` is unlimited. Each message names the field and the value
    (``blockstore_quotas.projects.web.gigabytes: 'ten' is not an integer...``)."""
    if quotas is None:
        return {PROJECTS: {}}
    if not isinstance(quotas, dict):
        raise ScheduleError(f"{QUOTAS_FIELD}: expected a dict of quota name -> limit, got {type_name(quotas)}")
    types = set(volume_types) if isinstance(volume_types, dict) else set()
    errors = []
    result = _validate_limits(QUOTAS_FIELD, quotas, types, errors, projects_allowed=True)
    projects = quotas.get(PROJECTS)
    result[PROJECTS] = {}
    if projects is not None and not isinstance(projects, dict):
        errors.append(f"{QUOTAS_FIELD}.{PROJECTS}: expected a dict of project name -> quotas, got "
                      f"{type_name(projects)}")
        projects = None
    for project, limits in (projects or {}).items():
        if not isinstance(project, str) or not project.strip():
            errors.append(f"{QUOTAS_FIELD}.{PROJECTS}: project name {project!r} is not a non-empty string")
            continue
        field = f"{QUOTAS_FIELD}.{PROJECTS}.{project}"
        if limits is None:
            limits = {}
        if not isinstance(limits, dict):
            errors.append(f"{field}: expected a dict of quota name -> limit, got {type_name(limits)}")
            continue
        result[PROJECTS][project] = _validate_limits(field, limits, types, errors, projects_allowed=False)
    if errors:
        raise ScheduleError(errors)
    return result


def _gib(num_bytes):
    """``num_bytes`` in GiB with up to 2 decimals, rounded *up*, so that one byte over 100 GiB reads 100.01."""
    hundredths = -(-num_bytes * 100 // GiB)
    return f"{hundredths // 100}.{hundredths % 100:02d}".rstrip("0").rstrip(".") + " GiB"


def _usage(volume_bytes, snapshot_bytes):
    """``12.5 GiB (13421772800 bytes; volumes 10 GiB, snapshots 2.5 GiB)``: the exact bytes when the GiB figure is
    rounded, the parts when snapshots count."""
    used = volume_bytes + snapshot_bytes
    details = [f"{used} bytes"] if used * 100 % GiB else []
    if snapshot_bytes:
        details.append(f"volumes {_gib(volume_bytes)}, snapshots {_gib(snapshot_bytes)}")
    return _gib(used) + (f" ({'; '.join(details)})" if details else "")


def _names(names):
    shown = ", ".join(names[:NAMES])
    return shown + (f" and {len(names) - NAMES} more" if len(names) > NAMES else "")


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


class _Volume:
    """One volume of the after-the-run state, with what it counts."""

    __slots__ = ("label", "name", "project", "size", "snapshot_bytes", "snapshots", "unmanaged", "volume_type")

    def __init__(self, item):
        self.name = str(item.get("name"))
        self.unmanaged = item.get("counted_as") == "unmanaged"
        self.label = self.name + (" (unmanaged)" if self.unmanaged else "")
        self.project = None if self.unmanaged else item.get("project")
        self.volume_type = item.get("volume_type")
        self.size = int(item.get("size_bytes") or 0)
        snapshots = [s for s in item.get("snapshots") or [] if isinstance(s, dict)]
        self.snapshots = len(snapshots)
        self.snapshot_bytes = sum(int(s.get("size_bytes") or 0) for s in snapshots)

    def groups(self):
        """The (project, volume type) groups this volume counts in; ``None`` is "all"."""
        out = [(None, None)]
        if self.volume_type:
            out.append((None, self.volume_type))
        if self.project:
            out.append((self.project, None))
            if self.volume_type:
                out.append((self.project, self.volume_type))
        return out


def _what(resource, volume_type, project):
    text = resource
    if volume_type:
        text += f" of volume type {volume_type}"
    if project:
        text += f" in project {project}"
    return text


def _message(key, resource, volume_type, project, limit, volumes):
    """The error for one exceeded quota (as Cinder's OverQuota: the resource, the quota, the usage), or ``None``."""
    head = f"{key}: quota exceeded for {_what(resource, volume_type, project)}"
    if resource == "volumes":
        if len(volumes) <= limit:
            return None
        names = sorted(v.label for v in volumes)
        return (f"{head}: limit {limit}, the inventory would have {len(volumes)}: {_names(names)}; raise the "
                f"quota or remove volumes")
    if resource == "snapshots":
        holders = [v for v in volumes if v.snapshots]
        used = sum(v.snapshots for v in holders)
        if used <= limit:
            return None
        holders.sort(key=lambda v: (-v.snapshots, v.label))
        names = [f"{v.name} ({'unmanaged, ' if v.unmanaged else ''}{_plural(v.snapshots, 'snapshot')})"
                 for v in holders]
        return (f"{head}: limit {limit}, the inventory would have {used} of {_plural(len(holders), 'volume')}: "
                f"{_names(names)}; raise the quota or delete snapshots")
    volume_bytes = sum(v.size for v in volumes)
    snapshot_bytes = sum(v.snapshot_bytes for v in volumes)
    used = volume_bytes + snapshot_bytes
    if used <= limit * GiB:
        return None
    names = [v.label for v in sorted(volumes, key=lambda v: (-(v.size + v.snapshot_bytes), v.label))]
    return (f"{head}: limit {limit} GiB, the inventory would use {_usage(volume_bytes, snapshot_bytes)} in "
            f"{_plural(len(volumes), 'volume')}, largest first: {_names(names)}; raise the quota, or shrink or "
            f"remove volumes or snapshots")


def _limits(quotas):
    """(key in inventory terms, resource, volume type, project, limit) for every limited quota."""
    def level(prefix, limits, project):
        for key, limit in limits.items():
            if key == PROJECTS or isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
                continue
            resource, volume_type = (key, None) if key in RESOURCES else (_type_name(key) or (None, None))
            if resource is not None:
                yield f"{prefix}.{key}", resource, volume_type, project, limit

    yield from level(QUOTAS_FIELD, quotas, None)
    for project, limits in (quotas.get(PROJECTS) or {}).items():
        yield from level(f"{QUOTAS_FIELD}.{PROJECTS}.{project}", limits or {}, project)


def check_quotas(volumes, quotas):
    """Messages, one per exceeded quota and sorted by quota key, for the volumes that will exist after the run.

    ``quotas`` is the output of :func:`validate_quotas` (a negative limit is unlimited). ``volumes`` is a list of
    ``{"name": str, "project": str | None, "volume_type": str | None, "size_bytes": int,
    "snapshots": [{"name": str, "size_bytes": int}], "counted_as": "inventory" | "unmanaged"}`` (``counted_as``
    optional, default ``inventory``; ``unmanaged`` counts for the top-level quotas only and is named
    ``<name> (unmanaged)``; an item with ``state: absent`` is skipped). Usage: ``volumes`` counts volumes,
    ``snapshots`` counts snapshots, ``gigabytes`` is the sum of the volume and snapshot sizes in GiB (a limit L
    allows L * 2**30 bytes). An empty list means every quota holds."""
    groups = {}
    for item in volumes or []:
        if not isinstance(item, dict) or item.get("state") == "absent":
            continue
        volume = _Volume(item)
        for group in volume.groups():
            groups.setdefault(group, []).append(volume)
    messages = []
    for key, resource, volume_type, project, limit in _limits(quotas or {}):
        message = _message(key, resource, volume_type, project, limit, groups.get((project, volume_type), []))
        if message:
            messages.append((key, message))
    return [message for dummy, message in sorted(messages)]

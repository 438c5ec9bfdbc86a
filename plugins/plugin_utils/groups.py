# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Group snapshots (``blockstore_groups``): Cinder's generic volume groups and their group snapshots.

What it follows in openstack/cinder: ``cinder/volume/manager.py`` ``create_group_snapshot`` (and
``delete_group_snapshot``, ``revert_to_snapshot`` for each member). The LVM driver has no group support, so Cinder's
generic path (``_create_group_snapshot_generic``) takes each member's snapshot in turn; a group snapshot is the set
of member snapshots that share its id. Here a group snapshot ``<s>`` of group ``<g>`` is, for every volume of the
group, a snapshot named ``<s>`` tagged ``ember.group=<g>``. What Cinder leaves to the hypervisor (quiescing the
guests) is done by the ``freeze`` module on the consumers (fsfreeze, or dm suspend) around the snapshots.

The plan does the work in three steps, all before any change:

1. :func:`validate_groups` checks ``blockstore_groups`` against the inventory's volumes (the structure, unknown or
   absent volumes, a volume in two groups, a group snapshot name that a volume also lists among its own snapshots).
2. :func:`expand_volumes` adds each group snapshot to its members' ``snapshots`` (a copy of the inventory), so
   the scheduler checks and plans them as any snapshot: capacity, quotas, revert rules (latest only, detached,
   same size), delete. :func:`rename_errors` makes its messages name the group field instead of the injected one.
3. :func:`plan_groups` marks the members' snapshot actions with their group, refuses what a group cannot have
   (a member on an NFS backend, or on a storage host that did not report; an existing snapshot of the name that
   is not the group's) and returns the groups' section of the plan.
"""

from __future__ import annotations

import re

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    show_value,
    unknown_keys,
    validate_text,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import validate_snapshot_name

__all__ = ["FIELD", "GROUP_KEYS", "SNAPSHOT_KEYS", "validate_groups", "expand_volumes", "rename_errors",
           "plan_groups", "FREEZE_TIMEOUT_MAX", "freeze_failures", "plan_lines", "report_lines"]

FIELD = "blockstore_groups"
GROUP_KEYS = frozenset(("name", "volumes", "snapshots", "freeze", "freeze_timeout", "description"))
SNAPSHOT_KEYS = frozenset(("name", "state", "description"))
SNAPSHOT_STATES = ("present", "absent", "reverted")
FREEZE_TIMEOUT_DEFAULT = 30
FREEZE_TIMEOUT_MAX = 3600
_INJECTED = re.compile(r"blockstore_volumes\[(\d+)\]\.snapshots\[(\d+)\]")


def _type_name(value):
    return type(value).__name__


def validate_groups(groups, volumes):
    """Validate ``blockstore_groups`` against ``volumes`` (``blockstore_volumes``); return ``(clean, errors)``.

    ``clean``: one dict per group, ``{field, name, volumes: [names], snapshots: [{field, name, state,
    description}], freeze: bool, freeze_timeout: seconds}``. Errors name the field and the value: not a list,
    unknown keys, a bad or repeated group name, an empty volume list, a volume that ``blockstore_volumes`` does not
    list or declares absent, a volume listed twice or in two groups, a bad snapshot name, state or description, a
    snapshot listed twice, a group snapshot name that one of its volumes lists among its own ``snapshots``, more
    than one ``reverted`` snapshot in a group, ``freeze`` not a boolean, ``freeze_timeout`` not a whole number of
    seconds from 1 to 3600."""
    if groups is None:
        return [], []
    if not isinstance(groups, list):
        return [], ["%s: expected a list of groups ({name, volumes, snapshots}), got %s"
                    % (FIELD, _type_name(groups))]
    declared = {}
    for item in volumes or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            declared[item["name"]] = item
    clean, errors, names, member_of = [], [], {}, {}
    for index, group in enumerate(groups):
        field = "%s[%d]" % (FIELD, index)
        if not isinstance(group, dict):
            errors.append("%s: expected a dict {name, volumes, snapshots}, got %s" % (field, show_value(group)))
            continue
        before = len(errors)
        unknown = unknown_keys(field, group, GROUP_KEYS)
        if unknown:
            errors.append(unknown)
        name = group.get("name")
        try:
            validate_volume_name(name, field + ".name")
        except NameError_ as exc:
            errors.append(str(exc).replace("volume name", "group name"))
            name = None
        if name is not None:
            if name in names:
                errors.append("%s.name: %r is already the name of %s" % (field, name, names[name]))
            names.setdefault(name, field)
        if group.get("description") is not None:
            try:
                validate_text(group["description"], field + ".description", 255, "description")
            except NameError_ as exc:
                errors.append(str(exc))
        members = _members(group.get("volumes"), field, name, declared, member_of, errors)
        snapshots = _snapshots(group.get("snapshots"), field, members, declared, errors)
        freeze = group.get("freeze", True)
        if not isinstance(freeze, bool):
            errors.append("%s.freeze: %s is not a boolean" % (field, show_value(freeze)))
        timeout = group.get("freeze_timeout", FREEZE_TIMEOUT_DEFAULT)
        if isinstance(timeout, bool) or not isinstance(timeout, int) or not 1 <= timeout <= FREEZE_TIMEOUT_MAX:
            errors.append("%s.freeze_timeout: %s is not a whole number of seconds from 1 to %d (how long the "
                          "consumers' file systems may stay frozen)" % (field, show_value(timeout), FREEZE_TIMEOUT_MAX))
        if len(errors) > before:
            continue
        clean.append({"field": field, "name": name, "volumes": members, "snapshots": snapshots, "freeze": freeze,
                      "freeze_timeout": timeout, "description": group.get("description")})
    return clean, errors


def _members(members, field, group, declared, member_of, errors):
    if not isinstance(members, list) or not members:
        errors.append("%s.volumes: expected a non-empty list of volume names, got %s"
                      % (field, show_value(members)))
        return []
    out = []
    for pos, name in enumerate(members):
        vfield = "%s.volumes[%d]" % (field, pos)
        if not isinstance(name, str) or name not in declared:
            errors.append("%s: %s is not a volume of blockstore_volumes" % (vfield, show_value(name)))
            continue
        if declared[name].get("state", "present") != "present":
            errors.append("%s: volume %s is declared absent; take it out of the group first" % (vfield, name))
            continue
        if name in out:
            errors.append("%s: volume %s is listed twice" % (vfield, name))
            continue
        if name in member_of:
            errors.append("%s: volume %s is already in %s (a volume belongs to one group)"
                          % (vfield, name, member_of[name]))
            continue
        member_of[name] = "group %s (%s)" % (group, field) if group else field
        out.append(name)
    return out


def _snapshots(snapshots, field, members, declared, errors):
    if snapshots is None:
        return []
    if not isinstance(snapshots, list):
        errors.append("%s.snapshots: expected a list of {name, state, description}, got %s"
                      % (field, _type_name(snapshots)))
        return []
    out, seen = [], {}
    for pos, snap in enumerate(snapshots):
        sfield = "%s.snapshots[%d]" % (field, pos)
        if not isinstance(snap, dict):
            errors.append("%s: expected a dict with at least a name, got %s" % (sfield, show_value(snap)))
            continue
        before = len(errors)
        unknown = unknown_keys(sfield, snap, SNAPSHOT_KEYS)
        if unknown:
            errors.append(unknown)
        name = snap.get("name")
        try:
            validate_snapshot_name(name, sfield + ".name")
        except NameError_ as exc:
            errors.append(str(exc))
            name = None
        if name is not None:
            if name in seen:
                errors.append("%s.name: %r is already listed as %s" % (sfield, name, seen[name]))
            seen.setdefault(name, sfield)
            for volume in members:
                own = declared[volume].get("snapshots")
                if isinstance(own, list) and any(isinstance(s, dict) and s.get("name") == name for s in own):
                    errors.append("%s.name: %r is also a snapshot volume %s lists itself (blockstore_volumes "
                                  "snapshots); a group snapshot gives every member a snapshot of its name: rename "
                                  "one of them" % (sfield, name, volume))
        state = snap.get("state", "present")
        if state not in SNAPSHOT_STATES:
            errors.append("%s.state: %s is not one of %s" % (sfield, show_value(state), ", ".join(SNAPSHOT_STATES)))
        if snap.get("description") is not None:
            try:
                validate_text(snap["description"], sfield + ".description", 255, "description")
            except NameError_ as exc:
                errors.append(str(exc))
        if len(errors) > before:
            continue
        out.append({"field": sfield, "name": name, "state": state, "description": snap.get("description")})
    reverts = [s["field"] for s in out if s["state"] == "reverted"]
    if len(reverts) > 1:
        errors.append("%s.snapshots: %d snapshots with state: reverted (%s); a group is reverted to one group "
                      "snapshot" % (field, len(reverts), ", ".join(reverts)))
    return out


def expand_volumes(volumes, groups):
    """``(volumes, injected)``: a copy of ``volumes`` in which each member of a group lists the group's snapshots
    after its own (``{name, state, description}``), and ``{(volume index, snapshot index): (snapshot field,
    volume)}`` of the injected ones (for :func:`rename_errors`). ``volumes`` itself is not changed; without groups
    it is returned as it is."""
    if not groups:
        return volumes, {}
    group_of = {name: group for group in groups for name in group["volumes"]}
    out, injected = [], {}
    for index, item in enumerate(volumes or []):
        group = group_of.get(item.get("name")) if isinstance(item, dict) else None
        if group is None or not group["snapshots"]:
            out.append(item)
            continue
        own = item.get("snapshots")
        own = list(own) if isinstance(own, list) else []
        for snap in group["snapshots"]:
            injected[(index, len(own))] = (snap["field"], item["name"])
            extra = {"name": snap["name"], "state": snap["state"]}
            if snap["description"] is not None:
                extra["description"] = snap["description"]
            own.append(extra)
        out.append(dict(item, snapshots=own))
    return out, injected


def rename_errors(errors, injected):
    """The scheduler's messages with the field of each injected snapshot (``blockstore_volumes[i].snapshots[k]``)
    replaced by the group snapshot's (``blockstore_groups[g].snapshots[j] (volume <name>)``)."""
    if not injected:
        return list(errors)

    def swap(match):
        key = (int(match.group(1)), int(match.group(2)))
        if key not in injected:
            return match.group(0)
        field, volume = injected[key]
        return "%s (volume %s)" % (field, volume)
    return [_INJECTED.sub(swap, str(error)) for error in errors]


def _consumers(entry, facts, consumer_initiators):
    """The consumers that may write to ``entry``'s volume: those the inventory attaches it to and those whose
    initiator its export lists now (its facts' ``attached_to``)."""
    hosts = set(entry.get("attachments") or [])
    by_iqn = {iqn: host for host, iqn in (consumer_initiators or {}).items() if iqn}
    for iqn in (facts or {}).get("attached_to") or []:
        if iqn in by_iqn:
            hosts.add(by_iqn[iqn])
    return sorted(hosts)


def plan_groups(groups, result, pools, consumer_initiators=None):
    """``(section, errors)`` for the plan's ``groups`` key, after the scheduler planned ``result`` (its
    ``volumes``) over ``pools`` (the reported pool facts).

    Each member's snapshot action of a group snapshot gets ``group``. Refused, naming the group's field: a member
    on an ``nfs`` backend (group snapshots are LVM snapshots here), a member whose storage host did not report
    (action ``unknown``; a group snapshot is all members or none), an existing snapshot of the name that is not
    tagged with the group.

    ``section``: one dict per group, ``{name, freeze, freeze_timeout, volumes: [{name, host, vg, consumers}],
    snapshots: [{name, state, action, members: [{volume, host, action}]}]}``; a group snapshot's ``action`` is
    ``create`` when any member's snapshot is created (the others exist), else ``delete``, ``revert``, ``update``
    or ``none``. ``freeze`` lists per consumer the volumes to freeze (``{consumer: {volumes,
    timeout}}``, ``freeze_consumers``) when a group snapshot is created with ``freeze: true``."""
    if not groups:
        return [], []
    entries = {entry["name"]: entry for entry in result["volumes"]}
    facts = {}
    for pool in pools or []:
        for vol in pool.get("volumes") or []:
            facts[(pool["id"], vol["name"])] = vol
    section, errors = [], []
    for group in groups:
        name, field = group["name"], group["field"]
        members, problems = [], []
        for pos, volume in enumerate(group["volumes"]):
            entry = entries[volume]
            vfield = "%s.volumes[%d]" % (field, pos)
            if entry["action"] == "unknown":
                problems.append("%s: volume %s is on storage host %s, which did not report; a group snapshot is "
                                "taken of all its volumes or none (%s)"
                                % (vfield, volume, entry.get("host") or "?", entry.get("reason") or ""))
                continue
            if entry.get("driver") == "nfs":
                problems.append("%s: volume %s is on the nfs backend %s; group snapshots are taken of volumes of "
                                "LVM backends only (lvm, lvm_thin)" % (vfield, volume, entry.get("pool_id")))
                continue
            fact = facts.get((entry.get("pool_id"), volume)) or {}
            members.append({"name": volume, "host": entry.get("host"), "vg": entry.get("vg"),
                            "consumers": _consumers(entry, fact, consumer_initiators), "entry": entry,
                            "facts": {s["name"]: s for s in fact.get("managed_snapshots") or []}})
        errors.extend(problems)
        if problems:
            continue
        snaps = []
        for snap in group["snapshots"]:
            done = []
            for member in members:
                act = next((a for a in member["entry"].get("snapshots") or [] if a["name"] == snap["name"]), None)
                if act is None:  # e.g. a member that migrates in this run (its entry has no snapshot actions)
                    errors.append("%s: volume %s of group %s has no snapshot action for %s in this run (it "
                                  "migrates or is not planned); take the group snapshot in a later run"
                                  % (snap["field"], member["name"], name, snap["name"]))
                    continue
                act["group"] = name
                have = member["facts"].get(snap["name"])
                if have is not None and have.get("group") != name:
                    errors.append("%s.name: volume %s already has a snapshot %s that %s; it is not counted as part "
                                  "of group %s: delete it (a state: absent entry under the volume) or name the group "
                                  "snapshot otherwise"
                                  % (snap["field"], member["name"], snap["name"],
                                     "belongs to group %s" % have["group"] if have.get("group") else
                                     "was not taken with a group", name))
                done.append({"volume": member["name"], "host": member["host"], "action": act["action"]})
            actions = {m["action"] for m in done}
            action = next((a for a in ("create", "delete", "revert", "update") if a in actions), "none")
            snaps.append({"name": snap["name"], "state": snap["state"], "action": action, "members": done,
                          "partial": action == "create" and actions != {"create"}})
        freeze = {}
        if group["freeze"] and any(s["action"] == "create" for s in snaps):
            for member in members:
                for consumer in member["consumers"]:
                    spot = freeze.setdefault(consumer, {"volumes": [], "timeout": group["freeze_timeout"]})
                    spot["volumes"].append(member["name"])
        section.append({"name": name, "freeze": group["freeze"], "freeze_timeout": group["freeze_timeout"],
                        "volumes": [{"name": m["name"], "host": m["host"], "vg": m["vg"],
                                     "consumers": m["consumers"]} for m in members],
                        "snapshots": snaps, "freeze_consumers": freeze})
    return section, errors


def freeze_failures(plan, freeze_results):
    """The consumers that had something to freeze for the plan's group snapshots (``freeze_consumers``) and whose
    freeze task did not succeed (``freeze_results``: ``{consumer: registered result}``; failed, unreachable,
    skipped or missing - a consumer that left the run earlier - all count), sorted."""
    wanted = {host for group in plan.get("groups") or [] for host in group.get("freeze_consumers") or {}}
    bad = []
    for host in sorted(wanted):
        result = (freeze_results or {}).get(host) or {}
        if not result or result.get("failed") or result.get("unreachable") or result.get("skipped"):
            bad.append(host)
    return bad


def plan_lines(plan):
    """One line per group snapshot of the plan, for the plan's display: ``group <g> snapshot <s>: <action> on
    <n> volume(s) (<host>: <volumes>; ...), freeze on <consumers> (at most <t> s)``; none without groups."""
    lines = []
    for group in plan.get("groups") or []:
        for snap in group["snapshots"]:
            hosts = {}
            for member in snap["members"]:
                hosts.setdefault(member["host"], []).append("%s (%s)" % (member["volume"], member["action"]))
            where = "; ".join("%s: %s" % (host, ", ".join(vols)) for host, vols in sorted(hosts.items()))
            line = "group %s snapshot %s: %s | %s" % (group["name"], snap["name"], snap["action"], where)
            if snap["action"] == "create":
                if not group["freeze"]:
                    line += " | no freeze (crash-consistent)"
                elif group["freeze_consumers"]:
                    consumers = ", ".join(sorted(group["freeze_consumers"]))
                    line += " | freeze on %s for at most %d s" % (consumers, group["freeze_timeout"])
                else:
                    line += " | nothing to freeze (no consumer)"
                if snap.get("partial"):
                    line += " | some members have it already: the new ones are not of the same point in time"
            lines.append(line)
    return lines


def report_lines(plan, group_results=None, thaw_results=None, check_mode=False):
    """``(lines, errors)`` of the report for the plan's group snapshots: per group snapshot what was done (from the
    snapshot module's results on each storage node, ``group_results``) and per consumer how long it was frozen
    (``thaw_results``, the thaw task's registered results); errors for members not taken."""
    lines, errors = [], []
    taken = {}
    for result in (group_results or {}).values():
        for item in (result or {}).get("snapshots") or []:
            if isinstance(item, dict) and item.get("group") and not item.get("failed"):
                taken[(item.get("volume"), item.get("name"))] = item
    for group in plan.get("groups") or []:
        for snap in group["snapshots"]:
            if snap["action"] != "create":
                done = snap["action"]
                if done == "none":
                    done = "exists" if snap["state"] == "present" else snap["state"]
                lines.append("group %s snapshot %s: %s" % (group["name"], snap["name"], done))
                continue
            made = [m for m in snap["members"] if m["action"] != "create" or (m["volume"], snap["name"]) in taken]
            missing = [m["volume"] for m in snap["members"] if m not in made]
            if check_mode:
                state = "would be taken on %d volume(s)" % len(snap["members"])
            elif missing:
                state = "NOT taken on %s" % ", ".join(missing)
                errors.append("group %s snapshot %s was not taken on %s (see the group snapshot tasks)"
                              % (group["name"], snap["name"], ", ".join(missing)))
            else:
                state = "taken on %d volume(s)" % len(snap["members"])
            lines.append("group %s snapshot %s: %s" % (group["name"], snap["name"], state))
    for host, result in sorted((thaw_results or {}).items()):
        if not result or result.get("skipped") or result.get("frozen_at") is None:
            continue
        seconds = result.get("frozen_seconds")
        lines.append("consumer %s: %s frozen %s%s" % (
            host, ", ".join((result.get("mount_points") or []) + (result.get("maps") or [])) or "nothing",
            "for %.1f s" % seconds if isinstance(seconds, (int, float)) else "",
            " (the watchdog thawed at freeze_timeout: not consistent)" if result.get("expired") else ""))
    return lines, errors

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reviewable plans: save the plan a run computed, apply exactly that file later.

A saved plan (``blockstore_plan_out``) holds every volume's decision (create, extend, delete, none, with size,
pool and attachments), the managed volumes the inventory does not list, and the state the plan was computed
from: per storage host its ledger generation and, per pool, whether it exists, its size and each managed
volume (size, status, consumers, snapshots); per consumer its sessions. No secret is in it.

Applying it (``blockstore_plan_in``) recomputes the plan from the hosts and the inventory of that run and refuses,
before any change, when the state differs from the saved one (another run, or a hand, changed a host since) or
the recomputed plan differs from the saved one (the inventory changed), naming each difference. Capacity
figures that move without any change of configuration (free space of a thin pool as data is written) are not part
of the state.
"""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._size import format_size

__all__ = ["FORMAT", "plan_state", "saved_plan", "saved_plan_differences"]

FORMAT = 1
# The keys of a plan entry that make its decision (the reason text may be worded differently).
_DECISION = ("name", "state", "action", "host", "pool_id", "size_bytes", "volume_type", "availability_zone",
             "attachments")
_MAX_LINES = 50


def plan_state(gathers, initiator_facts=None):
    """What a plan depends on, from the facts of one run: ``{"storage": {host: {...}}, "consumers": {host:
    [target IQNs]}}``. ``gathers``: ``{host: backend_info result}``; ``initiator_facts``: ``{consumer:
    initiator_info result}``. A host that did not report has ``None``."""
    storage = {}
    for host, gather in sorted((gathers or {}).items()):
        if not gather or gather.get("failed") or gather.get("unreachable") or "pools" not in gather:
            storage[host] = None
            continue
        pools = {}
        for pool in gather.get("pools") or []:
            pools[pool["id"]] = {
                "exists": bool(pool.get("exists")), "total_bytes": pool.get("total_bytes"),
                "volumes": {v["name"]: {"size_bytes": v.get("size_bytes"), "status": v.get("status"),
                                        "attached_to": sorted(v.get("attached_to") or []),
                                        "snapshots": sorted(v.get("snapshots") or [])}
                            for v in pool.get("volumes") or []},
            }
        storage[host] = {"ledger_generation": ((gather.get("ledger") or {}).get("generation")), "pools": pools}
    consumers = {}
    for host, facts in sorted((initiator_facts or {}).items()):
        consumers[host] = sorted(s.get("target_iqn") for s in (facts or {}).get("sessions") or []
                                 if s.get("target_iqn"))
    return {"storage": storage, "consumers": consumers}


def _decision(entry):
    out = {key: entry.get(key) for key in _DECISION}
    out["attachments"] = sorted(out["attachments"] or [])
    return out


def saved_plan(plan, state, created_at=None, created_by=None):
    """The file a run saves: ``{"format", "created_at", "created_by", "state", "volumes", "unmanaged"}``."""
    return {
        "format": FORMAT, "created_at": created_at, "created_by": created_by, "state": state,
        "volumes": [_decision(entry) for entry in plan.get("volumes") or []],
        "unmanaged": sorted(v["name"] for v in plan.get("unmanaged") or []),
    }


def _size(value):
    return format_size(value) if isinstance(value, int) else str(value)


def _state_differences(saved, now):
    out = []
    for host in sorted(set(saved["storage"]) | set(now["storage"])):
        before, after = saved["storage"].get(host), now["storage"].get(host)
        if before == after:
            continue
        if before is None or after is None:
            out.append("storage host %s: %s" % (host, "did not report when the plan was made" if before is None
                                                else "did not report now" if host in now["storage"]
                                                else "is not in the inventory now"))
            continue
        if before["ledger_generation"] != after["ledger_generation"]:
            out.append("storage host %s: ledger generation %s when the plan was made, %s now (another run changed "
                       "it)" % (host, before["ledger_generation"], after["ledger_generation"]))
        for pool_id in sorted(set(before["pools"]) | set(after["pools"])):
            one, two = before["pools"].get(pool_id), after["pools"].get(pool_id)
            if one == two:
                continue
            if one is None or two is None or one["exists"] != two["exists"]:
                out.append("pool %s: %s" % (pool_id, "appeared" if not (one or {}).get("exists") else "is gone"))
                continue
            if one["total_bytes"] != two["total_bytes"]:
                out.append("pool %s: size %s then, %s now"
                           % (pool_id, _size(one["total_bytes"]), _size(two["total_bytes"])))
            for name in sorted(set(one["volumes"]) | set(two["volumes"])):
                a, b = one["volumes"].get(name), two["volumes"].get(name)
                if a == b:
                    continue
                if a is None or b is None:
                    out.append("pool %s: volume %s %s since the plan was made" % (
                        pool_id, name, "was created" if a is None else "was deleted"))
                    continue
                changes = ["%s %s -> %s" % (key, _size(a[key]) if key == "size_bytes" else a[key],
                                            _size(b[key]) if key == "size_bytes" else b[key])
                           for key in ("size_bytes", "status", "attached_to", "snapshots") if a[key] != b[key]]
                out.append("pool %s: volume %s: %s" % (pool_id, name, ", ".join(changes)))
    for host in sorted(set(saved["consumers"]) | set(now["consumers"])):
        before, after = saved["consumers"].get(host), now["consumers"].get(host)
        if before != after:
            out.append("consumer %s: sessions %s then, %s now" % (host, before if before is not None else "unknown",
                                                                  after if after is not None else "unknown"))
    return out


def _plan_differences(saved, now):
    out = []
    before = {v["name"]: v for v in saved["volumes"]}
    after = {v["name"]: v for v in now["volumes"]}
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        if a is None or b is None:
            out.append("volume %s: %s" % (name, "not in the saved plan" if a is None else "not in the inventory now"))
            continue
        changes = ["%s %s -> %s" % (key, _size(a[key]) if key == "size_bytes" else a[key],
                                    _size(b[key]) if key == "size_bytes" else b[key])
                   for key in _DECISION if key != "name" and a.get(key) != b.get(key)]
        out.append("volume %s: %s" % (name, ", ".join(changes)))
    if saved["unmanaged"] != now["unmanaged"]:
        out.append("volumes not in the inventory: %s then, %s now" % (saved["unmanaged"], now["unmanaged"]))
    return out


def saved_plan_differences(saved, plan, state):
    """Why the saved plan ``saved`` may not be applied now, as lines (empty: it may). ``plan`` and ``state`` are
    this run's (:func:`plan_state`)."""
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        return ["the saved plan is not a format %d ember.blockstore plan (format: %r)"
                % (FORMAT, saved.get("format") if isinstance(saved, dict) else None)]
    lines = _state_differences(saved["state"], state)
    lines += _plan_differences(saved, saved_plan(plan, state))
    if len(lines) > _MAX_LINES:
        lines = lines[:_MAX_LINES] + ["... and %d more differences" % (len(lines) - _MAX_LINES)]
    return lines

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declarative detach: which initiators each existing volume loses in a run (the plan's ``detach`` list).

A volume's export records the IQNs of the consumers it is attached to (``attached_to`` in the pool facts, from
its target file). An IQN there that no attachment in the inventory asks for any more is detached: the consumer
logs out and drops its node record (``connection`` with ``state: absent``), then the storage node takes the
initiator out of the target's ACL, or removes the export when no attachment is left. The consumer logs out
first; the storage node narrows only what the consumers confirmed (``cleared`` in module_utils/_converge.py),
so a refused logout (a mounted device) leaves the export as it was.
"""

from __future__ import annotations

__all__ = ["plan_detaches"]


def _facts_by_name(pools):
    out = {}
    for pool in pools or []:
        for vol in pool.get("volumes") or []:
            out[vol.get("name")] = vol
    return out


def plan_detaches(entries, pools, initiators):
    """Fill each plan entry's ``detach`` list; return error messages (the plan is refused when there are any).

    ``entries``: the plan's volume entries; ``pools``: the ``backend_info`` pools of the hosts that reported;
    ``initiators``: ``{consumer inventory host: initiator IQN}``. A detach is ``{"host": consumer or None,
    "initiator": IQN, "connected": bool (a live session on the target), "force": bool, "target_iqn"}``; ``force`` is the
    volume's ``force`` or the attachment's own (``{host, state: absent, force: true}``). An initiator with a live
    session that is no consumer in the inventory cannot be logged out by the run: refused unless ``force`` (then
    its address leaves the ACL, which tgt checks at its next login; its session is dropped only when no
    attachment stays and the export is removed)."""
    facts = _facts_by_name(pools)
    by_iqn = {}
    for host, iqn in sorted((initiators or {}).items()):
        if iqn:
            by_iqn.setdefault(iqn, host)
    errors = []
    for entry in entries:
        entry.setdefault("detach", [])
        if entry.get("state") != "present" or entry.get("action") in ("create", "unknown", "absent", "delete",
                                                                      "manage"):
            continue
        vol = facts.get(entry["name"])
        if not vol:
            continue
        current = set(vol.get("attached_to") or [])
        wanted = {initiators.get(host) for host in entry.get("attachments") or [] if (initiators or {}).get(host)}
        sessions = set(vol.get("sessions") or [])
        forced = set(entry.get("detach_force") or [])
        # A declared consumer whose IQN is not known (it did not report) may own an IQN the facts show: those
        # are left alone (the export step then names the consumer without an IQN).
        unknown = [host for host in entry.get("attachments") or [] if not (initiators or {}).get(host)]
        for iqn in sorted(current - wanted):
            host = by_iqn.get(iqn)
            if host is None and unknown:
                continue
            force = bool(entry.get("force")) or (host is not None and host in forced)
            connected = iqn in sessions
            if host is None and connected and not force:
                errors.append("volume %s: initiator %s has a session on %s's target but is no consumer in the "
                              "inventory, so the run cannot log it out; log it out on that host, or set force: true "
                              "on the volume to drop its session" % (entry["name"], iqn, entry.get("host")))
                continue
            entry["detach"].append({"host": host, "initiator": iqn, "connected": connected, "force": force,
                                    "target_iqn": vol.get("target_iqn")})
        if entry["detach"]:  # shown by the plan (and --check) before anything happens
            entry["reason"] = "%s; detach %s" % (entry.get("reason") or "", ", ".join(
                "%s%s%s" % (d["host"] or d["initiator"], " (logged in)" if d["connected"] else "",
                            " (force)" if d["force"] else "") for d in entry["detach"]))
    return errors

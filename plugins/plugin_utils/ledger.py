# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of fault safety: which storage hosts reported, the merged placement ledger, and the plan
that never re-creates a volume living on a host that did not answer.

Pure functions over plain data (the registered results of ``backend_info`` per storage host), used by the
``ember.blockstore.plan`` filter in the ``blockstore`` role. See docs/design.md, "Placement ledger".

A host *reports* when its ``backend_info`` run succeeded, it did not fail in the preparation roles, and none of
its backends is damaged. A host that does not report is *unknown*, never *empty*:

- without ``allow_partial`` the plan fails before any change, naming each such host, why, and the volumes the
  ledger places there;
- with ``allow_partial`` the plan leaves those volumes alone (action ``unknown``) and never creates or
  re-schedules a volume the ledger places on a missing host.
"""

from __future__ import annotations

__all__ = ["PlanRefused", "host_reports", "merge_ledgers", "reconcile", "intent_ledger", "final_ledger",
           "ledger_write_args", "migrated_ledger", "MAX_LISTED"]

MAX_LISTED = 20  # volumes named per host in an error message; the rest are counted


class PlanRefused(ValueError):
    """The plan cannot be made safely; the message says why and what the operator can do."""


def _clip(names, limit=MAX_LISTED):
    names = sorted(names)
    if len(names) <= limit:
        return ", ".join(names)
    return "%s and %d more" % (", ".join(names[:limit]), len(names) - limit)


def _ssh_reason(msg):
    """The useful part of Ansible's unreachable message (the ssh error), without its boilerplate."""
    text = " ".join(str(msg or "no answer").split())
    for noise in ("Task failed: ",):
        text = text.replace(noise, "")
    marker = "Make sure this host can be reached over ssh: "
    if marker in text:
        text = text.split(marker, 1)[1]
    return text


def host_reports(storage_hosts, results):
    """Classify each storage host from what the play registered for it.

    ``results``: ``{host: {"gather": <backend_info result or {}>, "prepare_error": str | None}}``.
    Returns ``{host: {"status": "ok" | "unreachable" | "failed" | "damaged", "reason": str | None,
    "pools": [...], "ledger": {...} | None, "ledger_error": str | None, "problems": [...]}}``.
    """
    reports = {}
    for host in storage_hosts:
        entry = results.get(host) or {}
        gather = entry.get("gather") or {}
        report = {"status": "ok", "reason": None, "pools": [], "ledger": None, "ledger_error": None,
                  "problems": []}
        if gather.get("unreachable"):
            report.update(status="unreachable", reason="unreachable: %s" % _ssh_reason(gather.get("msg")))
        elif gather.get("failed"):
            report.update(status="failed", reason="backend_info failed: %s" % (gather.get("msg") or "?"))
        elif not gather or gather.get("skipped") or "pools" not in gather:
            report.update(status="unreachable",
                          reason="no facts (unreachable, or failed before gathering its pools)")
        elif entry.get("prepare_error"):
            report.update(status="failed", reason="preparation failed: %s" % entry["prepare_error"],
                          ledger=gather.get("ledger"), ledger_error=gather.get("ledger_error"))
        else:
            problems = list(gather.get("problems") or [])
            report.update(pools=list(gather.get("pools") or []), ledger=gather.get("ledger"),
                          ledger_error=gather.get("ledger_error"), problems=problems)
            if problems:
                report.update(status="damaged", reason="; ".join(
                    "backend %s: %s (device %s); repair: %s"
                    % (p.get("backend"), p.get("message"), p.get("device") or "-", p.get("repair") or "-")
                    for p in problems))
        reports[host] = report
    return reports


def merge_ledgers(reports):
    """Merge the ledgers read from the hosts: the highest generation wins; copies with that same generation
    but other content (two runs that both bumped it) are united, and the conflict is reported.

    Returns ``{"generation": int, "volumes": {...}, "nodes": {host: {"generation", "volumes"}},
    "conflicts": [str]}``. Hosts whose ledger could not be read are left out of ``nodes``.
    """
    nodes = {}
    for host, report in sorted(reports.items()):
        ledger = report.get("ledger")
        if ledger is not None and not report.get("ledger_error"):
            nodes[host] = {"generation": int(ledger.get("generation") or 0),
                           "volumes": dict(ledger.get("volumes") or {})}
    generation = max([n["generation"] for n in nodes.values()] or [0])
    volumes, conflicts = {}, []
    for host, node in sorted(nodes.items()):
        if node["generation"] != generation:
            continue
        for name, entry in sorted(node["volumes"].items()):
            known = volumes.get(name)
            if known is None:
                volumes[name] = dict(entry)
            elif known != entry:
                conflicts.append("volume %s: generation %d on %s records %s, another copy records %s"
                                 % (name, generation, host, entry["pool_id"], known["pool_id"]))
                # Prefer a record that says the volume exists over one that it is being created or deleted.
                if entry.get("status") == "available" and known.get("status") != "available":
                    volumes[name] = dict(entry)
    return {"generation": generation, "volumes": volumes, "nodes": nodes, "conflicts": conflicts}


def _existing_by_name(reports):
    found = {}
    for host, report in reports.items():
        if report["status"] != "ok":
            continue
        for pool in report["pools"]:
            for vol in pool.get("volumes", []):
                found.setdefault(vol["name"], []).append({"host": host, "pool_id": pool["id"]})
    return found


def reconcile(reports, requested, allow_partial=False, forget=(), forget_hosts=()):
    """Decide, from the host reports and the merged ledger, what the scheduler may plan.

    ``requested``: ``{volume name: state}`` of the inventory's ``blockstore_volumes``. ``forget``: volume names
    the operator removes from the ledger (their data is gone); ``forget_hosts``: storage hosts removed for good
    (their ledger entries are dropped). Raises :class:`PlanRefused` when a host did not report and
    ``allow_partial`` is false, or when a volume the ledger records is missing from the host that answered.

    Returns ``{"ledger": merged ledger, "missing": {host: reason}, "unknown": {name: {host, pool_id, status,
    reason}}, "pinned": {name: pool_id}, "pools": [pool facts of reporting hosts]}``.
    """
    forget, forget_hosts = set(forget or ()), set(forget_hosts or ())
    ledger = merge_ledgers(reports)
    recorded = {name: entry for name, entry in ledger["volumes"].items()
                if name not in forget and entry["host"] not in forget_hosts}
    missing = {host: r["reason"] for host, r in sorted(reports.items())
               if r["status"] != "ok" and host not in forget_hosts}
    unreadable = {host: r["ledger_error"] for host, r in sorted(reports.items())
                  if r["status"] == "ok" and r.get("ledger_error")}
    errors = []
    if unreadable:
        errors.extend("%s: the placement ledger cannot be read: %s" % (host, why)
                      for host, why in unreadable.items())
    on_missing = {}
    for name, entry in recorded.items():
        if entry["host"] in missing:
            on_missing.setdefault(entry["host"], []).append(name)
    if missing and not allow_partial:
        for host, why in missing.items():
            names = on_missing.get(host, [])
            errors.append("storage host %s did not report (%s); the placement ledger places %d volume%s there%s"
                          % (host, why, len(names), "" if len(names) == 1 else "s",
                             (": " + _clip(names)) if names else ""))
        errors.append("nothing was changed: bring the host(s) back, or set blockstore_allow_partial: true to "
                      "converge the hosts that answered and leave the volumes of the others alone")
    elif missing and ledger["generation"] == 0:
        errors.append("storage host(s) %s did not report and no placement ledger exists yet, so the volumes "
                      "living there are not known; run once with every storage node answering before using "
                      "blockstore_allow_partial" % ", ".join(missing))
    existing = _existing_by_name(reports)
    pinned, unknown = {}, {}
    for name, entry in sorted(recorded.items()):
        if entry["host"] in missing:
            unknown[name] = dict(entry, reason="%s %s" % (entry["host"], reports[entry["host"]]["status"]))
            continue
        if name in existing:
            continue  # the LV tags are the truth for a host that answered
        if entry["status"] == "creating" and requested.get(name) == "present":
            pinned[name] = entry["pool_id"]
        elif entry["status"] == "available" and requested.get(name) == "present":
            errors.append("volume %s: the placement ledger records it on %s, but %s answered without it (deleted "
                          "outside ember.blockstore, or its volume group lost it); it is not re-created empty. "
                          "If its data is gone for good, add it to blockstore_ledger_forget and run again"
                          % (name, entry["pool_id"], entry["host"]))
        elif entry["status"] == "deleting" and requested.get(name) == "present":
            # Not on the host any more: the interrupted delete finished; the inventory wants a new one.
            continue
    for name in sorted(existing):
        entry = recorded.get(name)
        if entry and entry["status"] == "deleting" and requested.get(name) == "present":
            errors.append("volume %s: a run that was deleting it on %s stopped before the end, so its data may be "
                          "partly wiped; it is not handed out as present. Declare it absent to finish the delete, "
                          "or add it to blockstore_ledger_forget to keep what is left" % (name, entry["pool_id"]))
    if errors:
        raise PlanRefused(errors)
    pools = [pool for host, report in sorted(reports.items()) if report["status"] == "ok"
             for pool in report["pools"]]
    return {"ledger": ledger, "recorded": recorded, "missing": missing, "unknown": unknown, "pinned": pinned,
            "pools": pools, "existing": existing}


def intent_ledger(context, plan_volumes):
    """The placements to record before any change: every volume that exists on a reporting host (available,
    the LV tags being the truth), the entries of missing hosts unchanged, and the plan's creates (creating) and
    deletes (deleting). ``plan_volumes`` are the scheduler's plan entries."""
    volumes = {}
    for name, entry in context["recorded"].items():
        if entry["host"] in context["missing"]:
            volumes[name] = dict(entry)
        elif name in context["pinned"]:
            volumes[name] = dict(entry)
    for name, places in context["existing"].items():
        if len(places) == 1:
            # An interrupted delete keeps its mark (the volume may be partly wiped) until a run finishes it.
            recorded = context["recorded"].get(name) or {}
            status = "deleting" if recorded.get("status") == "deleting" else "available"
            volumes[name] = {"host": places[0]["host"], "pool_id": places[0]["pool_id"], "status": status}
    for entry in plan_volumes:
        if len(context["existing"].get(entry["name"]) or []) > 1 and entry.get("pool_id"):
            # A volume on two pools that the plan resolved (a migration's switch that stopped halfway): where the
            # plan keeps it.
            volumes[entry["name"]] = {"host": entry["host"], "pool_id": entry["pool_id"], "status": "available"}
        if entry["action"] in ("create", "manage"):  # a manage is recorded as a create until it is done
            volumes[entry["name"]] = {"host": entry["host"], "pool_id": entry["pool_id"], "status": "creating"}
        elif entry["action"] == "delete":
            volumes[entry["name"]] = {"host": entry["host"], "pool_id": entry["pool_id"], "status": "deleting"}
    return volumes


def _items(result, key):
    return (result or {}).get(key) or []


def final_ledger(intent, volume_results, delete_results):
    """The placements after the run, from what the modules returned.

    ``volume_results`` / ``delete_results``: ``{host: registered volume module result}`` of the create and the
    delete phase. A create that returned success is ``available``; one the module reported failed is dropped
    (nothing was made); one with no result (the host stopped answering) stays ``creating``, so the next run
    finishes it on the same pool. A delete that returned success (or found nothing) is dropped; otherwise it
    stays ``deleting``. A manage is recorded as a create (``creating``, then ``available``); an unmanage that
    returned success (in the delete phase) drops the volume's entry.
    """
    volumes = {name: dict(entry) for name, entry in intent.items()}
    for _host, result in sorted((volume_results or {}).items()):
        for item in _items(result, "volumes"):
            entry = volumes.get(item.get("name"))
            if not entry or entry["status"] != "creating":
                continue
            if item.get("failed"):
                volumes.pop(item["name"])
            elif item.get("action") in ("create", "none", "extend", "update", "manage"):
                entry["status"] = "available"
    for _host, result in sorted((delete_results or {}).items()):
        for item in _items(result, "volumes"):
            entry = volumes.get(item.get("name"))
            if entry and entry["status"] == "deleting" and not item.get("failed") \
                    and item.get("action") in ("delete", "absent"):
                volumes.pop(item["name"])
            elif entry and not item.get("failed") and item.get("action") == "unmanage":
                volumes.pop(item["name"])  # unmanaged: no longer the project's (the LV stays)
    return volumes


def ledger_write_args(host, volumes, nodes, generation_now):
    """Arguments of the ``ledger`` module for ``host``, or None when its copy already records ``volumes``.

    ``nodes``: ``{host: {"generation", "volumes"}}`` as each node's copy is now; ``generation_now``: the highest
    generation any node holds now (the new copy gets one more)."""
    node = nodes.get(host) or {"generation": 0, "volumes": {}}
    if node["volumes"] == volumes:
        return None
    return {"volumes": volumes, "generation": generation_now + 1, "expected_generation": node["generation"]}


def migrated_ledger(volumes, migrations, switched):
    """``volumes`` (a ledger's placements) with every migration of the plan whose copy was verified (``switched``:
    the volume names) recorded on its destination as ``available``: the switch's compare-and-swap write, made
    before either LV is retagged (docs/design.md, "Migration")."""
    out = {name: dict(entry) for name, entry in volumes.items()}
    for mig in migrations or []:
        if mig["action"] == "migrate" and mig["name"] in switched:
            dest = mig["destination"]
            out[mig["name"]] = {"host": dest["host"], "pool_id": dest["pool_id"], "status": "available"}
    return out

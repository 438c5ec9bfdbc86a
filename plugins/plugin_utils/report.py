# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The report of a converge run, computed from what the modules returned, never from the plan alone.

Statuses are Cinder's (``available``, ``in-use``, ``creating``, ``deleting``, ``error``) plus ``unknown`` for a
volume on a storage host that did not answer, ``deleted`` and ``absent`` for volumes declared absent,
``unmanaged`` for volumes declared ``state: unmanaged`` (unmanaged by the run, or not managed), and
``not in inventory`` for managed volumes the inventory does not list. A volume the run managed from an existing
LV (action ``manage``) is ``available`` or ``in-use`` like any other. A status other than the expected one
carries its reason (``error: login on client1 failed: ...``).
"""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._converge import attached_here
from ansible_collections.ember.blockstore.plugins.module_utils._size import format_size
from ansible_collections.ember.blockstore.plugins.plugin_utils.groups import report_lines

__all__ = ["build_report", "summary_lines", "pool_usage", "pool_lines"]

_MAX_DETAIL = 300


def _short(text):
    text = " ".join(str(text or "").split())
    return text if len(text) <= _MAX_DETAIL else text[:_MAX_DETAIL - 3] + "..."


def _items(result, key, name_key):
    return {item.get(name_key): item for item in (result or {}).get(key) or [] if isinstance(item, dict)}


def _why_missing(result, host, phase):
    """Why ``host`` returned no item for a volume in ``phase``; (status, reason)."""
    result = result or {}
    if result.get("unreachable"):
        return "unknown", "%s stopped answering during the %s phase" % (host, phase)
    if result.get("failed"):
        return "error", "not attempted: the %s phase failed on %s: %s" % (phase, host, _short(result.get("msg")))
    return "error", "no %s result from %s (the host failed before this phase)" % (phase, host)


def _result_status(item, result, host, phase):
    if item is None:
        return _why_missing(result, host, phase)
    if item.get("failed"):
        return "error", "%s on %s failed: %s" % (phase, host, _short((result or {}).get("msg")))
    return None, None


def build_report(plan, volume_results=None, attachment_results=None, delete_results=None,
                 unexport_results=None, connection_results=None, consumer_facts=None, pools=None,
                 check_mode=False, migrated=None, group_results=None,
                 thaw_results=None):
    """Rows and a summary of the run.

    Each ``*_results`` argument maps an inventory host to the result its module task registered (skipped,
    failed or unreachable results included). In check mode nothing ran, so the statuses are the predicted ones
    (``creating``, ``deleting``). A run only sends a module the items that need a change; the others are
    confirmed by the facts gathered at the start: ``pools`` (``backend_info`` pools of all storage hosts) and
    ``consumer_facts`` (``{consumer: initiator_info result}``). Returns ``{"rows": [...], "counts":
    {status: n}, "hosts_failed": {host: reason}, "errors": [str]}``, plus ``groups`` (lines) when the plan has
    group snapshots: what was taken (``group_results``: ``{storage host: group snapshot task result}``) and how
    long each consumer was frozen (``thaw_results``: ``{consumer: thaw task result}``). ``migrated``: the volumes the
    run's migrations switched to their destination (the others of action ``migrate`` are ``error``: the source stays
    the volume and the next run resumes).
    """
    volume_results = volume_results or {}
    attachment_results = attachment_results or {}
    delete_results = delete_results or {}
    unexport_results = unexport_results or {}
    connection_results = connection_results or {}
    consumer_facts = consumer_facts or {}
    facts = {}
    for pool in pools or []:
        for vol in pool.get("volumes") or []:
            facts[vol["name"]] = vol
    hosts = plan.get("hosts") or {}
    rows, errors = [], []
    for entry in plan["volumes"]:
        name, host, action = entry["name"], entry.get("host"), entry["action"]
        present = entry["state"] == "present"
        size = entry.get("size_bytes") if present else None
        status, detail, devices = None, None, []
        if action == "unknown":
            status, detail = "unknown", entry.get("reason")
        elif action == "absent":
            status = "absent"
        elif entry["state"] == "unmanaged" and (check_mode or action == "none"):
            status = "unmanaged"
        elif check_mode:
            status = {"create": "creating", "delete": "deleting"}.get(action) or (
                "in-use" if entry.get("attachments") else "available")
        elif action == "migrate":
            mig = entry.get("migration") or {}
            if name in (migrated or ()):
                status = "in-use" if entry.get("attachments") else "available"
            else:
                status, detail = "error", ("the migration from %s did not finish; the volume stays there and the "
                                           "next run resumes it" % (mig.get("source") or {}).get("pool_id"))
        elif action == "unmanage":
            item = _items(delete_results.get(host), "volumes", "name").get(name)
            status, detail = _result_status(item, delete_results.get(host), host, "unmanage")
            if status is None:
                status = "unmanaged"
        elif action == "delete":
            item = _items(delete_results.get(host), "volumes", "name").get(name)
            status, detail = _result_status(item, delete_results.get(host), host, "delete")
            if status == "unknown":
                status = "deleting"
            elif status is None:
                status = "deleted"
        else:
            result = volume_results.get(host)
            item = _items(result, "volumes", "name").get(name)
            if item is None and action == "none" and not (result or {}).get("unreachable"):
                status, detail = None, None  # nothing to change: the facts confirmed it
            else:
                status, detail = _result_status(item, result, host, "volume")
            if status is None:
                size = (item or {}).get("size_bytes") or size
                status = "available"
                if entry.get("attachments"):
                    status, detail, devices = _attached_status(entry, attachment_results.get(host),
                                                               connection_results, consumer_facts,
                                                               facts.get(name))
            elif status == "unknown" and action == "create":
                status = "creating"
        undone = _detach_problems(entry, connection_results)
        if undone and not check_mode and status not in ("error", "unknown"):
            status, detail = "error", "; ".join(undone)
        if status in ("error", "unknown", "creating", "deleting") and not check_mode and detail \
                and action != "unknown":
            errors.append("%s: %s (%s)" % (name, status, detail))
        rows.append({
            "volume": name, "size": format_size(size) if size else "-", "size_bytes": size,
            "type": entry.get("volume_type") or "-", "pool": entry.get("pool_id") or "-",
            "zone": entry.get("availability_zone") or "-", "action": action,
            "status": status if not detail else "%s (%s)" % (status, _short(detail)),
            "state": status, "attached_to": ", ".join(entry.get("attachments") or []) or "-",
            "device": ", ".join(devices) or "-",
        })
        if action == "manage":  # the LV held its space before the run: only the growth is new in the pool
            rows[-1]["managed_from_bytes"] = entry.get("current_size_bytes") or 0
    for vol in plan.get("unmanaged", []):
        size = vol.get("size_bytes")
        reason = vol.get("reason") or "not in inventory"
        rows.append({"volume": vol["name"], "size": format_size(size) if size else "-", "size_bytes": size,
                     "type": vol.get("volume_type") or "-", "pool": vol.get("pool_id") or vol.get("host") or "-",
                     "zone": "-", "action": "none", "status": reason,
                     "state": "unknown" if reason.startswith("unknown") else "not in inventory",
                     "attached_to": "-", "device": "-"})
    counts = {}
    for row in rows:
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    failed = {host: info.get("reason") for host, info in sorted(hosts.items()) if info.get("status") != "ok"}
    # Hosts that stopped answering during the run (after the plan) are named too.
    for phase, results in (("volume", volume_results), ("export", attachment_results),
                           ("delete", delete_results), ("unexport", unexport_results),
                           ("login", connection_results)):
        for host, result in sorted(results.items()):
            if (result or {}).get("unreachable") and host not in failed:
                failed[host] = "stopped answering during the %s phase" % phase
    usage = pool_usage(rows, pools or [], facts, snapshot_deltas(plan, rows, facts))
    out = {"rows": rows, "counts": counts, "hosts_failed": failed, "errors": errors,
           "pools": pool_lines(usage), "pool_usage": usage}
    if plan.get("groups"):
        out["groups"], group_errors = report_lines(plan, group_results, thaw_results, check_mode=check_mode)
        errors.extend(group_errors)
    return out


_BAR = 30


def _bar(used, provisioned, total):
    """``[###+++......]``: ``#`` used (allocated), ``+`` provisioned beyond it (thin), ``.`` free; a ``>`` at the
    end when the provisioned capacity is over the pool's size."""
    if not total:
        return "[" + "?" * _BAR + "]"
    full = min(_BAR, int(round(_BAR * used / total)))
    plus = max(0, min(_BAR, int(round(_BAR * provisioned / total))) - full)
    return "[" + "#" * full + "+" * plus + "." * (_BAR - full - plus) + "]" + (">" if provisioned > total else "")


def snapshot_deltas(plan, rows, facts):
    """``{pool id: bytes}`` the run's snapshots add to (or free from) each pool: a snapshot taken adds its COW
    size on a thick pool and the volume's size on a thin one (its provisioned size); one deleted, or deleted with
    its volume (``cascade``), frees the same as the facts report it. Volumes whose row is in error or unknown are
    left out (what happened there is not known)."""
    state = {row["volume"]: row["state"] for row in rows}
    delta = {}
    for entry in plan.get("volumes") or []:
        pool_id = entry.get("pool_id")
        if not pool_id or state.get(entry["name"]) in (None, "error", "unknown", "absent"):
            continue
        have = {s["name"]: s for s in (facts.get(entry["name"]) or {}).get("managed_snapshots") or []}
        thin = entry.get("thin_pool") is not None
        for snap in entry.get("snapshots") or []:
            if snap["action"] == "create":
                size = entry.get("size_bytes") or 0 if thin else (snap.get("cow_size_bytes") or 0)
                delta[pool_id] = delta.get(pool_id, 0) + size
            elif snap["action"] == "delete" and snap["name"] in have:
                old = have[snap["name"]]
                size = (old.get("volume_size_bytes") or 0) if thin else (old.get("cow_size_bytes") or 0)
                delta[pool_id] = delta.get(pool_id, 0) - size
    return delta


def pool_usage(rows, pools, facts, extra=None):
    """Each pool after the run (the pool facts gathered at its start, with the sizes the run created, extended
    and deleted; in check mode what it would do), sorted by pool id: ``{"id", "host", "backend", "driver",
    "availability_zone", "thin", "total_bytes", "used_bytes", "provisioned_bytes", "free_bytes",
    "over_subscription", "max_over_subscription_ratio", "reserved_percentage"}``. A created thin volume
    allocates nothing, so only its provisioned size counts; a thick one uses its size. Over-subscription is
    provisioned / size, as Cinder's capacity filter counts it; ``max_over_subscription_ratio`` is None for
    thick pools. ``extra``: ``{pool id: bytes}`` more that the run adds (snapshots, :func:`snapshot_deltas`)."""
    delta = dict(extra or {})
    for row in rows:
        pool_id, name = row.get("pool"), row["volume"]
        before = (facts.get(name) or {}).get("size_bytes") or row.get("managed_from_bytes") or 0
        if row["state"] in ("available", "in-use", "creating"):
            after = row.get("size_bytes") or before
        elif row["state"] in ("deleted", "deleting"):
            after = 0
        else:
            continue
        if after != before and pool_id and pool_id != "-":
            delta[pool_id] = delta.get(pool_id, 0) + after - before
    usage = []
    for pool in sorted(pools, key=lambda p: p.get("id") or ""):
        if not pool.get("exists") and not pool.get("predicted"):
            continue
        if not isinstance(pool.get("total_bytes") or 0, int):
            continue  # an NFS share predicted in check mode: its capacity is not known before it is mounted
        caps = pool.get("capabilities") or {}
        thin = pool.get("thin_pool") is not None or pool.get("driver") == "lvm_thin"
        change = delta.get(pool["id"], 0)
        total = pool.get("total_bytes") or 0
        used = max((pool.get("allocated_bytes") or 0) + (0 if thin else change), 0)
        provisioned = max((pool.get("provisioned_bytes") or 0) + change, 0)
        usage.append({
            "id": pool["id"], "host": pool.get("host") or pool["id"].split("@")[0],
            "backend": pool.get("backend") or pool["id"].split("@", 1)[-1].split("#", 1)[0],
            "driver": pool.get("driver"),
            "availability_zone": caps.get("availability_zone") or pool.get("availability_zone"), "thin": thin,
            "total_bytes": total, "used_bytes": used, "provisioned_bytes": provisioned,
            "free_bytes": max(total - used, 0), "over_subscription": (float(provisioned) / total) if total else 0.0,
            "max_over_subscription_ratio": (caps.get("max_over_subscription_ratio")
                                            or pool.get("max_over_subscription_ratio")) if thin else None,
            "reserved_percentage": caps.get("reserved_percentage") or 0,
        })
    return usage


def pool_lines(usage):
    """One line per pool of :func:`pool_usage`: a text bar and used, provisioned, free and the
    over-subscription ratio (against ``max_over_subscription_ratio`` for thin pools)."""
    lines = []
    for pool in usage:
        mosr = pool["max_over_subscription_ratio"]
        limit = " of %s max" % mosr if mosr is not None else ""
        lines.append("pool %s %s used %s, provisioned %s, free %s of %s, over-subscription %.2f%s" % (
            pool["id"], _bar(pool["used_bytes"], pool["provisioned_bytes"], pool["total_bytes"]),
            format_size(pool["used_bytes"]), format_size(pool["provisioned_bytes"]),
            format_size(pool["free_bytes"]), format_size(pool["total_bytes"]), pool["over_subscription"], limit))
    return lines


def _session_device(consumer_fact, target_iqn):
    for session in (consumer_fact or {}).get("sessions") or []:
        if target_iqn and session.get("target_iqn") == target_iqn:
            return session.get("device") or "(session, no device)"
    return None


def _detach_problems(entry, connection_results):
    """Why the plan's detaches of ``entry`` did not happen (a consumer refused or failed the logout; the export
    then keeps that consumer), one text per consumer; empty when every detach went through or was not tried."""
    problems = []
    for detach in entry.get("detach") or []:
        host = detach.get("host")
        result = connection_results.get(host) if host else None
        if not isinstance(result, dict) or not result.get("failed"):
            continue
        item = _items(result, "connections", "volume").get(entry["name"])
        if item is None or item.get("failed"):
            problems.append("detach from %s not done: %s" % (host, _short(result.get("msg"))))
    return problems


def _nfs_attached_status(entry, connection_results, consumer_facts):
    """(status, detail, devices) of an NFS volume that exists and is declared attached: each consumer's connection
    result, or its gather when it got no item (the loop device was there)."""
    name, devices, problems = entry["name"], [], []
    for consumer in entry.get("attachments") or []:
        result = connection_results.get(consumer)
        conn = _items(result, "connections", "volume").get(name)
        known = attached_here(consumer_facts.get(consumer), name, entry.get("vg"))
        if conn is None and known and not (result or {}).get("unreachable"):
            devices.append("%s:%s" % (consumer, known.get("device")))
        elif conn is not None and not conn.get("failed") and conn.get("device"):
            devices.append("%s:%s" % (consumer, conn["device"]))
        elif conn is not None and conn.get("failed"):
            problems.append("attach on %s failed: %s" % (consumer, _short((result or {}).get("msg"))))
        elif (result or {}).get("unreachable"):
            problems.append("%s did not answer: attach not confirmed" % consumer)
        elif (result or {}).get("failed"):
            problems.append("attach on %s not attempted: %s" % (consumer, _short((result or {}).get("msg"))))
        else:
            problems.append("no attach result from %s" % consumer)
    if problems:
        return "error", "; ".join(problems), devices
    return "in-use", None, devices


def _attached_status(entry, attachment_result, connection_results, consumer_facts=None, fact=None):
    """(status, detail, devices) of a volume that exists and is declared attached."""
    name = entry["name"]
    consumer_facts = consumer_facts or {}
    if entry.get("driver") == "nfs":
        return _nfs_attached_status(entry, connection_results or {}, consumer_facts)
    item = _items(attachment_result, "attachments", "volume").get(name)
    target_iqn = (item or {}).get("target_iqn") or (fact or {}).get("target_iqn")
    if item is None and fact and fact.get("export_ok") and not (attachment_result or {}).get("unreachable") \
            and not (attachment_result or {}).get("failed"):
        status, detail = None, None  # the export was already right: no item was sent
    else:
        status, detail = _result_status(item, attachment_result, entry.get("host"), "export")
    if status is not None:
        return status, detail, []
    devices, problems = [], []
    for consumer in entry.get("attachments") or []:
        result = connection_results.get(consumer)
        conn = _items(result, "connections", "volume").get(name)
        known = _session_device(consumer_facts.get(consumer), target_iqn)
        if conn is None and known and not (result or {}).get("unreachable"):
            devices.append("%s:%s" % (consumer, known))
        elif conn is not None and not conn.get("failed") and conn.get("device"):
            devices.append("%s:%s" % (consumer, conn["device"]))
        elif conn is not None and conn.get("failed"):
            problems.append("login on %s failed: %s" % (consumer, _short((result or {}).get("msg"))))
        elif (result or {}).get("unreachable"):
            problems.append("%s did not answer: login not confirmed" % consumer)
        elif (result or {}).get("failed"):
            problems.append("login on %s not attempted: %s" % (consumer, _short((result or {}).get("msg"))))
        else:
            problems.append("no login result from %s" % consumer)
    if problems:
        return "error", "exported, but " + "; ".join(problems), devices
    return "in-use", None, devices


def summary_lines(report, pools=True):
    """The run's last lines: volumes per status, the hosts that did not report, one line per pool (unless
    ``pools`` is false) and the first 50 errors."""
    counts = report["counts"]
    order = ["available", "in-use", "creating", "deleting", "deleted", "absent", "unmanaged", "error", "unknown",
             "not in inventory"]
    parts = ["%d %s" % (counts[s], s) for s in order if counts.get(s)]
    parts += ["%d %s" % (n, s) for s, n in sorted(counts.items()) if s not in order]
    lines = ["volumes: " + (", ".join(parts) or "none")]
    if report["hosts_failed"]:
        lines.append("hosts that did not report or stopped answering (their volumes were left alone): " + "; ".join(
            "%s (%s)" % (host, _short(why)) for host, why in report["hosts_failed"].items()))
    else:
        lines.append("storage hosts: all reported")
    if pools:
        lines.extend(report.get("pools") or [])
    lines.extend(report.get("groups") or [])
    lines.extend(report["errors"][:50])
    if len(report["errors"]) > 50:
        lines.append("... and %d more" % (len(report["errors"]) - 50))
    return lines

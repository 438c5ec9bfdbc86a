# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: plan
short_description: The converge plan of a run, safe against storage hosts that do not answer
version_added: 0.2.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - Classifies each storage host from what it reported (its C(backend_info) result, a preparation failure),
    merges the placement ledgers the hosts hold, then schedules the inventory's volumes with the
    P(ember.blockstore.schedule#filter) filter over the pools of the hosts that reported.
  - A host that did not report, or whose volume group is damaged, is unknown, never empty. Without
    O(allow_partial) the plan fails before any change, naming each such host, why, and the volumes the ledger
    places there. With O(allow_partial) the volumes the ledger places on those hosts get the action C(unknown)
    and are neither created elsewhere nor changed.
  - A create that a previous run recorded in the ledger but did not finish is finished on the same pool.
    A volume the ledger records as existing on a host that answered without it is refused, not re-created empty.
positional: _input, storage_hosts, volumes
options:
  _input:
    description:
      - Per storage host, the registered C(backend_info) result (which may be unreachable or failed).
    type: dict
    required: true
  prepare_errors:
    description: Per storage host, the message of a failed preparation role (empty when none failed).
    type: dict
  consumer_initiators:
    description:
      - Per consumer, its initiator IQN (from M(ember.blockstore.initiator_info)). With it, every existing volume
        gets a C(detach) list, the initiators its export records that no attachment in O(volumes) asks for any
        more (declarative detach). An initiator with a live session that is no consumer in the inventory is
        refused unless the volume sets C(force=true).
    type: dict
  consumer_facts:
    description:
      - Per consumer, its C(initiator_info) result. Its C(nfs_attachments) say which NFS volumes it has attached
        (an NFS volume has no export on its storage node) - they count as the volume's C(attached_to) (the
        consumers' IQNs), so an attached NFS volume is not deleted without C(force=true) nor reverted, an
        attachment taken out of the inventory is detached, and each NFS entry gets C(nfs_attached) (the consumers).
    type: dict
    version_added: 0.3.0
  consumer_addresses:
    description:
      - Per consumer, its C(blockstore_storage_ip); each must be one IPv4 or IPv6 host address (checked with
        netaddr before any change).
    type: dict
  storage_hosts:
    description: Inventory names of every storage host (C(blockstore_storage) group).
    type: list
    elements: str
    required: true
  volumes:
    description: The inventory's C(blockstore_volumes).
    type: list
    elements: dict
    required: true
  allow_partial:
    description: Converge the hosts that reported and leave the volumes of the others alone.
    type: bool
    default: false
  forget:
    description: Volume names to drop from the ledger (their data is known to be gone).
    type: list
    elements: str
  forget_hosts:
    description: Storage hosts removed for good; their ledger entries are dropped.
    type: list
    elements: str
  groups:
    description:
      - "C(blockstore_groups): groups of volumes and their group snapshots (Cinder's generic volume groups,
        C(cinder/volume/manager.py) C(create_group_snapshot)). Each group snapshot becomes a snapshot of every
        member, planned as the members' own snapshots are (capacity, quotas, revert and delete rules), marked with
        its group; the plan's C(groups) key lists them per group with the members' hosts and the consumers to
        freeze. Refused before any change: an unknown or absent volume, a volume in two groups, a group snapshot
        name one of its volumes lists among its own snapshots, a member on an V(nfs) backend or on a storage host
        that did not report, an existing snapshot of the name that is not the group's."
    type: list
    elements: dict
    version_added: 0.3.0
  quotas:
    description:
      - C(blockstore_quotas) (Cinder's C(volumes), C(gigabytes), C(snapshots), per volume type and per project;
        see docs/quotas.md). Checked against what will exist after the run; an exceeded quota fails the plan
        before any change, naming the quota, its limit and the usage.
    type: dict
requirements:
  - netaddr (on the controller)
extends_documentation_fragment:
  - ember.blockstore.schedule
"""

EXAMPLES = r"""
# pool_facts: registered from ember.blockstore.backend_info on each storage node (it may have failed or
# been unreachable: the plan classifies each host from it).
- name: Plan
  ansible.builtin.set_fact:
    blockstore_plan: >-
      {{ reports | ember.blockstore.plan(groups['blockstore_storage'], blockstore_volumes,
                                         volume_types=blockstore_volume_types) }}
  vars:
    reports: "{{ dict(groups['blockstore_storage'] | zip(groups['blockstore_storage'] | map('extract', hostvars)
                 | map(attribute='pool_facts', default={}))) }}"
"""

RETURN = r"""
_value:
  description:
    - The scheduler's plan (C(volumes), C(unmanaged), C(pools)) plus C(hosts) (each storage host's C(status),
      V(ok), V(unreachable), V(failed) or V(damaged), and C(reason)), C(hosts_ok) and C(ledger) (C(generation)
      read, each node's copy in C(nodes), the placements to record before any change in C(intent), and
      C(conflicts)).
    - With a non-empty O(groups), also C(groups) (per group its C(name), C(freeze), C(freeze_timeout), C(volumes)
      with their hosts and consumers, C(snapshots) with each group snapshot's C(action) and its members' actions,
      and C(freeze_consumers)); the members' snapshots of a group snapshot carry C(group) in their volume's
      C(snapshots).
  type: dict
"""

from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    validate_text,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.attachments import plan_detaches
from ansible_collections.ember.blockstore.plugins.plugin_utils.clashes import name_clashes
from ansible_collections.ember.blockstore.plugins.plugin_utils.groups import (
    expand_volumes,
    freeze_failures,
    plan_groups,
    plan_lines,
    rename_errors,
    validate_groups,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.ledger import (
    PlanRefused,
    final_ledger,
    host_reports,
    intent_ledger,
    ledger_write_args,
    migrated_ledger,
    reconcile,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.nfs_attachments import mark_nfs_attachments

try:
    import netaddr
except ImportError:  # reported when the filter is used (ansible-test imports plugins without it)
    netaddr = None
from ansible_collections.ember.blockstore.plugins.plugin_utils.metrics import textfile
from ansible_collections.ember.blockstore.plugins.plugin_utils.quotas import check_quotas, validate_quotas
from ansible_collections.ember.blockstore.plugins.plugin_utils.report import build_report, summary_lines
from ansible_collections.ember.blockstore.plugins.plugin_utils.saved_plan import (
    plan_state,
    saved_plan,
    saved_plan_differences,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan as schedule


def _messages(exc):
    errors = exc.args[0] if exc.args and isinstance(exc.args[0], list) else [str(exc)]
    return "\n".join(str(e) for e in errors)


def _address_errors(addresses):
    """Messages for consumer storage addresses (``blockstore_storage_ip``) that are not one host address,
    checked with netaddr on the controller before any change (the modules check again on the hosts)."""
    errors = []
    if addresses and netaddr is None:
        raise AnsibleFilterError("the ember.blockstore.plan filter needs the Python library netaddr on the "
                                 "controller (pip install netaddr; it is in the collection's requirements.txt)")
    for host, value in sorted((addresses or {}).items()):
        if value in (None, ""):
            continue
        # One address (blockstore_storage_ip), or the list of a consumer's storage addresses (the ember.blockstore
        # .storage_ips filter: blockstore_storage_ip first, then blockstore_storage_ips); the ACL lists each.
        several = isinstance(value, (list, tuple))
        for text in [str(v) for v in value] if several else [str(value)]:
            try:
                if not text.isascii() or any(ch.isspace() or ord(ch) < 32 for ch in text) or "/" in text:
                    raise ValueError
                netaddr.IPAddress(text.split("%", 1)[0])
            except (ValueError, netaddr.AddrFormatError):
                errors.append("%s: %s %r is not an IPv4 or IPv6 host address (the ACL binds exactly this address; "
                              "no network, no control characters)"
                              % (host, "a storage address (blockstore_storage_ip or blockstore_storage_ips)"
                                 if several else "blockstore_storage_ip", text[:80]))
    return errors


def _forget_errors(forget, forget_hosts):
    """Messages for ``blockstore_ledger_forget`` entries that are not volume names and
    ``blockstore_ledger_forget_hosts`` entries that are not host names (a typo there would silently forget
    nothing). A host that is not in the inventory is fine: a node removed for good is usually gone from it too."""
    errors = []
    for field, values, check in (("blockstore_ledger_forget", forget, "volume"),
                                 ("blockstore_ledger_forget_hosts", forget_hosts, "host")):
        if values is None:
            continue
        if not isinstance(values, (list, tuple)):
            errors.append("%s: %r is not a list of %s names" % (field, values, check))
            continue
        for index, value in enumerate(values):
            where = "%s[%d]" % (field, index)
            try:
                if check == "volume":
                    validate_volume_name(value, where)
                else:
                    validate_text(value, where, 255, "host name")
            except NameError_ as exc:
                errors.append(str(exc))
    return errors


def _unaddressed_attachments(volumes, addresses):
    """Messages for attachments of present volumes to consumers without ``blockstore_storage_ip`` (the address
    the target's ACL binds): refused here, before any change, not when the export is written. Only when the
    caller gives the consumers' addresses."""
    if addresses is None:
        return []
    problems = []
    for index, item in enumerate(volumes or []):
        if not isinstance(item, dict) or item.get("state", "present") != "present":
            continue
        for pos, att in enumerate(item.get("attachments") or []):
            host = att.get("host") if isinstance(att, dict) else None
            if isinstance(host, str) and not addresses.get(host):
                problems.append("blockstore_volumes[%d].attachments[%d].host: consumer %s has no blockstore_storage_ip "
                                "(its address on the storage network, which the target's ACL binds)"
                                % (index, pos, host))
    return problems


def _nfs_entries(entries, pools):
    """Set ``nfs_attached`` (the consumers that have it attached, from their gather) on each entry of an NFS pool;
    messages for what NFS volumes cannot have: QoS specs (io.max is set on iSCSI devices only)."""
    attached = {}
    for pool in pools or []:
        if pool.get("driver") == "nfs":
            for vol in pool.get("volumes") or []:
                attached[(pool["id"], vol["name"])] = vol.get("nfs_attached") or []
    problems = []
    for entry in entries:
        if entry.get("driver") != "nfs":
            continue
        entry["nfs_attached"] = attached.get((entry.get("pool_id"), entry["name"]), [])
        if entry.get("state") == "present" and entry.get("qos_specs"):
            problems.append("volume %s: its volume type %s has QoS specs, which are not applied to NFS volumes (%s): "
                            "use a volume type without qos_specs for NFS backends"
                            % (entry["name"], entry.get("volume_type"), entry.get("pool_id")))
    return problems


def blockstore_plan(gathers, storage_hosts, volumes, prepare_errors=None, consumer_addresses=None,
                    volume_types=None, weight_multiplier=1.0, default_volume_type=None, consumers=None,
                    allow_partial=False, forget=None, forget_hosts=None, default_availability_zone=None,
                    quotas=None, consumer_initiators=None, consumer_facts=None, groups=None):
    """See DOCUMENTATION."""
    try:
        limits = validate_quotas(quotas, volume_types if isinstance(volume_types, dict) else None)
    except ScheduleError as exc:
        raise AnsibleFilterError("The plan is refused, nothing was changed:\n" + "\n".join(exc.errors)) from None
    problems = _address_errors(consumer_addresses) + _forget_errors(forget, forget_hosts)
    group_list, group_errors = validate_groups(groups, volumes)
    problems += group_errors
    if problems:
        raise AnsibleFilterError("The plan is refused, nothing was changed:\n" + "\n".join(problems))
    # NFS volumes: the consumers' loop devices are their attachments (there is no export to read them from).
    gathers = mark_nfs_attachments(gathers, consumer_facts, consumer_initiators)
    results = {host: {"gather": (gathers or {}).get(host) or {},
                      "prepare_error": (prepare_errors or {}).get(host) or None} for host in storage_hosts or []}
    reports = host_reports(list(storage_hosts or []), results)
    requested = {}
    for item in volumes or []:
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            requested[item["name"]] = item.get("state", "present")
    try:
        context = reconcile(reports, requested, allow_partial=bool(allow_partial), forget=forget or (),
                            forget_hosts=forget_hosts or ())
    except PlanRefused as exc:
        raise AnsibleFilterError("The plan is refused, nothing was changed:\n" + _messages(exc)) from None
    # Names something that is not the project's holds on a reporting node (backend_info's clashes) are refused.
    clashes = name_clashes(volumes, context["pools"])
    if clashes:
        raise AnsibleFilterError("The plan is refused, nothing was changed:\n" + "\n".join(clashes)) from None
    exclude = {name: entry for name, entry in context["unknown"].items() if name in requested}
    # Group snapshots are planned as snapshots of their members (a copy of the inventory lists them).
    volumes, injected = expand_volumes(volumes, group_list)
    try:
        result = schedule(volumes, context["pools"], volume_types=volume_types, weight_multiplier=weight_multiplier,
                          default_volume_type=default_volume_type, consumers=consumers,
                          pinned=context["pinned"], exclude=exclude,
                          default_availability_zone=default_availability_zone)
    except ScheduleError as exc:
        note = ""
        if context["missing"]:
            note = ("\n(not considered: the pools of storage host(s) that did not report: %s)"
                    % "; ".join("%s: %s" % item for item in sorted(context["missing"].items())))
        raise AnsibleFilterError("\n".join(rename_errors([str(exc)], injected)) + note) from None
    problems = _unaddressed_attachments(volumes, consumer_addresses) + _nfs_entries(result["volumes"], context["pools"])
    if consumer_initiators is not None:
        problems += plan_detaches(result["volumes"], context["pools"], consumer_initiators)
    section, group_errors = plan_groups(group_list, result, context["pools"], consumer_initiators)
    problems += group_errors
    if problems:
        raise AnsibleFilterError("The plan is refused, nothing was changed:\n" + "\n".join(problems))
    ledger = context["ledger"]
    # Volumes the ledger places on a missing host that the inventory does not list are reported, not touched.
    for name, entry in sorted(context["unknown"].items()):
        if name not in requested:
            result["unmanaged"].append({"name": name, "pool_id": entry["pool_id"], "host": entry["host"],
                                        "backend": entry["pool_id"].split("@", 1)[-1].split("#", 1)[0],
                                        "size_bytes": None,
                                        "volume_type": None, "reason": "unknown (%s)" % entry["reason"]})
    over = check_quotas(quota_usage(result, context["pools"]), limits)
    if over:
        raise AnsibleFilterError("The plan is refused, nothing was changed:\n" + "\n".join(over))
    if group_list:  # an inventory without groups gets the plan it got before
        result["groups"] = section
    result["hosts"] = {host: {"status": r["status"], "reason": r["reason"]} for host, r in reports.items()}
    result["hosts_ok"] = sorted(h for h, r in reports.items() if r["status"] == "ok")
    result["ledger"] = {"generation": ledger["generation"], "nodes": ledger["nodes"],
                        "conflicts": ledger["conflicts"],
                        "intent": intent_ledger(context, result["volumes"])}
    return result


def quota_usage(result, pools):
    """What will exist after the run, as :func:`plugin_utils.quotas.check_quotas` counts it: every volume the plan
    keeps or creates at its size after the run, with the snapshots it will have (those the inventory keeps or
    takes, and those on the host it does not list, each at its volume's size when taken, as Cinder counts a
    snapshot's ``volume_size``), and the volumes found on the nodes but not in the inventory (``unmanaged``)."""
    facts = {}
    for pool in pools or []:
        for vol in pool.get("volumes") or []:
            facts[(pool["id"], vol["name"])] = vol
    usage = []
    for entry in result["volumes"]:
        if entry["state"] != "present":
            continue
        size = entry["size_bytes"] if entry["size_bytes"] is not None else (entry["requested_size_bytes"] or 0)
        have = {s["name"]: s for s in (facts.get((entry["pool_id"], entry["name"])) or {}).get("managed_snapshots")
                or []}
        snaps = {name: s.get("volume_size_bytes") or size for name, s in have.items()}
        for snap in entry.get("snapshots") or []:
            if snap["action"] in ("delete", "absent"):
                snaps.pop(snap["name"], None)
            elif snap["name"] not in snaps:
                snaps[snap["name"]] = size
        usage.append({"name": entry["name"], "project": entry.get("project"), "volume_type": entry["volume_type"],
                      "size_bytes": size,
                      "snapshots": [{"name": n, "size_bytes": b} for n, b in sorted(snaps.items())]})
    for vol in result["unmanaged"]:
        have = (facts.get((vol["pool_id"], vol["name"])) or {}).get("managed_snapshots") or []
        usage.append({"name": vol["name"], "project": None, "volume_type": vol["volume_type"],
                      "size_bytes": vol["size_bytes"] or 0, "counted_as": "unmanaged",
                      "snapshots": [{"name": s["name"], "size_bytes": s.get("volume_size_bytes") or 0} for s in have]})
    return usage


def ledger_intent_args(plan, host):
    """``ledger`` module arguments for ``host`` before any change, or None when its copy is current."""
    ledger = plan["ledger"]
    return ledger_write_args(host, ledger["intent"], ledger["nodes"], ledger["generation"])


def _switched(plan, migration_results):
    """Names of the plan's migrations that a node's switch write recorded on their destination."""
    dests = {m["name"]: m["destination"]["pool_id"] for m in plan.get("migrations") or [] if m["action"] == "migrate"}
    names = set()
    for result in (migration_results or {}).values():
        if (result or {}).get("failed"):
            continue
        for name, entry in ((result or {}).get("volumes") or {}).items():
            if dests.get(name) == entry.get("pool_id"):
                names.add(name)
    return names


def _nodes_now(plan, *results):
    """Each node's ledger copy as the last successful write of ``results`` (``{host: registered ledger result}``,
    earliest first) left it."""
    nodes = {}
    for name, node in plan["ledger"]["nodes"].items():
        nodes[name] = node
        for written_by in results:
            written = (written_by or {}).get(name) or {}
            if written.get("written") and not written.get("failed"):
                nodes[name] = {"generation": written["generation"], "volumes": written["volumes"]}
    for name in plan.get("hosts_ok", []):
        nodes.setdefault(name, {"generation": 0, "volumes": {}})
    return nodes


def ledger_migration_args(plan, host, intent_results, switched):
    """``ledger`` module arguments for ``host`` at a migration's switch (compare-and-swap, before any LV is
    retagged): the intent with each verified migration (``switched``: volume names) on its destination; None when
    the node's copy records that already."""
    nodes = _nodes_now(plan, intent_results)
    now = max([n["generation"] for n in nodes.values()] or [0])
    volumes = migrated_ledger(plan["ledger"]["intent"], plan.get("migrations"), set(switched or ()))
    return ledger_write_args(host, volumes, nodes, now)


def ledger_final_args(plan, host, volume_results, delete_results, intent_results, migration_results=None):
    """``ledger`` module arguments for ``host`` after the run, or None when its copy is current.

    ``volume_results``/``delete_results``/``intent_results``/``migration_results``: ``{storage host: registered
    result}`` of the volume create phase, the delete phase, the intent write and the migrations' switch write."""
    ledger = plan["ledger"]
    final = final_ledger(ledger["intent"], volume_results, delete_results)
    final = migrated_ledger(final, plan.get("migrations"), _switched(plan, migration_results))
    nodes = _nodes_now(plan, intent_results, migration_results)
    now = max([n["generation"] for n in nodes.values()] or [0])
    return ledger_write_args(host, final, nodes, now)


def save_plan(plan, gathers, initiator_facts=None, created_at=None, created_by=None):
    """See :func:`..plugin_utils.saved_plan.saved_plan`: the file ``blockstore_plan_out`` writes."""
    return saved_plan(plan, plan_state(gathers, initiator_facts), created_at=created_at, created_by=created_by)


def check_saved_plan(plan, saved, gathers, initiator_facts=None):
    """Return ``plan`` when the saved plan ``saved`` may be applied now; else raise naming every difference."""
    lines = saved_plan_differences(saved, plan, plan_state(gathers, initiator_facts))
    if lines:
        raise AnsibleFilterError("The saved plan is refused, nothing was changed: the hosts or the inventory "
                                 "changed since it was made:\n" + "\n".join(lines))
    return plan


def report(plan, **results):
    """See :func:`..plugin_utils.report.build_report`."""
    return build_report(plan, **results)


def report_summary(report_dict, pools=True):
    """See :func:`..plugin_utils.report.summary_lines`."""
    return summary_lines(report_dict, pools=pools)


def metrics_textfile(report_dict, host):
    """See :func:`..plugin_utils.metrics.textfile`."""
    try:
        return textfile(report_dict, host)
    except ValueError as exc:
        raise AnsibleFilterError("metrics_textfile: %s" % exc) from exc


class FilterModule:
    """ember.blockstore plan filters."""

    def filters(self):
        return {"plan": blockstore_plan, "ledger_intent_args": ledger_intent_args,
                "ledger_final_args": ledger_final_args, "ledger_migration_args": ledger_migration_args,
                "report": report, "report_summary": report_summary, "save_plan": save_plan,
                "check_saved_plan": check_saved_plan, "metrics_textfile": metrics_textfile,
                "freeze_failures": freeze_failures, "group_plan_lines": plan_lines}

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A volume's backup policy in the inventory (``blockstore_volumes[].backup``) and the backup module's items it
gives on one storage node (``playbooks/backup.yml``).

``backup: {policy: hourly|daily|weekly|manual, keep_last: N, keep_daily: N, keep_weekly: N, incremental: true,
force: false}``.
A backup's name is its policy's period (``daily-2026-11-30``, ``hourly-2026-11-30-23``, ``weekly-2026-w48``, in
UTC), so a second run in the same period changes nothing (the backup module does not take a name twice) and a
cron job or an AWX schedule may run the playbook as often as it likes. ``manual`` takes a backup only when the run
names one (``blockstore_backup_name``). Retention (restic's rules, in the backup module) prunes after the backups.

A volume of an nfs backend is attached when the inventory says so (an ``attachments`` entry that is not
``state: absent``: the storage node cannot see a consumer's loop device, and after a converge run the inventory is
what is attached). Its item says ``attached``; an attached one is backed up only when its policy says ``force:
true`` (from a temporary copy of its file, crash-consistent only), else it is listed in ``attached`` and not backed
up, so one such volume does not stop the backups of the others.
"""

from __future__ import annotations

import datetime

from ansible_collections.ember.blockstore.plugins.module_utils._naming import show_value

__all__ = ["POLICIES", "POLICY_KEYS", "validate_policy", "period_name", "backup_items"]

POLICIES = ("hourly", "daily", "weekly", "manual")
POLICY_KEYS = ("policy", "keep_last", "keep_daily", "keep_weekly", "incremental", "force")
MAX_KEEP = 10000


def validate_policy(value, field):
    """The errors (list of str) of a volume's ``backup`` mapping, each naming ``field`` and the value."""
    if value is None:
        return []
    if not isinstance(value, dict):
        return ["%s: %s is not a mapping such as {policy: daily, keep_last: 7}" % (field, show_value(value))]
    errors = []
    unknown = sorted(str(key) for key in value if key not in POLICY_KEYS)
    if unknown:
        errors.append("%s: unknown key(s) %s; allowed: %s" % (field, ", ".join(unknown), ", ".join(POLICY_KEYS)))
    if value.get("policy") not in POLICIES:
        errors.append("%s.policy: %s is not one of %s" % (field, show_value(value.get("policy")), ", ".join(POLICIES)))
    for key in ("keep_last", "keep_daily", "keep_weekly"):
        keep = value.get(key)
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or not 1 <= keep <= MAX_KEEP):
            errors.append("%s.%s: %s is not a whole number from 1 to %d" % (field, key, show_value(keep), MAX_KEEP))
    for key, default in (("incremental", True), ("force", False)):
        if not isinstance(value.get(key, default), bool):
            errors.append("%s.%s: %s is not a boolean" % (field, key, show_value(value.get(key))))
    return errors


def period_name(policy, now):
    """The backup name of ``policy`` for the instant ``now`` (an aware datetime or an ISO 8601 string; UTC), or
    None for ``manual``."""
    if isinstance(now, str):
        now = datetime.datetime.fromisoformat(now.replace("Z", "+00:00"))
    if now.tzinfo is None:
        raise ValueError("now: %s has no time zone" % show_value(str(now)))
    now = now.astimezone(datetime.timezone.utc)
    if policy == "hourly":
        return now.strftime("hourly-%Y-%m-%d-%H")
    if policy == "daily":
        return now.strftime("daily-%Y-%m-%d")
    if policy == "weekly":
        year, week, _day = now.isocalendar()
        return "weekly-%04d-w%02d" % (year, week)
    return None


def _attached(vol):
    """Whether the inventory entry ``vol`` is attached to a consumer (an ``attachments`` entry not ``absent``)."""
    return any(isinstance(att, dict) and att.get("state", "present") != "absent"
               for att in vol.get("attachments") or [])


def backup_items(pools, volumes, now, name=None, field="blockstore_volumes"):
    """``{"backups": [...], "prune": [...], "skipped": [...], "attached": [...]}``: the backup module's items for
    the volumes of
    ``pools`` (this node's ``backend_info`` pools) whose inventory entry (``volumes``, ``blockstore_volumes``) has
    a ``backup`` policy.

    ``backups``: ``{name, volume, vg, state: present, is_incremental, metadata: {policy}}``, one per volume, named
    by its policy's period at ``now`` (or ``name`` for every volume with a policy, a run that names its backup), and
    for a volume of an nfs pool ``attached`` (from the inventory's attachments) and ``force`` (the policy's);
    ``prune``: ``{volume, vg, state: absent, keep_*}`` for each volume with a ``keep_*``; ``skipped``: the names
    of ``manual`` volumes when no ``name`` is given; ``attached``: the names of attached NFS volumes whose policy
    has no ``force: true`` (not backed up; still pruned). Volumes declared absent, or not on this node, give
    nothing.
    Raises ValueError naming the field on a bad policy (the plan refuses it first in a converge run)."""
    wanted, attached = {}, {}
    for index, vol in enumerate(volumes or []):
        if not isinstance(vol, dict) or vol.get("backup") is None or vol.get("state", "present") != "present":
            continue
        where = "%s[%d].backup" % (field, index)
        errors = validate_policy(vol["backup"], where)
        if errors:
            raise ValueError("; ".join(errors))
        wanted[str(vol.get("name"))] = vol["backup"]
        attached[str(vol.get("name"))] = _attached(vol)
    out = {"backups": [], "prune": [], "skipped": [], "attached": []}
    for pool in pools or []:
        if not pool.get("exists"):
            continue
        for vol in pool.get("volumes") or []:
            policy = wanted.get(vol["name"])
            if policy is None:
                continue
            backup_name = name or period_name(policy["policy"], now)
            item = {"name": backup_name, "volume": vol["name"], "vg": pool["vg"], "state": "present",
                    "is_incremental": policy.get("incremental", True), "metadata": {"policy": policy["policy"]}}
            if pool.get("driver") == "nfs":
                item.update(attached=attached[vol["name"]], force=bool(policy.get("force", False)))
            if backup_name is None:
                out["skipped"].append(vol["name"])
            elif item.get("attached") and not item["force"]:
                out["attached"].append(vol["name"])
            else:
                out["backups"].append(item)
            keep = {key: policy[key] for key in ("keep_last", "keep_daily", "keep_weekly") if policy.get(key)}
            if keep:
                out["prune"].append(dict(keep, volume=vol["name"], vg=pool["vg"], state="absent"))
    for key in ("backups", "prune"):
        out[key].sort(key=lambda item: item["volume"])
    out["skipped"].sort()
    out["attached"].sort()
    return out

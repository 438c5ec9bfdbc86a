# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Name clashes between the inventory and what the storage nodes hold outside the project (controller side).

``backend_info`` reports, per pool, ``clashes``: LVs named ``volume-<name>`` in the pool's volume group that do not
carry both of the project's tags, and tgt targets named ``<prefix>volume-<name>`` (or files at the project's target
path) without the project's marker. A volume of the inventory with such a name cannot be created, exported or
deleted on that host without touching something that is not the project's; the modules would refuse it there, one
host at a time and after other hosts changed. :func:`name_clashes` finds every such volume before any change, so the
plan can refuse the run naming host, volume group and LV (or target IQN).

Pure: plain data in, a sorted list of messages out; no Ansible import, so the plan step and the tests call it
directly.
"""

from __future__ import annotations

__all__ = ["name_clashes"]

VOLUMES_FIELD = "blockstore_volumes"


def _message(where, name, clash):
    host = clash.get("host") or "?"
    if clash.get("kind") == "lv":
        tags = clash.get("tags") or []
        return ("volume %s (%s) clashes on %s: VG %s has LV %s that is not managed by ember.blockstore (tags: %s); "
                "ember.blockstore never touches it: rename the LV or choose another volume name"
                % (name, where, host, clash.get("vg"), clash.get("lv_name"), ", ".join(tags) if tags else "none"))
    if clash.get("kind") == "file":
        return ("volume %s (%s) clashes on %s: share %s has file %s that is not managed by ember.blockstore (%s); "
                "ember.blockstore never touches it: rename the file or choose another volume name"
                % (name, where, host, clash.get("vg"), clash.get("lv_name"), clash.get("reason") or "no sidecar"))
    return ("volume %s (%s) clashes on %s: target %s is not managed by ember.blockstore (%s); it is never changed or "
            "removed: rename or remove it, or choose another volume name"
            % (name, where, host, clash.get("target_iqn"), clash.get("reason") or "no marker"))


def _expected_lv(volume, clash):
    """Whether an untagged LV ``volume-<name>`` is what the inventory expects there: the volume is ``unmanaged``
    (an unmanage keeps a renamed LV's name), or its ``manage`` request names that LV (``manage.lv``, or ``rename``:
    a run renamed it and stopped before tagging it) on that host. The plan decides those requests itself."""
    if volume.get("state") == "unmanaged":
        return True
    manage = volume.get("manage")
    if not isinstance(manage, dict) or manage.get("host") != clash.get("host"):
        return False
    return manage.get("lv") == clash.get("lv_name") or (manage.get("rename") is True
                                                        and clash.get("lv_name") == "volume-" + volume["name"])


def name_clashes(volumes, pools, field=VOLUMES_FIELD):
    """Messages, one per clash, for every inventory volume whose name something else holds on a storage node.

    ``volumes`` is ``blockstore_volumes`` (items without a string ``name`` are skipped: the plan's validation
    reports them); ``pools`` the ``backend_info`` pools, whose ``clashes`` lists are read (a pool without that key
    has none). Every state counts: a ``present`` volume would be created or exported over the foreign object, an
    ``absent`` one would look deleted while the name is still taken. Target clashes are host-wide and repeated in
    each pool of a host; each is reported once. Messages start with the volume name and are sorted, so the same
    clashes give the same list whatever the order of the pools."""
    by_volume = {}
    for pool in pools or []:
        if not isinstance(pool, dict):
            continue
        for clash in pool.get("clashes") or []:
            if not isinstance(clash, dict) or not isinstance(clash.get("volume"), str):
                continue
            key = (clash.get("kind"), clash.get("host"), clash.get("vg"), clash.get("lv_name"),
                   clash.get("target_iqn"))
            by_volume.setdefault(clash["volume"], {})[key] = clash
    messages = set()
    for index, volume in enumerate(volumes or []):
        name = volume.get("name") if isinstance(volume, dict) else None
        if not isinstance(name, str) or name not in by_volume:
            continue
        where = "%s[%d]" % (field, index)
        for clash in by_volume[name].values():
            if clash.get("kind") == "lv" and _expected_lv(volume, clash):
                continue
            messages.add(_message(where, name, clash))
    return sorted(messages)

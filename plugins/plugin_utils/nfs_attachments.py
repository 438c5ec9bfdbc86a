# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which consumers an NFS volume is attached to (controller side, issue 14).

An NFS volume has no export on its storage node: a consumer mounts the share and binds the file to a loop device
itself, so only the consumers know. Their gather (``initiator_info``'s ``nfs_attachments``: each link
``/dev/ember/<volume>`` to a loop device bound to ``<mount point>/volume-<name>``) tells the plan, which then
treats NFS volumes as it treats exported ones: ``attached_to`` holds the consumers' initiator IQNs (their identity
everywhere in the plan), so an attached volume is not deleted without ``force`` nor reverted, an attachment taken
out of the inventory is detached (``detach``, as for iSCSI), and a snapshot item knows the volume is attached.

Pure: plain data in and out.
"""

from __future__ import annotations

import copy

from ansible_collections.ember.blockstore.plugins.module_utils._converge import attached_here

__all__ = ["mark_nfs_attachments"]


def mark_nfs_attachments(gathers, consumer_facts, initiators):
    """``gathers`` (``{storage host: backend_info result}``) with each NFS volume's ``attached_to`` set to the
    initiator IQNs of the consumers that have it attached (``consumer_facts``: ``{consumer: initiator_info result}``;
    ``initiators``: ``{consumer: IQN}``; a consumer without an IQN is named ``consumer:<host>``) and
    ``nfs_attached`` to those consumers. Copies what it changes; the input is left as it is."""
    if not consumer_facts:
        return gathers
    out = {}
    for host, gather in (gathers or {}).items():
        pools = (gather or {}).get("pools") if isinstance(gather, dict) else None
        if not pools or not any(isinstance(p, dict) and p.get("driver") == "nfs" for p in pools):
            out[host] = gather
            continue
        gather = dict(gather, pools=copy.deepcopy(pools))
        for pool in gather["pools"]:
            if not isinstance(pool, dict) or pool.get("driver") != "nfs":
                continue
            for vol in pool.get("volumes") or []:
                consumers = sorted(c for c, facts in consumer_facts.items()
                                   if attached_here(facts, vol.get("name"), pool.get("share") or pool.get("vg")))
                vol["nfs_attached"] = consumers
                vol["attached_to"] = sorted((initiators or {}).get(c) or "consumer:%s" % c for c in consumers)
        out[host] = gather
    return out

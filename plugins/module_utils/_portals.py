# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The portals tgtd listens on (role ``tgt_target``): the node's storage addresses, validated, and the live change
from what ``tgtadm --lld iscsi --op show --mode portal`` prints to them."""

from __future__ import annotations

import re

from ansible_collections.ember.blockstore.plugins.module_utils._address import DEFAULT_PORT, listen_portal
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_

__all__ = ["tgt_portals", "parse_portal_show", "portal_changes", "render_dropin", "systemd_escape", "portals_differ"]

_SHOWN_RE = re.compile(r"^Portal:\s+(\S+),\d+\s*$")


def tgt_portals(addresses, port=DEFAULT_PORT, field="blockstore_tgt_portal_addresses"):
    """Validated, canonical, de-duplicated ``addr:port`` / ``[v6]:port`` portals for ``addresses`` (a list, or
    one address). An address may carry its own port; the wildcard ``0.0.0.0``/``::`` is allowed (an explicit
    choice). An empty list is an error: tgtd would then listen on every address."""
    if isinstance(addresses, str):
        addresses = [addresses]
    if not isinstance(addresses, (list, tuple)) or not addresses:
        raise NameError_("%s: no address to listen on; set blockstore_storage_ip (the node's storage address) or "
                         "list the portal addresses" % field)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise NameError_("blockstore_iscsi_port: %r is not a port (1-65535)" % (port,))
    out = []
    for index, address in enumerate(addresses):
        portal = listen_portal(address, "%s[%d]" % (field, index), port)
        if portal not in out:
            out.append(portal)
    return sorted(out)


def _without_zone(portal):
    if "%" not in portal:
        return portal
    host, _sep, rest = portal.partition("%")
    return host + "]" + rest.split("]", 1)[1] if "]" in rest else host


def parse_portal_show(text):
    """Portals in ``tgtadm --lld iscsi --op show --mode portal`` output (``Portal: 0.0.0.0:3260,1``)."""
    out = []
    for line in (text or "").splitlines():
        match = _SHOWN_RE.match(line.strip())
        if match:
            out.append(match.group(1))
    return out


def portal_changes(desired, shown_text):
    """``{"add": [...], "delete": [...]}`` to go from the portals tgtd shows (its output, or the list
    ``backend_info`` reports) to ``desired`` (from :func:`tgt_portals`). tgtd shows addresses without their IPv6
    zone id (inet_ntop), so a zone is ignored when comparing; deletes use the shown form (tgtd matches them by that
    string)."""
    current = list(shown_text) if isinstance(shown_text, (list, tuple)) else parse_portal_show(shown_text)
    bare = {_without_zone(p): p for p in desired}
    return {"add": sorted(p for b, p in bare.items() if b not in current),
            "delete": sorted(p for p in current if p not in bare)}


def portals_differ(shown, addresses, storage_ip, port=DEFAULT_PORT):
    """Whether tgtd (``shown``: the portals ``backend_info`` reports, None when it did not report them) listens
    elsewhere than on ``addresses`` (or, when empty, ``storage_ip``: one address or the list of the node's storage
    addresses). A list that does not validate counts as different, so that the tgt_target role runs and names the
    bad value."""
    if shown is None:
        return False
    own = list(storage_ip) if isinstance(storage_ip, (list, tuple)) else [storage_ip]
    try:
        desired = tgt_portals(list(addresses or []) or [a for a in own if a], port)
    except NameError_:
        return True
    changes = portal_changes(desired, shown)
    return bool(changes["add"] or changes["delete"])


def systemd_escape(value):
    """A value for a systemd unit line: ``%`` starts a specifier there, so it is doubled."""
    return str(value).replace("%", "%%")


# The first line of the drop-in: backend_info reports a node whose drop-in lacks it (an older release's) as not
# configured, so the fast path runs the tgt_target role there again.
TGT_DROPIN_MARKER = "# Managed by ember.blockstore (role tgt_target, drop-in version 2)"


def render_dropin(portals):
    """The ``tgt.service`` drop-in the role installs (the template ``ember-start-offline.conf.j2`` renders the
    same text; a unit test keeps them equal)."""
    lines = [
        TGT_DROPIN_MARKER,
        "# Keep initiators out until every target is loaded, and listen only on this node's storage addresses.",
        "# tgtd accepts logins as soon as it starts, before tgt-admin has loaded the targets from /etc/tgt; an",
        "# initiator that reconnects in that window (after `systemctl restart tgt`) is told \"target not found\" and",
        "# gives its session up (the race of Red Hat bz 848942; measured in the lab). So tgtd first listens on a",
        "# loopback-only port, goes offline, loads the targets, and only then opens the real portals and goes ready.",
        "# The portals are the storage addresses (blockstore_storage_ip, or blockstore_tgt_portal_addresses), not",
        "# 0.0.0.0/[::]: binding them needs the addresses configured, hence network-online.target.",
        "# The targets' backing LVs must be active before tgt-admin loads them: at boot, tgtd can start before LVM's",
        "# event activation (udev starts it asynchronously, nothing orders tgt after it), and tgt-admin then loads a",
        "# target without its LUN; a consumer that logs in sees no disk. So udev is settled and the volume groups that",
        "# autoactivate are activated first (vgchange -aay, as lvm2-activation did; it honours "
        "auto_activation_volume_list).",
        "[Unit]",
        "Wants=network-online.target",
        "After=network-online.target lvm2-monitor.service",
        "",
        "[Service]",
        "ExecStartPre=-/bin/udevadm settle --timeout=60",
        "ExecStartPre=-/sbin/vgchange --activate ay",
        "ExecStart=",
        "ExecStart=/usr/sbin/tgtd -f --iscsi portal=127.0.0.1:3261",
        "ExecStartPost=",
        "ExecStartPost=/usr/sbin/tgtadm --op update --mode sys --name State -v offline",
        "ExecStartPost=/usr/sbin/tgt-admin -e -c /etc/tgt/targets.conf",
    ]
    lines += ["ExecStartPost=/usr/sbin/tgtadm --lld iscsi --op new --mode portal --param portal=%s"
              % systemd_escape(p) for p in portals]
    lines += [
        "ExecStartPost=/usr/sbin/tgtadm --lld iscsi --op delete --mode portal --param portal=127.0.0.1:3261",
        "ExecStartPost=/usr/sbin/tgtadm --op update --mode sys --name State -v ready",
    ]
    return "\n".join(lines) + "\n"

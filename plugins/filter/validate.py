# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that validate what the roles render into configuration files (a bad value fails the task naming the
field, before anything is written):

- ``addresses | ember.blockstore.tgt_portals(port)``: the portals tgtd listens on, canonical ``addr:port``;
- ``shown | ember.blockstore.tgt_portal_changes(desired)``: what to add and delete to get there live;
- ``shown | ember.blockstore.tgt_portals_differ(addresses, storage_ip, port)``: whether the tgt_target role must
  run again (gather phase);
- ``hostvars[host] | ember.blockstore.storage_ips``: a host's storage addresses, the primary first
  (``blockstore_storage_ip``, else the first of ``blockstore_storage_ips``);
- ``text | ember.blockstore.systemd_escape``: ``%`` doubled for a unit file;
- ``iqn | ember.blockstore.iscsi_name(field)``: an iSCSI name (RFC 3720, at most 223 bytes);
- ``backends | ember.blockstore.valid_backends``: a storage node's ``blockstore_backends``, every field checked as
  ``backend_info`` checks it, before ``community.general.lvg`` receives a volume group or device name; the keys
  renamed in 0.2.0 come back under their new names, with a deprecation warning;
- ``exports | ember.blockstore.nfs_export_lines(root_squash)``: the lines of an exports(5) file, every path, client
  and option checked (the ``nfs_export`` role);
- ``share | ember.blockstore.nfs_share(field)``: ``server:/export`` split and checked;
- ``options | ember.blockstore.mount_options(field)``: mount options joined for fstab, each checked.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.ember.blockstore.plugins.module_utils._address import storage_ips as _storage_ips
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import RENAMED_BACKEND_KEYS, validate_backends
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, validate_iqn
from ansible_collections.ember.blockstore.plugins.module_utils._nfs import export_lines, mount_options, parse_share
from ansible_collections.ember.blockstore.plugins.module_utils._portals import (
    portal_changes,
    portals_differ,
    systemd_escape,
    tgt_portals,
)


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (NameError_, ValueError, TypeError) as exc:
            raise AnsibleFilterError(str(exc)) from exc
    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


def tgt_portal_changes(shown, desired):
    return portal_changes(desired, shown)


def storage_ips(host_vars, validate=False, host=None):
    host_vars = host_vars or {}
    return _storage_ips(host_vars.get("blockstore_storage_ip"), host_vars.get("blockstore_storage_ips"),
                        host or host_vars.get("inventory_hostname") or "this host", validate=validate)


def iscsi_name(value, field="iscsi name"):
    return validate_iqn(value, field)


def valid_backends(backends, field="blockstore_backends"):
    checked = validate_backends(backends, field)
    for index, backend in enumerate(backends):
        for old in sorted(set(backend) & set(RENAMED_BACKEND_KEYS)):
            Display().deprecated(
                "%s[%d].%s: the key is called %s since release 0.2.0" % (field, index, old, RENAMED_BACKEND_KEYS[old]),
                version="1.0.0", collection_name="ember.blockstore")
    return checked


class FilterModule:
    """tgt_portals, tgt_portal_changes, tgt_portals_differ, storage_ips, systemd_escape, iscsi_name,
    valid_backends, nfs_export_lines, nfs_share, mount_options."""

    def filters(self):
        return {
            "tgt_portals": _wrap(tgt_portals),
            "tgt_portal_changes": _wrap(tgt_portal_changes),
            "tgt_portals_differ": portals_differ,
            "storage_ips": _wrap(storage_ips),
            "systemd_escape": systemd_escape,
            "iscsi_name": _wrap(iscsi_name),
            "valid_backends": _wrap(valid_backends),
            "nfs_export_lines": _wrap(export_lines),
            "nfs_share": _wrap(parse_share),
            "mount_options": _wrap(mount_options),
        }

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NFS exports and shares, validated before they reach ``/etc/exports.d`` or ``/etc/fstab``.

An export lists its clients explicitly (host addresses or networks, never ``*`` or a host name: the list is the
access control) and squashes root unless told otherwise: root on a client acts as the anonymous user
(``anonuid``/``anongid``, 65534 by default), which owns the exported directory, so the storage nodes can write to
it without being root on the server. The options are exports(5)'s.
"""

from __future__ import annotations

import posixpath
import re

from ansible_collections.ember.blockstore.plugins.module_utils._address import acl_entry, host_address
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, show_value

__all__ = ["export_lines", "parse_share", "EXPORT_MIN_PREFIX", "DEFAULT_EXPORT_OPTIONS", "mount_options"]

# The widest network an export may list: (IPv4, IPv6) prefix lengths.
EXPORT_MIN_PREFIX = (16, 48)
# What every export gets before its own options: synchronous writes (a backup's fsync means it is on the
# server's disk), no subtree check (exports(5) recommends it), writable.
DEFAULT_EXPORT_OPTIONS = ("rw", "sync", "no_subtree_check")
# exports(5) options an export may add. Security-relevant ones are handled by their own fields (root_squash) or
# refused (insecure: ports above 1024 would let any user on a client speak NFS as that client).
_ALLOWED_OPTIONS = {"ro", "rw", "sync", "async", "wdelay", "no_wdelay", "subtree_check", "no_subtree_check",
                    "hide", "nohide", "crossmnt", "secure_locks", "insecure_locks", "all_squash", "no_all_squash",
                    "fsid", "anonuid", "anongid", "sec", "mp", "pnfs", "no_pnfs"}
_REFUSED_OPTIONS = {"root_squash": "use root_squash: true/false", "no_root_squash": "use root_squash: false",
                    "insecure": "clients must use privileged ports"}
_OPTION_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
# Paths: absolute, printable, no whitespace, no characters exports(5) or fstab treat specially.
_PATH_RE = re.compile(r"^/[A-Za-z0-9_.+@/-]{0,4094}$")
_MOUNT_OPTION_RE = re.compile(r"^[A-Za-z0-9_.=:-]{1,64}$")


def _path(value, field):
    if not isinstance(value, str) or not _PATH_RE.match(value):
        raise NameError_("%s: %s is not an absolute path of letters, digits and _ . + @ / -"
                         % (field, show_value(value)))
    if value != posixpath.normpath(value) or value.startswith("//") or value == "/":
        raise NameError_("%s: %s is not a normalized path below / (no . or .., no //, no trailing /, not / itself)"
                         % (field, show_value(value)))
    return value


def _options(values, field):
    if values is None:
        return []
    if not isinstance(values, list):
        raise NameError_("%s: %s is not a list of exports(5) options" % (field, show_value(values)))
    out = []
    for index, option in enumerate(values):
        where = "%s[%d]" % (field, index)
        if not isinstance(option, str):
            raise NameError_("%s: %s is not a string" % (where, show_value(option)))
        key, sep, value = option.partition("=")
        if key in _REFUSED_OPTIONS:
            raise NameError_("%s: %s is not accepted here (%s)" % (where, show_value(option), _REFUSED_OPTIONS[key]))
        if key not in _ALLOWED_OPTIONS:
            raise NameError_("%s: %s is not an exports(5) option this role writes (one of %s)"
                             % (where, show_value(option), ", ".join(sorted(_ALLOWED_OPTIONS))))
        if sep and not _OPTION_VALUE_RE.match(value):
            raise NameError_("%s: %s has a value that is not letters, digits, _ . : -" % (where, show_value(option)))
        out.append(option)
    return out


def export_lines(exports, root_squash=True, field="blockstore_nfs_exports"):
    """The lines of an exports(5) file for ``exports``: ``[{path, clients: [address or network], options:
    [option], root_squash: bool}]``, one line per export: ``<path> <client>(rw,sync,no_subtree_check,<options>,
    root_squash) ...``, clients in canonical form, sorted, each once.

    ``root_squash`` is the default of every export without its own. Raises NameError_ naming the field and the
    value on: a path that is not absolute and normalized, a path listed twice, an empty client list, a client that
    is not an IP address or a network at most /16 (IPv4) or /48 (IPv6) wide (no ``*``, no host names: the list is
    the access control), an option outside exports(5)'s list, ``insecure``, or ``root_squash``/``no_root_squash``
    written as an option (they have their own field)."""
    if not isinstance(exports, list):
        raise NameError_("%s: %s is not a list of exports" % (field, show_value(exports)))
    lines, seen = [], set()
    for index, export in enumerate(exports):
        where = "%s[%d]" % (field, index)
        if not isinstance(export, dict):
            raise NameError_("%s: %s is not a mapping with path and clients" % (where, show_value(export)))
        unknown = sorted(set(export) - {"path", "clients", "options", "root_squash", "owner", "group", "mode"})
        if unknown:
            raise NameError_("%s: unknown key(s) %s (path, clients, options, root_squash, owner, group, mode)"
                             % (where, ", ".join(unknown)))
        path = _path(export.get("path"), where + ".path")
        if path in seen:
            raise NameError_("%s.path: %s is exported twice" % (where, show_value(path)))
        seen.add(path)
        clients = export.get("clients")
        if not isinstance(clients, list) or not clients:
            raise NameError_("%s.clients: %s is not a non-empty list of addresses or networks (an export lists "
                             "its clients explicitly)" % (where, show_value(clients)))
        canonical = sorted({acl_entry(client, "%s.clients[%d]" % (where, cindex), allow_networks=True,
                                      min_prefix=EXPORT_MIN_PREFIX)
                            for cindex, client in enumerate(clients)})
        squash = export.get("root_squash", root_squash)
        if not isinstance(squash, bool):
            raise NameError_("%s.root_squash: %s is not a boolean" % (where, show_value(squash)))
        options = list(DEFAULT_EXPORT_OPTIONS)
        for option in _options(export.get("options"), where + ".options"):
            if option.partition("=")[0] in ("ro", "rw"):
                options = [o for o in options if o not in ("ro", "rw")]
            if option not in options:
                options.append(option)
        options.append("root_squash" if squash else "no_root_squash")
        opts = ",".join(options)
        lines.append("%s %s" % (path, " ".join("%s(%s)" % (_bracketed(c), opts) for c in canonical)))
    return lines


def _bracketed(client):
    # exports(5) takes IPv6 addresses and networks as they are written (no brackets needed); kept as a hook so the
    # form is decided in one place.
    return client


def parse_share(value, field="share"):
    """``server:/export`` -> ``{"server": address, "export": path}``: the server is an IP address (IPv6 in
    brackets: ``[fd00::5]:/srv/x``), the export an absolute normalized path. Raises NameError_ naming the field."""
    if not isinstance(value, str) or ":/" not in value:
        raise NameError_("%s: %s is not an NFS share written server:/export" % (field, show_value(value)))
    server, _sep, export = value.rpartition(":/")
    export = "/" + export
    if server.startswith("[") and server.endswith("]"):
        server = server[1:-1]
    return {"server": host_address(server, field + " (server)"), "export": _path(export, field + " (export)")}


def mount_options(options, field="mount options"):
    """A list of mount options (``hard``, ``vers=4.2``...) joined with commas for fstab, each checked to be
    letters, digits and ``_ . = : -`` (nothing fstab or a shell would split on)."""
    if not isinstance(options, list) or not options:
        raise NameError_("%s: %s is not a non-empty list of mount options" % (field, show_value(options)))
    for index, option in enumerate(options):
        if not isinstance(option, str) or not _MOUNT_OPTION_RE.match(option):
            raise NameError_("%s[%d]: %s is not a mount option of letters, digits and _ . = : -"
                             % (field, index, show_value(option)))
    return ",".join(options)

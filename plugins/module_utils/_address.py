# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IP addresses, ACL entries and portals, parsed with the standard library's ``ipaddress`` (it is on every managed
host; ``netaddr`` is not) before they reach a tgt file, a systemd unit or a command line.

``tgt-admin`` runs every ``tgtadm`` line it builds from a target file through ``/bin/sh`` (Perl ``system`` with one
string), so a value is only ever written in the canonical form the parser gives back: digits, hex digits, ``.``,
``:``, ``/``, ``[]`` and a zone id of interface-name characters. Nothing else can get through.
"""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, show_value

__all__ = ["acl_entry", "host_address", "portal", "listen_portal", "storage_ips", "DEFAULT_MIN_PREFIX",
           "DEFAULT_PORT"]

DEFAULT_PORT = 3260
# The widest network an ACL may bind when networks are allowed: (IPv4, IPv6) prefix lengths.
DEFAULT_MIN_PREFIX = (24, 64)
# Bounds of the configurable minimum: an ACL never binds /0, and never a network wider than these.
MIN_PREFIX_BOUNDS = (8, 16)
# Linux interface names: at most IFNAMSIZ - 1 = 15 characters; here letters, digits, '_', '.', '-' only.
_ZONE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_PORT_RE = re.compile(r"^[0-9]{1,5}$")
_MAX_TEXT = 64  # the longest IPv6 address with a zone id and a prefix length is about 60 characters


def _text(value, field, what):
    if not isinstance(value, str) or not value or len(value) > _MAX_TEXT or not value.isascii() \
            or not value.isprintable() or value != value.strip():
        raise NameError_("%s: %s is not %s" % (field, show_value(value), what))
    return value


def _split_zone(value, field, what):
    """``(address, zone or None)``; a zone id only on an IPv6 address and only of interface-name characters."""
    if "%" not in value:
        return value, None
    address, zone = value.split("%", 1)
    if not _ZONE_RE.fullmatch(zone):
        raise NameError_("%s: %s is not %s: the zone id after '%%' must be an interface name (1-15 letters, "
                         "digits, '_', '.' or '-')" % (field, show_value(value), what))
    return address, zone


def _parse_address(value, field, what):
    address, zone = _split_zone(value, field, what)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        raise NameError_("%s: %s is not %s" % (field, show_value(value), what)) from None
    if zone is not None and parsed.version != 6:
        raise NameError_("%s: %s is not %s: only an IPv6 address has a zone id" % (field, show_value(value), what))
    return parsed, zone


def _joined(parsed, zone):
    return str(parsed) if zone is None else "%s%%%s" % (parsed, zone)


def host_address(value, field, allow_unspecified=False):
    """A single host's IP address in canonical form (``2001:DB8::15`` -> ``2001:db8::15``; an IPv6 zone id is
    kept). The unspecified (``0.0.0.0``, ``::``), multicast and IPv4 broadcast addresses are refused unless
    ``allow_unspecified`` (a listening address may be the wildcard)."""
    what = "an IP address"
    parsed, zone = _parse_address(_text(value, field, what), field, what)
    if parsed.is_multicast or (parsed.version == 4 and parsed == ipaddress.IPv4Address("255.255.255.255")) \
            or (parsed.is_unspecified and not allow_unspecified):
        raise NameError_("%s: %s is not a host address" % (field, show_value(value)))
    return _joined(parsed, zone)


def acl_entry(value, field, allow_networks=False, min_prefix=DEFAULT_MIN_PREFIX):
    """An ``initiator-address`` entry: a host address in canonical form. A ``/32`` (``/128``) network is that
    host. Any other network is refused unless ``allow_networks``, and then only when its prefix is at least
    ``min_prefix`` (IPv4, IPv6) long and it has no host bits set (``198.18.0.21/24`` is a typo, not a network)."""
    what = "an IP address" if not allow_networks else "an IP address or network"
    _text(value, field, what)
    if "/" not in value:
        return host_address(value, field)
    address, _sep, length = value.partition("/")
    if "%" in address:
        raise NameError_("%s: %s is not %s: a network has no zone id" % (field, show_value(value), what))
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        detail = "host bits are set; a network is written with its first address" if "host bits" in str(exc) \
            else "not a valid prefix length" if address and _is_ip(address) else None
        raise NameError_("%s: %s is not %s%s" % (field, show_value(value), what,
                                                 ": " + detail if detail else "")) from None
    if not length.isdigit():
        raise NameError_("%s: %s is not %s" % (field, show_value(value), what))
    if network.prefixlen == network.max_prefixlen:
        return host_address(str(network.network_address), field)
    if not allow_networks:
        raise NameError_("%s: %s is a network; an ACL entry is a consumer's host address (bind a network only "
                         "with allow_networks: true)" % (field, show_value(value)))
    floor = min_prefix[0] if network.version == 4 else min_prefix[1]
    if network.prefixlen < floor:
        raise NameError_("%s: %s is wider than /%d, the widest network an ACL may bind (acl_min_prefix)"
                         % (field, show_value(value), floor))
    return str(network)


def _is_ip(text):
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_min_prefix(min_prefix, field="acl_min_prefix"):
    """Validate the configurable (IPv4, IPv6) floor of ACL networks: never below /8 and /16 (never /0)."""
    v4, v6 = min_prefix
    for value, low, high, family in ((v4, MIN_PREFIX_BOUNDS[0], 32, "ipv4"), (v6, MIN_PREFIX_BOUNDS[1], 128, "ipv6")):
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise NameError_("%s.%s: %s is not a prefix length from %d to %d"
                             % (field, family, show_value(value), low, high))
    return (v4, v6)


def _split_port(value, field, what):
    """``(host part, port or None)`` of ``ip``, ``ip:port``, ``[v6]``, ``[v6]:port`` or a bare IPv6 address."""
    if value.startswith("["):
        host, sep, rest = value[1:].partition("]")
        if not sep:
            raise NameError_("%s: %s is not %s" % (field, show_value(value), what))
        if rest == "":
            return host, None, True
        if not rest.startswith(":"):
            raise NameError_("%s: %s is not %s" % (field, show_value(value), what))
        return host, rest[1:], True
    if value.count(":") > 1:  # a bare IPv6 address
        return value, None, True
    host, sep, port = value.partition(":")
    return host, (port if sep else None), False


def _port(port, field, value, default):
    if port is None:
        return default
    if not _PORT_RE.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise NameError_("%s: %s has no valid port (1-65535)" % (field, show_value(value)))
    return int(port)


def portal(value, field="portal", default_port=DEFAULT_PORT, allow_unspecified=False):
    """An iSCSI portal ``ip``, ``ip:port``, ``[ipv6]:port`` (or a bare IPv6 address) in canonical form with the
    port: ``198.18.0.11:3260``, ``[fd00::11]:3260``. Host names are refused (the storage address is an IP)."""
    what = "a portal (IP address, optionally with :port)"
    _text(value, field, what)
    host, port, bracketed = _split_port(value, field, what)
    try:
        address = host_address(host, field, allow_unspecified=allow_unspecified) if host else None
    except NameError_:
        address = None
    if address is None or (":" in address) != bracketed:
        raise NameError_("%s: %s is not %s" % (field, show_value(value), what))
    number = _port(port, field, value, default_port)
    return ("[%s]:%d" if bracketed else "%s:%d") % (address, number)


def listen_portal(value, field="blockstore_tgt_portal_addresses", port=DEFAULT_PORT):
    """A portal tgtd listens on (``--param portal=...``): as :func:`portal`, and the wildcard addresses
    ``0.0.0.0``/``::`` are allowed (an explicit choice to listen everywhere)."""
    return portal(value, field, default_port=port, allow_unspecified=True)


def storage_ips(primary=None, addresses=None, host="this host", validate=True):
    """A host's addresses on the storage network(s), the primary first: ``blockstore_storage_ip`` (``primary``)
    and ``blockstore_storage_ips`` (``addresses``, a list). The primary is ``blockstore_storage_ip`` when set, else
    the list's first entry; the others follow in the list's order, each once. Every entry is one host address
    (:func:`host_address`, canonical form); NameError_ names the host and the variable otherwise. ``[]`` when
    neither is set (null and ``""`` count as unset). Without ``validate`` the entries are taken as they are (as
    strings; the plan filter checks them with netaddr and names every bad one)."""
    if addresses in (None, ""):
        addresses = []
    if not isinstance(addresses, (list, tuple)):
        raise NameError_("%s: blockstore_storage_ips is %s, not a list of IP addresses" % (host, show_value(addresses)))

    def check(value, field):
        return host_address(value, field) if validate else str(value)
    found = []
    if primary not in (None, ""):
        found.append(check(primary, "%s: blockstore_storage_ip" % host))
    for index, value in enumerate(addresses):
        address = check(value, "%s: blockstore_storage_ips[%d]" % (host, index))
        if address not in found:
            found.append(address)
    return found

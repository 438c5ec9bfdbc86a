# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_address``: ACL entries, host addresses and portals parsed with ``ipaddress`` (issue 7, items 1 and 3)."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._address import (
    acl_entry,
    check_min_prefix,
    host_address,
    listen_portal,
    portal,
    storage_ips,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_


@pytest.mark.parametrize(("given", "expected"), [
    ("198.18.0.21", "198.18.0.21"),
    ("2001:DB8::15", "2001:db8::15"),
    ("fe80::1%eth1", "fe80::1%eth1"),
    ("fe80::1%enp0s3.100", "fe80::1%enp0s3.100"),
    ("fe80::1%br-lan_2", "fe80::1%br-lan_2"),
    ("198.18.0.21/32", "198.18.0.21"),
    ("2001:db8::15/128", "2001:db8::15"),
])
def test_host_addresses(given, expected):
    assert acl_entry(given, "f") == expected


@pytest.mark.parametrize("value", [
    "fe80::1%a;touch${IFS}x;#",  # the injection of issue 7: ';' and '$' in a zone id
    "fe80::1%eth0\ninitiator-address ALL",  # a newline that would add an ACL line
    "fe80::1%", "fe80::1%-eth0", "fe80::1%" + "e" * 16, "fe80::1%eth 0", "fe80::1%eth0%eth1", "fe80::1%é",
    "198.18.0.21%eth0", "198.18.0.21\n", "198.18.0.21\x00", " 198.18.0.21", "198.18.0.21 ", "$(reboot)",
    "`reboot`", "-I", "ALL", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255", "1" * 5000, "",
    None, 5, ["198.18.0.21"], "١٩٨.١٨.٠.٢١",  # Arabic-Indic digits: not ASCII
])
def test_hostile_or_non_host_addresses_are_refused(value):
    with pytest.raises(NameError_) as excinfo:
        acl_entry(value, "attachments[0].initiator_addresses[0]")
    assert str(excinfo.value).startswith("attachments[0].initiator_addresses[0]: ")
    assert "\n" not in str(excinfo.value) and "\x00" not in str(excinfo.value)


@pytest.mark.parametrize("value", ["198.18.0.0/24", "198.18.0.0/16", "0.0.0.0/0", "::/0", "2001:db8::/64"])
def test_networks_need_the_opt_in(value):
    with pytest.raises(NameError_, match="is a network; an ACL entry is a consumer's host address"):
        acl_entry(value, "f")


@pytest.mark.parametrize(("value", "ok"), [
    ("198.18.0.0/24", True), ("198.18.0.0/25", True), ("198.18.0.0/23", False), ("0.0.0.0/0", False),
    ("2001:db8::/64", True), ("2001:db8::/96", True), ("2001:db8::/63", False), ("::/0", False),
])
def test_networks_are_never_wider_than_the_floor(value, ok):
    if ok:
        assert acl_entry(value, "f", allow_networks=True) == value
    else:
        with pytest.raises(NameError_, match="is wider than /"):
            acl_entry(value, "f", allow_networks=True)


@pytest.mark.parametrize("value", ["198.18.0.21/24", "198.18.0.21/0", "2001:db8::1/64", "::1/0"])
def test_host_bits_set_is_a_typo_not_a_network(value):
    for networks in (False, True):
        with pytest.raises(NameError_, match="host bits are set"):
            acl_entry(value, "f", allow_networks=networks)


@pytest.mark.parametrize("value", ["198.18.0.0/255.255.255.0", "198.18.0.0/24 ", "198.18.0.0/+24", "198.18.0.0//24",
                                   "fe80::%eth0/64", "198.18.0.0/024x"])
def test_other_network_forms_are_refused(value):
    with pytest.raises(NameError_):
        acl_entry(value, "f", allow_networks=True)


@pytest.mark.parametrize(("value", "ok"), [((24, 64), True), ((8, 16), True), ((32, 128), True), ((0, 64), False),
                                           ((24, 0), False), ((7, 64), False), ((24, 15), False), ((33, 64), False),
                                           ((True, 64), False), (("24", 64), False)])
def test_min_prefix_is_bounded(value, ok):
    if ok:
        assert check_min_prefix(value) == value
    else:
        with pytest.raises(NameError_, match="^acl_min_prefix.ipv[46]: "):
            check_min_prefix(value)


@pytest.mark.parametrize(("given", "expected"), [
    ("198.18.0.11", "198.18.0.11:3260"), ("198.18.0.11:3261", "198.18.0.11:3261"),
    ("fd00::11", "[fd00::11]:3260"), ("[fd00::11]", "[fd00::11]:3260"), ("[FD00::11]:3261", "[fd00::11]:3261"),
    ("[fe80::1%eth1]:3260", "[fe80::1%eth1]:3260"),
])
def test_portals(given, expected):
    assert portal(given) == expected


@pytest.mark.parametrize("value", [
    "stor1.example", "stor1:3260", "198.18.0.11:0", "198.18.0.11:65536", "198.18.0.11:3260x", "198.18.0.11:",
    "[198.18.0.11]:3260", "[fd00::11", "[fd00::11]x", "0.0.0.0", "[::]:3260", "198.18.0.11:3260\n",
    "198.18.0.11;reboot", "-p", "$(reboot)", "`reboot`", "\x00", "é", "1" * 5000, "",
])
def test_bad_portals(value):
    with pytest.raises(NameError_, match=r"^portal: "):
        portal(value)


def test_listen_portal_allows_the_wildcards():
    assert listen_portal("0.0.0.0") == "0.0.0.0:3260"
    assert listen_portal("::", port=3261) == "[::]:3261"
    assert host_address("0.0.0.0", "f", allow_unspecified=True) == "0.0.0.0"
    with pytest.raises(NameError_):
        host_address("0.0.0.0", "f")


# --- storage_ips: blockstore_storage_ip + blockstore_storage_ips ------------------------------------------------

@pytest.mark.parametrize("primary, addresses, expected", [
    ("198.18.0.11", None, ["198.18.0.11"]),
    ("198.18.0.11", [], ["198.18.0.11"]),
    (None, ["198.18.0.11", "198.18.1.11"], ["198.18.0.11", "198.18.1.11"]),  # the list's first is the primary
    ("", ["198.18.1.11", "198.18.0.11"], ["198.18.1.11", "198.18.0.11"]),
    ("198.18.1.11", ["198.18.0.11", "198.18.1.11"], ["198.18.1.11", "198.18.0.11"]),  # the primary first, once
    ("FD00::11", ["fd00::11", "198.18.1.11"], ["fd00::11", "198.18.1.11"]),  # canonical form, then deduplicated
    (None, None, []),
])
def test_storage_ips(primary, addresses, expected):
    assert storage_ips(primary, addresses, "stor1") == expected


@pytest.mark.parametrize("primary, addresses, field", [
    ("198.18.0.300", [], "stor1: blockstore_storage_ip"),
    ("198.18.0.11", ["198.18.1.11", "198.18.1.0/24"], "stor1: blockstore_storage_ips[1]"),
    (None, ["0.0.0.0"], "stor1: blockstore_storage_ips[0]"),
    (None, ["198.18.1.11;reboot"], "stor1: blockstore_storage_ips[0]"),
    (None, "198.18.1.11", "stor1: blockstore_storage_ips is"),
])
def test_storage_ips_refuses_what_is_not_a_host_address(primary, addresses, field):
    with pytest.raises(NameError_) as info:
        storage_ips(primary, addresses, "stor1")
    assert str(info.value).startswith(field)


def test_storage_ips_without_validation_keeps_the_values():
    assert storage_ips("x", ["x", "y"], validate=False) == ["x", "y"]


def test_the_storage_ips_filter_reads_host_vars():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.ember.blockstore.plugins.filter.validate import FilterModule
    storage_ips_filter = FilterModule().filters()["storage_ips"]
    assert storage_ips_filter({"blockstore_storage_ips": ["198.18.0.21", "198.18.1.21"]}) == [
        "198.18.0.21", "198.18.1.21"]
    assert storage_ips_filter({"blockstore_storage_ip": "198.18.0.21"}) == ["198.18.0.21"]
    assert storage_ips_filter({}) == []
    with pytest.raises(AnsibleFilterError, match="client1: blockstore_storage_ips"):
        storage_ips_filter({"inventory_hostname": "client1", "blockstore_storage_ips": ["bad"]}, validate=True)

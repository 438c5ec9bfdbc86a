# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import re

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    LV_PREFIX,
    NameError_,
    chap_username,
    lv_name,
    target_iqn,
    tgt_conf_path,
    validate_iqn,
    validate_type_name,
    validate_volume_name,
    volume_name_from_lv,
)


@pytest.mark.parametrize("name", ["a", "0", "db01", "db01-data", "a.b-c", "x" * 63, "1-2.3"])
def test_valid_volume_names(name):
    assert validate_volume_name(name) == name


@pytest.mark.parametrize("name", [
    "", "A", "Db01", "-a", "a-", ".a", "a.", "a_b", "a b", "a/b", "x" * 64, "é", None, 5, ["a"],
])
def test_invalid_volume_names_name_field_and_value(name):
    with pytest.raises(NameError_) as excinfo:
        validate_volume_name(name, "blockstore_volumes[3].name")
    message = str(excinfo.value)
    assert message.startswith(f"blockstore_volumes[3].name: {name!r} is not a valid volume name")


def test_names_with_trailing_newline_are_rejected():
    with pytest.raises(NameError_):
        validate_volume_name("db01\n")
    with pytest.raises(NameError_):
        validate_type_name("fast\n")
    with pytest.raises(NameError_):
        validate_iqn("iqn.2004-10.com.example:host1\n")


def test_name_error_is_a_value_error():
    assert issubclass(NameError_, ValueError)


@pytest.mark.parametrize("name", ["fast", "Bulk_HDD", "gold+", "a.b-c", "_x", "x" * 63])
def test_valid_type_names(name):
    assert validate_type_name(name) == name


@pytest.mark.parametrize("name", ["", "-fast", "a b", "a:b", "a/b", "x" * 64, None, 1])
def test_invalid_type_names(name):
    with pytest.raises(NameError_, match=r"^blockstore_volume_types: .* is not a valid volume type name"):
        validate_type_name(name, "blockstore_volume_types")


@pytest.mark.parametrize("iqn", [
    "iqn.2004-10.com.example:host1",
    "iqn.1993-08.org.debian:01:abcdef0123",
    "iqn.2026-11.io.ember.blockstore",
    "eui.02004567a425678d",
    "naa.52004567ba64678d",
])
def test_valid_iqns(iqn):
    assert validate_iqn(iqn) == iqn


@pytest.mark.parametrize("iqn", [
    "", "iqn.04-10.com.example", "IQN.2004-10.com.example:x", "iqn.2004-10.com.example:a b", "eui.123",
    "naa.xyz", "host1", None,
])
def test_invalid_iqns(iqn):
    with pytest.raises(NameError_, match=r"^initiator: .* is not an iSCSI name"):
        validate_iqn(iqn)


def test_lv_name_round_trip():
    assert LV_PREFIX == "volume-"
    assert lv_name("db01") == "volume-db01"
    assert volume_name_from_lv(lv_name("db01")) == "db01"
    assert volume_name_from_lv("thinpool") is None
    assert volume_name_from_lv("volume-") == ""


def test_target_iqn():
    assert target_iqn("db01") == DEFAULT_TARGET_PREFIX + "volume-db01"
    assert target_iqn("db01", "iqn.2010-10.org.openstack:") == "iqn.2010-10.org.openstack:volume-db01"
    validate_iqn(target_iqn("a.b-c"))


def test_chap_username_uses_word_characters_only():
    assert re.fullmatch(r"ember_db01_[0-9a-f]{8}", chap_username("db01"))
    assert re.fullmatch(r"ember_db01_data_x_[0-9a-f]{8}", chap_username("db01-data.x"))


def test_chap_usernames_of_similar_names_differ():
    # tgt accounts are global: a.b and a-b must not share one.
    assert chap_username("a.b") != chap_username("a-b")
    assert chap_username("a.b") == chap_username("a.b")


def test_tgt_conf_path():
    assert tgt_conf_path("db01") == "/etc/tgt/conf.d/ember-volume-db01.conf"
    assert tgt_conf_path("db01", "/tmp/conf") == "/tmp/conf/ember-volume-db01.conf"

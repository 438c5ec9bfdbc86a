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


# --- issue 7: target prefix, LVM names, CHAP, text ------------------------------------------------------------

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (  # noqa: E402
    MAX_IQN_BYTES,
    MAX_TARGET_PREFIX_BYTES,
    is_managed_lv,
    is_managed_snapshot,
    validate_backend_name,
    validate_chap_secret,
    validate_chap_username,
    validate_device_path,
    validate_lv_name,
    validate_target_prefix,
    validate_text,
    validate_vg_name,
)

HOSTILE = ["a\nb", "a;b", "$(reboot)", "`reboot`", "-rf", "a\x00b", "x" * 5000, "é", "a b", "a\tb", "a\rb"]


@pytest.mark.parametrize("prefix", [
    DEFAULT_TARGET_PREFIX, "iqn.2010-10.org.openstack:", "iqn.2004-10.com.example.storage:pool1.",
    "iqn.1993-08.org.debian:01:", "iqn.2026-12.io.x:a-b:c.", "iqn.2026-01.x:" + "a" * (MAX_TARGET_PREFIX_BYTES - 14),
])
def test_valid_target_prefixes(prefix):
    assert validate_target_prefix(prefix) == prefix
    # Every volume name fits: the longest IQN is still an iSCSI name of at most 223 bytes.
    assert len(target_iqn("x" * 63, prefix)) <= MAX_IQN_BYTES
    validate_iqn(target_iqn("x" * 63, prefix))


@pytest.mark.parametrize("prefix", HOSTILE + [
    "", "iqn.2026-11.io.ember.blockstore", "iqn.2026-13.io.x:", "iqn.26-11.io.x:", "IQN.2026-11.io.x:",
    "iqn.2026-11.io.X:", "iqn.2026-11..x:", "iqn.2026-11.-x:", "iqn.2026-11.x-:", "iqn.2026-11.x:a b",
    "iqn.2026-11.x:a_b", "eui.02004567a425678d", "naa.52004567ba64678d",
    "iqn.2026-01.x:" + "a" * (MAX_TARGET_PREFIX_BYTES - 13),  # 154 bytes: volume-<63> would pass 223
    "iqn.2026-11.io.x:" + "a" * 5000, None, 5,
])
def test_invalid_target_prefixes(prefix):
    with pytest.raises(NameError_, match=r"^blockstore_target_prefix: .* is not an IQN prefix"):
        validate_target_prefix(prefix, "blockstore_target_prefix")


def test_iqn_length_is_bounded():
    assert MAX_IQN_BYTES == 223
    validate_iqn("iqn.2004-10.com.example:" + "a" * (223 - 24))
    with pytest.raises(NameError_, match="at most 223 bytes"):
        validate_iqn("iqn.2004-10.com.example:" + "a" * (224 - 24))


@pytest.mark.parametrize("name", ["ember-vg", "vg0", "a", "A+B_c.d-e", "x" * 127, "_x", ".x", "+x"])
def test_valid_vg_names(name):
    assert validate_vg_name(name) == name


@pytest.mark.parametrize("name", HOSTILE + ["", ".", "..", "x" * 128, "a/b", "a:b", None, 1])
def test_invalid_vg_names(name):
    with pytest.raises(NameError_, match=r"^volumes\[0\]\.vg: .* is not a valid volume group name"):
        validate_vg_name(name, "volumes[0].vg")


@pytest.mark.parametrize("name", ["thinpool", "pool0", "my_pool"])
def test_valid_lv_names(name):
    assert validate_lv_name(name) == name


@pytest.mark.parametrize("name", HOSTILE + ["", ".", "snapshot1", "pvmove0", "pool_tdata", "pool_tmeta", "x_rimage_1"])
def test_invalid_lv_names(name):
    with pytest.raises(NameError_, match=r"^volumes\[0\]\.thin_pool: "):
        validate_lv_name(name, "volumes[0].thin_pool")


@pytest.mark.parametrize("name", HOSTILE + ["", "a@b", "x" * 64, "a=b", "a,b"])
def test_invalid_backend_names(name):
    with pytest.raises(NameError_, match=r"^backends\[0\]\.name: "):
        validate_backend_name(name, "backends[0].name")


@pytest.mark.parametrize("path", ["/dev/vdb", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4", "/dev/mapper/mpatha",
                                  "/dev/disk/by-path/pci-0000:00:04.0"])
def test_valid_device_paths(path):
    assert validate_device_path(path) == path


@pytest.mark.parametrize("path", HOSTILE + ["vdb", "/", "/dev/../etc/passwd", "/dev/./vdb", "dev/vdb", "/dev/a b",
                                            "/dev/" + "x" * 300])
def test_invalid_device_paths(path):
    with pytest.raises(NameError_, match=r"^backends\[0\]\.pvs\[1\]: "):
        validate_device_path(path, "backends[0].pvs[1]")


@pytest.mark.parametrize("value", ["a" * 12, "Abc_123456789", "x" * 255])
def test_valid_chap_secrets(value):
    assert validate_chap_secret(value) == value


@pytest.mark.parametrize("value", HOSTILE + ["a" * 11, "x" * 256, "", "pass-word-123", None])
def test_invalid_chap_secrets_never_show_the_value(value):
    with pytest.raises(NameError_) as excinfo:
        validate_chap_secret(value, "chap_password")
    assert str(excinfo.value).startswith("chap_password: ")
    if isinstance(value, str) and len(value) > 2:
        assert value not in str(excinfo.value)


@pytest.mark.parametrize("value", HOSTILE + ["", "x" * 256, "a-b"])
def test_invalid_chap_users(value):
    with pytest.raises(NameError_, match="^chap_username: must be 1-255 letters"):
        validate_chap_username(value)


@pytest.mark.parametrize("value", ["a\nb", "a\x00b", "a\x7fb", "é", "x" * 256, "", None])
def test_text_refuses_control_characters_non_ascii_and_long(value):
    with pytest.raises(NameError_, match="^availability_zone: "):
        validate_text(value, "availability_zone")


def test_text_names_a_long_value_by_its_start_and_length():
    with pytest.raises(NameError_) as excinfo:
        validate_text("x" * 5000, "host")
    assert "(5000 characters)" in str(excinfo.value)
    assert len(str(excinfo.value)) < 200


@pytest.mark.parametrize(("tags", "name", "managed"), [
    (["ember.blockstore", "ember.volume=a"], "volume-a", True),
    (["ember.blockstore"], "volume-a", False),
    (["ember.volume=a"], "volume-a", False),
    (["ember.blockstore", "ember.volume=b"], "volume-a", False),
    (["ember.blockstore", "ember.volume=a"], "snap-a", False),
    (["ember.blockstore", "ember.volume="], "volume-", False),
])
def test_managed_means_both_tags_on_the_named_lv(tags, name, managed):
    assert is_managed_lv({"name": name, "tags": tags}) is managed


def test_managed_snapshot_needs_three_tags():
    full = ["ember.blockstore", "ember.volume=a", "ember.snapshot=nightly"]
    assert is_managed_snapshot({"tags": full}, "a")
    assert not is_managed_snapshot({"tags": full}, "b")
    for missing in full:
        assert not is_managed_snapshot({"tags": [t for t in full if t != missing]}, "a")


def test_type_name_names_the_builtin_of_ansibles_tagged_values():
    from ansible_collections.ember.blockstore.plugins.module_utils._naming import type_name
    from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
    from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.request_spec import validate_requests

    class _TaggedStr(str):  # what Ansible's templating hands over (_AnsibleTaggedStr)
        pass

    assert [type_name(v) for v in (_TaggedStr("x"), True, 1, 1.5, {}, [], None)] == [
        "str", "bool", "int", "float", "dict", "list", "NoneType"]
    try:
        validate_requests(_TaggedStr("db01"))
    except ScheduleError as exc:
        assert str(exc) == "blockstore_volumes: expected a list of volumes, got str"
    else:
        raise AssertionError("a string is not a list of volumes")

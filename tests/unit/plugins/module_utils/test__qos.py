# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import os

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _qos
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_
from ansible_collections.ember.blockstore.plugins.module_utils._qos import (
    CgroupError,
    clear_line,
    device_number,
    format_io_max,
    io_accounting_command,
    io_max_differs,
    limits_of,
    parse_io_max,
    resolve_cgroup,
    validate_cgroup_unit,
    validate_qos_specs,
)

FIELD = "blockstore_volume_types.gold.qos_specs"


# --- validate_qos_specs ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("key", "io_max_key"), [
    ("read_bytes_sec", "rbps"), ("write_bytes_sec", "wbps"), ("read_iops_sec", "riops"), ("write_iops_sec", "wiops"),
])
@pytest.mark.parametrize("value", [500, "500"])
def test_each_cinder_key_maps_to_its_io_max_key(key, io_max_key, value):
    assert validate_qos_specs({key: value}, FIELD) == {io_max_key: 500}


def test_all_four_keys_and_consumer_together():
    specs = {"consumer": "front-end", "read_bytes_sec": "104857600", "write_bytes_sec": 52428800,
             "read_iops_sec": "2000", "write_iops_sec": 1000}
    assert validate_qos_specs(specs, FIELD) == {"rbps": 104857600, "wbps": 52428800, "riops": 2000, "wiops": 1000}


@pytest.mark.parametrize("specs", [None, {}, {"consumer": "front-end"}, {"consumer": "both"}])
def test_no_limits(specs):
    assert validate_qos_specs(specs, FIELD) == {}


def test_the_specs_are_not_changed():
    specs = {"read_iops_sec": "10", "consumer": "both"}
    validate_qos_specs(specs, FIELD)
    assert specs == {"read_iops_sec": "10", "consumer": "both"}


def _refused(specs, field=FIELD):
    with pytest.raises(NameError_) as excinfo:
        validate_qos_specs(specs, field)
    assert isinstance(excinfo.value, ValueError)
    return str(excinfo.value)


@pytest.mark.parametrize(("key", "pair"), [
    ("total_iops_sec", "read_iops_sec and write_iops_sec"), ("total_bytes_sec", "read_bytes_sec and write_bytes_sec"),
])
def test_total_limits_are_refused_with_the_read_write_pair(key, pair):
    message = _refused({key: "1000"})
    assert message.startswith("%s.%s: '1000' cannot be enforced: cgroup v2 io.max limits reads and writes "
                              "separately" % (FIELD, key))
    assert "set %s instead" % pair in message


@pytest.mark.parametrize("key", ["read_iops_sec_max", "write_iops_sec_max", "total_iops_sec_max",
                                 "read_bytes_sec_max", "write_bytes_sec_max", "total_bytes_sec_max"])
def test_bursts_are_refused(key):
    message = _refused({key: 5000})
    assert message.startswith("%s.%s: 5000 is a burst limit, which is not supported" % (FIELD, key))


@pytest.mark.parametrize("key", ["read_iops_sec_per_gb", "write_iops_sec_per_gb", "total_iops_sec_per_gb",
                                 "read_bytes_sec_per_gb", "write_bytes_sec_per_gb", "total_bytes_sec_per_gb",
                                 "read_iops_sec_per_gb_min", "total_bytes_sec_per_gb_min"])
def test_capacity_based_limits_are_refused(key):
    message = _refused({key: "30"})
    assert message.startswith("%s.%s: '30' is a capacity-based (per GB) limit, which is not supported" % (FIELD, key))


def test_size_iops_sec_is_refused():
    message = _refused({"size_iops_sec": "4096"})
    assert message.startswith("%s.size_iops_sec: '4096' (the I/O size counted as one IO) is not supported" % FIELD)


@pytest.mark.parametrize("key", ["read_iops", "iops", "READ_IOPS_SEC", "minIOPS", "rbps"])
def test_unknown_keys_are_refused(key):
    message = _refused({key: 100})
    assert message.startswith("%s: %r is not a Cinder QoS key that can be enforced here; use read_bytes_sec, "
                              "write_bytes_sec, read_iops_sec, write_iops_sec" % (FIELD, key))


def test_a_non_string_key_is_refused():
    assert _refused({5: 100}).startswith("%s: the key 5 is not a string" % FIELD)


def test_back_end_consumer_is_refused():
    message = _refused({"consumer": "back-end", "read_iops_sec": 10})
    assert message.startswith("%s.consumer: 'back-end' cannot be enforced: tgt (the target) has no I/O throttle"
                              % FIELD)


@pytest.mark.parametrize("consumer", ["frontend", "", None, "FRONT-END"])
def test_unknown_consumers_are_refused(consumer):
    assert _refused({"consumer": consumer}).startswith("%s.consumer: %r is not a QoS consumer" % (FIELD, consumer))


@pytest.mark.parametrize("value", [0, "0", 1, "1", -5])
def test_values_below_two_are_refused(value):
    message = _refused({"read_iops_sec": value})
    assert message.startswith("%s.read_iops_sec: %r is not a limit: the kernel's io.max takes 2 or more"
                              % (FIELD, value))


@pytest.mark.parametrize("value", ["-5", "1.5", "10M", " 10", "1e3", "", "+10", "١٢"])
def test_strings_that_are_not_digits_are_refused(value):
    message = _refused({"write_bytes_sec": value})
    assert message.startswith("%s.write_bytes_sec: %r is not a whole number (digits only" % (FIELD, value))


@pytest.mark.parametrize("value", [1.5, 100.0, True, None, [100], {"a": 1}])
def test_other_types_are_refused(value):
    message = _refused({"write_iops_sec": value})
    assert message.startswith("%s.write_iops_sec: %r is not a whole number" % (FIELD, value))


@pytest.mark.parametrize(("key", "largest"), [
    ("read_iops_sec", 2 ** 32 - 2), ("write_iops_sec", 2 ** 32 - 2),
    ("read_bytes_sec", 2 ** 64 - 2), ("write_bytes_sec", 2 ** 64 - 2),
])
def test_values_beyond_what_io_max_holds_are_refused(key, largest):
    assert list(validate_qos_specs({key: largest}, FIELD).values()) == [largest]
    message = _refused({key: largest + 1})
    assert message.startswith("%s.%s: %d is larger than io.max can hold" % (FIELD, key, largest + 1))


@pytest.mark.parametrize("specs", ["read_iops_sec=5", ["read_iops_sec"], 5])
def test_specs_that_are_not_a_mapping_are_refused(specs):
    assert _refused(specs, "connections[2].qos").startswith("connections[2].qos: %r is not a mapping" % (specs,))


def test_the_first_bad_key_is_named_in_sorted_order():
    assert _refused({"write_iops_sec": 0, "read_iops_sec": 0}).startswith(FIELD + ".read_iops_sec:")


# --- validate_cgroup_unit ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("unit", ["system.slice", "machine.slice", "app.service", "user-1000.slice",
                                  "getty@tty1.service", "session-3.scope", "system-ember\\x2dapp.slice"])
def test_valid_units(unit):
    assert validate_cgroup_unit(unit, "connections[0].qos_cgroup") == unit


@pytest.mark.parametrize("unit", ["-.slice", "--user", "system", "system.slice/x", "a b.slice", "", None,
                                  "system.slice\n", "x.target", "/system.slice"])
def test_invalid_units(unit):
    with pytest.raises(NameError_) as excinfo:
        validate_cgroup_unit(unit, "connections[0].qos_cgroup")
    assert str(excinfo.value).startswith("connections[0].qos_cgroup: %r is not a systemd slice or unit name" % unit)


# --- io.max ------------------------------------------------------------------------------------------------------

IO_MAX = "8:16 rbps=2097152 wbps=max riops=max wiops=120\n8:0 rbps=max wbps=max riops=500 wiops=max\n"


def test_parse_io_max():
    assert parse_io_max(IO_MAX) == {"8:16": {"rbps": 2097152, "wiops": 120}, "8:0": {"riops": 500}}


def test_parse_io_max_empty_and_unknown_lines():
    assert parse_io_max("") == {}
    assert parse_io_max(None) == {}
    assert parse_io_max("garbage\n8:32 rbps=max wbps=max riops=max wiops=max\n") == {"8:32": {}}


def test_parse_keeps_known_keys_only():
    assert parse_io_max("259:0 rbps=100 foo=3 wiops=x\n") == {"259:0": {"rbps": 100}}


def test_limits_of_a_device_without_a_line_is_no_limit():
    assert limits_of(IO_MAX, "8:32") == {}
    assert limits_of(IO_MAX, "8:16") == {"rbps": 2097152, "wiops": 120}


def test_format_io_max_writes_all_four_keys():
    assert format_io_max("8:16", {"rbps": 2097152, "wiops": 120}) == "8:16 rbps=2097152 wbps=max riops=max wiops=120"


def test_clear_line():
    assert clear_line("8:16") == "8:16 rbps=max wbps=max riops=max wiops=max"
    assert parse_io_max(clear_line("8:16")) == {"8:16": {}}


@pytest.mark.parametrize("limits", [
    {}, {"rbps": 2}, {"wbps": 2 ** 64 - 2, "riops": 7}, {"rbps": 1, "wbps": 2, "riops": 3, "wiops": 4},
])
def test_format_parse_round_trip(limits):
    assert limits_of(format_io_max("253:7", limits), "253:7") == limits


@pytest.mark.parametrize("device", ["8", "sdb", "8:16 rbps=1", "", None])
def test_format_refuses_a_bad_device(device):
    with pytest.raises(ValueError):
        format_io_max(device, {})


def test_io_max_differs_decides_the_write():
    assert not io_max_differs(IO_MAX, "8:16", {"rbps": 2097152, "wiops": 120})
    assert io_max_differs(IO_MAX, "8:16", {"rbps": 2097152})          # a limit to remove
    assert io_max_differs(IO_MAX, "8:16", {"rbps": 2097152, "wiops": 121})
    assert io_max_differs(IO_MAX, "8:32", {"riops": 5})               # no line yet
    assert not io_max_differs(IO_MAX, "8:32", {})                     # nothing to clear
    assert io_max_differs(IO_MAX, "8:0", {})                          # a limit to clear
    assert not io_max_differs(IO_MAX + clear_line("8:48") + "\n", "8:48", None)


def test_idempotent_after_writing_the_formatted_line():
    wanted = validate_qos_specs({"read_iops_sec": "500", "write_bytes_sec": 52428800})
    text = "8:16 rbps=max wbps=max riops=100 wiops=max\n"
    assert io_max_differs(text, "8:16", wanted)
    text = format_io_max("8:16", wanted) + "\n"   # as the kernel shows it afterwards
    assert not io_max_differs(text, "8:16", wanted)


# --- the host ----------------------------------------------------------------------------------------------------

class Runner:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.commands = []

    def run(self, args, check=True, ok_rcs=(0,), data=None):
        self.commands.append(args)
        return self.answers.pop(0)


@pytest.fixture
def cgroup_root(tmp_path, monkeypatch):
    root = tmp_path / "cgroup"
    (root / "system.slice").mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "system.slice" / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (root / "system.slice" / "io.max").write_text("")
    monkeypatch.setattr(_qos, "CGROUP_ROOT", str(root))
    return root


def test_resolve_cgroup(cgroup_root):
    runner = Runner((0, "/system.slice\n", ""))
    assert resolve_cgroup(runner, "system.slice") == {"path": str(cgroup_root / "system.slice"), "io": True}
    assert runner.commands == [["systemctl", "show", "-p", "ControlGroup", "--value", "system.slice"]]


def test_resolve_cgroup_without_the_io_controller(cgroup_root):
    (cgroup_root / "system.slice" / "cgroup.controllers").write_text("cpu memory pids\n")
    (cgroup_root / "system.slice" / "io.max").unlink()
    assert resolve_cgroup(Runner((0, "/system.slice\n", "")), "system.slice")["io"] is False


def test_resolve_cgroup_io_without_io_max_is_a_kernel_without_throttle(cgroup_root):
    (cgroup_root / "system.slice" / "io.max").unlink()
    with pytest.raises(CgroupError, match="no io.max: the kernel has no block throttle"):
        resolve_cgroup(Runner((0, "/system.slice\n", "")), "system.slice")


def test_resolve_cgroup_without_cgroup_v2(cgroup_root):
    (cgroup_root / "cgroup.controllers").unlink()
    runner = Runner()
    with pytest.raises(CgroupError, match="cgroup v2 is not mounted at .* io.max needs the unified hierarchy"):
        resolve_cgroup(runner, "system.slice")
    assert runner.commands == []


@pytest.mark.parametrize("out", ["", "\n"])
def test_resolve_cgroup_of_a_unit_without_cgroup(cgroup_root, out):
    with pytest.raises(CgroupError, match=r"^app.service has no control group \(it is not loaded or not active\)"):
        resolve_cgroup(Runner((0, out, "")), "app.service")


@pytest.mark.parametrize("out", ["/\n", "system.slice\n", "/system.slice/../..\n"])
def test_resolve_cgroup_refuses_the_root_and_odd_paths(cgroup_root, out):
    with pytest.raises(CgroupError, match="cannot carry io.max"):
        resolve_cgroup(Runner((0, out, "")), "system.slice")


def test_resolve_cgroup_of_a_missing_directory(cgroup_root):
    with pytest.raises(CgroupError, match="its control group /machine.slice does not exist under"):
        resolve_cgroup(Runner((0, "/machine.slice\n", "")), "machine.slice")


def test_resolve_cgroup_when_systemctl_fails(cgroup_root):
    with pytest.raises(CgroupError, match=r"systemctl show .* failed \(rc=1\): Failed to connect to bus"):
        resolve_cgroup(Runner((1, "", "Failed to connect to bus\n")), "system.slice")


def test_io_accounting_command_is_runtime_only():
    assert io_accounting_command("system.slice") == ["systemctl", "set-property", "--runtime", "system.slice",
                                                     "IOAccounting=yes"]


def test_device_number_of_a_non_block_device(tmp_path):
    path = tmp_path / "file"
    path.write_text("")
    with pytest.raises(ValueError, match="is not a block device"):
        device_number(str(path))
    with pytest.raises(OSError):
        device_number(str(tmp_path / "missing"))


@pytest.mark.skipif(not os.path.exists("/dev/loop0"), reason="needs a block device")
def test_device_number_of_a_whole_disk(tmp_path, monkeypatch):
    monkeypatch.setattr(_qos, "SYS_DEV_BLOCK", str(tmp_path))
    rdev = os.stat("/dev/loop0").st_rdev
    assert device_number("/dev/loop0") == "%d:%d" % (os.major(rdev), os.minor(rdev))


@pytest.mark.skipif(not os.path.exists("/dev/loop0"), reason="needs a block device")
def test_device_number_of_a_partition_is_its_disk(tmp_path, monkeypatch):
    # /sys/dev/block/<MAJ:MIN> of a partition has a "partition" file; its parent directory is the disk's.
    rdev = os.stat("/dev/loop0").st_rdev
    disk = tmp_path / "devices" / "sdb"
    part = disk / "sdb1"
    part.mkdir(parents=True)
    (part / "partition").write_text("1\n")
    (disk / "dev").write_text("8:16\n")
    links = tmp_path / "dev-block"
    links.mkdir()
    (links / ("%d:%d" % (os.major(rdev), os.minor(rdev)))).symlink_to(part)
    monkeypatch.setattr(_qos, "SYS_DEV_BLOCK", str(links))
    assert device_number("/dev/loop0") == "8:16"

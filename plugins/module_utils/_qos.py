# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""QoS of a volume as Cinder's front-end QoS, enforced on the consumer with cgroup v2 ``io.max``.

Cinder's qos specs (``cinder/volume/qos_specs.py``, doc/source/admin/basic-volume-qos.rst) name per-volume
limits; a ``front-end`` consumer means the hypervisor enforces them. Here the consumer host enforces them on the
iSCSI disk with the kernel's block throttle (Documentation/admin-guide/cgroup-v2.rst, "io.max"), in one cgroup
(a systemd slice or unit): every process of that cgroup (and its children) together stays below the limits.

Pure helpers (validation, io.max parsing and formatting, the idempotence decision) and two small readers of the
host (:func:`device_number`, :func:`resolve_cgroup`). Host paths are module constants looked up at call time, so
the module tests can point them at a temporary directory.
"""

from __future__ import annotations

import os
import re
import stat

from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, show_value

__all__ = ["CINDER_KEYS", "IO_MAX_KEYS", "CONSUMERS", "DEFAULT_CGROUP", "CGROUP_ROOT", "SYS_DEV_BLOCK",
           "CgroupError", "validate_qos_specs", "validate_cgroup_unit", "parse_io_max", "limits_of",
           "format_io_max", "clear_line", "io_max_differs", "device_number", "resolve_cgroup", "io_enabled",
           "io_accounting_command"]

# Host paths (looked up when used).
CGROUP_ROOT = "/sys/fs/cgroup"
SYS_DEV_BLOCK = "/sys/dev/block"

DEFAULT_CGROUP = "system.slice"
IO_MAX_KEYS = ("rbps", "wbps", "riops", "wiops")
# Cinder's front-end keys that io.max enforces as they are.
CINDER_KEYS = {
    "read_bytes_sec": "rbps",
    "write_bytes_sec": "wbps",
    "read_iops_sec": "riops",
    "write_iops_sec": "wiops",
}
# Cinder's ``consumer``: front-end (the default), back-end or both. Only the consumer host enforces anything here.
CONSUMERS = ("front-end", "both")
# block/blk-throttle.c tg_set_limit: 0 is -ERANGE, 1 is -EINVAL on 6.1 (``val > 1``); U64_MAX (bytes) and UINT_MAX
# (IOs; a larger value is clamped to it) mean "max", i.e. no limit at all.
_MINIMUM = 2
_MAXIMUM = {"rbps": 2 ** 64 - 2, "wbps": 2 ** 64 - 2, "riops": 2 ** 32 - 2, "wiops": 2 ** 32 - 2}
_DIGITS = re.compile(r"^[0-9]+$")
_DEVICE = re.compile(r"^[0-9]+:[0-9]+$")
# systemd unit names that own a cgroup (systemd.unit(5): letters, digits, ":-_.\@"); never starting with "-" (so no
# option, and not the root slice "-.slice", whose cgroup has no io.max).
_UNIT = re.compile(r"^[A-Za-z0-9:_.\\@][A-Za-z0-9:_.\\@-]{0,250}\.(slice|service|scope|socket|mount|swap)$")


class CgroupError(RuntimeError):
    """The cgroup of a slice or unit cannot carry io.max limits (named in the message, with what would fix it)."""


def _pair(key):
    kind = "iops" if "_iops_" in key else "bytes"
    return "read_%s_sec and write_%s_sec" % (kind, kind)


def _unsupported(key):
    """Why a Cinder QoS key that io.max cannot enforce is refused, or None for a key Cinder does not know."""
    if key in ("total_iops_sec", "total_bytes_sec"):
        return ("cannot be enforced: cgroup v2 io.max limits reads and writes separately and has no combined "
                "limit; set %s instead" % _pair(key))
    if re.fullmatch(r"(read|write|total)_(iops|bytes)_sec_max", key):
        return ("is a burst limit, which is not supported: io.max has no burst setting; set only the steady "
                "limits (%s)" % _pair(key))
    if re.fullmatch(r"(read|write|total)_(iops|bytes)_sec_per_gb(_min)?", key):
        return ("is a capacity-based (per GB) limit, which is not supported: give the volume type absolute "
                "limits (%s)" % _pair(key))
    if key == "size_iops_sec":
        return ("(the I/O size counted as one IO) is not supported: io.max counts every request as one IO; "
                "remove it")
    return None


def _limit(value, field, key):
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise NameError_("%s: %s is not a whole number (give an integer or a string of digits)"
                         % (field, show_value(value)))
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise NameError_("%s: %s is not a whole number (digits only, no unit, sign or blank)"
                             % (field, show_value(value)))
        number = int(value)
    else:
        number = value
    if number < _MINIMUM:
        raise NameError_("%s: %s is not a limit: the kernel's io.max takes %d or more (remove the key for no "
                         "limit)" % (field, show_value(value), _MINIMUM))
    if number > _MAXIMUM[key]:
        raise NameError_("%s: %s is larger than io.max can hold (at most %d; remove the key for no limit)"
                         % (field, show_value(value), _MAXIMUM[key]))
    return number


def validate_qos_specs(specs, field="qos_specs"):
    """The io.max limits (``{"rbps", "wbps", "riops", "wiops"}`` -> int, only the keys given) of Cinder qos
    ``specs`` (a dict of Cinder's keys; values positive integers or strings of digits, as Cinder stores them).
    ``None`` or ``{}`` is no limit (``{}``). Anything io.max cannot enforce, an unknown key or a bad value raises
    :class:`NameError_` naming ``field``, the key and the value: nothing is ignored."""
    if specs is None:
        return {}
    if not isinstance(specs, dict):
        raise NameError_("%s: %s is not a mapping of Cinder QoS keys (e.g. {read_iops_sec: 500})"
                         % (field, show_value(specs)))
    limits = {}
    for key in sorted(specs, key=str):
        value = specs[key]
        where = "%s.%s" % (field, key)
        if key == "consumer":
            if value == "back-end":
                raise NameError_("%s: 'back-end' cannot be enforced: tgt (the target) has no I/O throttle; use "
                                 "'front-end' (the consumer host enforces the limits with cgroup io.max)" % where)
            if value not in CONSUMERS:
                raise NameError_("%s: %s is not a QoS consumer; use 'front-end' (the default) or 'both'"
                                 % (where, show_value(value)))
            continue
        if not isinstance(key, str):
            raise NameError_("%s: the key %s is not a string" % (field, show_value(key)))
        if key in CINDER_KEYS:
            limits[CINDER_KEYS[key]] = _limit(value, where, CINDER_KEYS[key])
            continue
        reason = _unsupported(key)
        if reason is not None:
            raise NameError_("%s: %s %s" % (where, show_value(value), reason))
        raise NameError_("%s: %s is not a Cinder QoS key that can be enforced here; use %s (and consumer)"
                         % (field, show_value(key), ", ".join(CINDER_KEYS)))
    return limits


def validate_cgroup_unit(value, field="qos_cgroup"):
    """A systemd slice or unit name whose cgroup carries the limits (``system.slice``, ``machine.slice``,
    ``app.service``), else :class:`NameError_`."""
    if not isinstance(value, str) or not _UNIT.fullmatch(value):
        raise NameError_("%s: %s is not a systemd slice or unit name (e.g. system.slice, machine.slice, "
                         "app.service; not the root slice '-.slice')" % (field, show_value(value)))
    return value


# --- io.max ----------------------------------------------------------------------------------------------------

def parse_io_max(text):
    """``{"MAJ:MIN": {key: int}}`` of io.max content (``8:16 rbps=2097152 wbps=max riops=max wiops=120``); ``max``
    (no limit) is left out, so a device without limits is ``{}``. Unknown keys are kept out too."""
    devices = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if not parts or not _DEVICE.fullmatch(parts[0]):
            continue
        limits = {}
        for part in parts[1:]:
            key, sep, value = part.partition("=")
            if sep and key in IO_MAX_KEYS and _DIGITS.fullmatch(value):
                limits[key] = int(value)
        devices[parts[0]] = limits
    return devices


def limits_of(text, device):
    """The limits of ``device`` (``MAJ:MIN``) in io.max content; ``{}`` when it has none (the kernel shows no line
    for a device whose four limits are all ``max``)."""
    return parse_io_max(text).get(device, {})


def format_io_max(device, limits):
    """The line to write to io.max for ``device``: all four keys, ``max`` for those not in ``limits`` (so a limit
    set before and not wanted any more is removed)."""
    if not _DEVICE.fullmatch(str(device)):
        raise ValueError("%r is not a MAJ:MIN device number" % (device,))
    return "%s %s" % (device, " ".join("%s=%s" % (key, limits.get(key, "max")) for key in IO_MAX_KEYS))


def clear_line(device):
    """The line that removes every limit of ``device``: ``MAJ:MIN rbps=max wbps=max riops=max wiops=max``."""
    return format_io_max(device, {})


def io_max_differs(text, device, wanted):
    """Whether io.max content ``text`` does not already hold exactly ``wanted`` (normalised limits) for
    ``device``: the write is needed."""
    return limits_of(text, device) != {key: int(value) for key, value in (wanted or {}).items()}


# --- the host --------------------------------------------------------------------------------------------------

def device_number(path):
    """``MAJ:MIN`` of the whole disk of block device ``path`` (io.max takes only whole disks: a partition's number
    is refused by the kernel). OSError when ``path`` is missing; ValueError when it is no block device."""
    info = os.stat(path)
    if not stat.S_ISBLK(info.st_mode):
        raise ValueError("%s is not a block device" % path)
    number = "%d:%d" % (os.major(info.st_rdev), os.minor(info.st_rdev))
    sys_dir = os.path.join(SYS_DEV_BLOCK, number)
    if os.path.exists(os.path.join(sys_dir, "partition")):
        with open(os.path.join(sys_dir, "..", "dev")) as handle:
            number = handle.read().strip()
    return number


def _read(path):
    with open(path) as handle:
        return handle.read()


def io_enabled(cgroup_dir):
    """Whether the io controller is enabled for ``cgroup_dir`` (``io`` in its cgroup.controllers, i.e. in its
    parent's cgroup.subtree_control)."""
    try:
        return "io" in _read(os.path.join(cgroup_dir, "cgroup.controllers")).split()
    except OSError:
        return False


def io_accounting_command(unit):
    """How the io controller gets enabled for ``unit``'s cgroup the systemd way, for this boot only (as the limits
    themselves): systemd enables io up to a unit that has IO accounting. Writing ``+io`` into the parent's
    cgroup.subtree_control behind systemd's back would be undone when systemd next realizes the parent."""
    return ["systemctl", "set-property", "--runtime", unit, "IOAccounting=yes"]


def resolve_cgroup(runner, unit):
    """``{"path": <cgroup dir>, "io": bool}`` of a systemd slice or unit (``/sys/fs/cgroup`` + its
    ``ControlGroup``); ``io`` says whether io.max is available there now. :class:`CgroupError` when cgroup v2 is
    not mounted, when the unit has no cgroup (not loaded or not active) or when the kernel has no block
    throttle."""
    root = CGROUP_ROOT
    if not os.path.exists(os.path.join(root, "cgroup.controllers")):
        raise CgroupError("cgroup v2 is not mounted at %s (no cgroup.controllers): io.max needs the unified "
                          "hierarchy (systemd's default since v247; boot with systemd.unified_cgroup_hierarchy=1)"
                          % root)
    args = ["systemctl", "show", "-p", "ControlGroup", "--value", unit]
    rc, out, err = runner.run(args, check=False)
    if rc != 0:
        raise CgroupError("%s failed (rc=%s): %s" % (" ".join(args), rc, (err or out or "").strip()))
    control_group = (out or "").strip()
    if not control_group:
        raise CgroupError("%s has no control group (it is not loaded or not active): start it, or name an active "
                          "slice or unit (default system.slice)" % unit)
    if not control_group.startswith("/") or control_group == "/" or "/../" in control_group + "/" \
            or "\n" in control_group:
        raise CgroupError("%s: systemd reports the control group %s, which cannot carry io.max (the root cgroup "
                          "has none)" % (unit, show_value(control_group)))
    path = os.path.join(root, control_group.lstrip("/"))
    if not os.path.isdir(path):
        raise CgroupError("%s: its control group %s does not exist under %s" % (unit, control_group, root))
    enabled = io_enabled(path)
    if enabled and not os.path.exists(os.path.join(path, "io.max")):
        raise CgroupError("%s: %s has the io controller but no io.max: the kernel has no block throttle "
                          "(CONFIG_BLK_DEV_THROTTLING)" % (unit, path))
    return {"path": path, "io": enabled}

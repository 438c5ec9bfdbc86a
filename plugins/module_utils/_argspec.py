# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by several modules (as community.crypto's ``_argspec`` does): declared once here."""

from __future__ import annotations

import copy
import math

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    show_value,
    validate_backend_name,
    validate_device_path,
    validate_lv_name,
    validate_text,
    validate_vg_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._nfs import _path as _nfs_path
from ansible_collections.ember.blockstore.plugins.module_utils._nfs import mount_options as _mount_options
from ansible_collections.ember.blockstore.plugins.module_utils._nfs import parse_share
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_size

__all__ = ["backend_options", "node_backend_options", "DRIVERS", "LVM_DRIVERS", "NFS_KEYS", "LVM_ONLY_KEYS",
           "DEFAULT_MOUNT_OPTIONS", "DEFAULT_MOUNT_POINT_BASE", "NODE_BACKEND_REQUIRED_IF", "BACKEND_REQUIRED_IF",
           "RENAMED_BACKEND_KEYS",
           "renamed_keys", "backend_config", "canonical_share", "single_form", "batch_items", "validate_backends",
           "node_backends"]

# Every driver a backend may have: the LVM drivers (thick LVs in a VG, thin LVs in a thin pool) and ``nfs``
# (volumes are files on NFS shares, issue 14). One schema for the inventory (the blockstore role's argument spec,
# docs/inventory.md) and the storage-node modules (backend_info, volume, snapshot): backend_options().
DRIVERS = ("lvm", "lvm_thin", "nfs")
LVM_DRIVERS = ("lvm", "lvm_thin")
# Keys of an nfs backend only, and keys of the LVM drivers only (refused for the other kind when given).
NFS_KEYS = ("shares", "mount_options", "mount_point_base", "sparse")
LVM_ONLY_KEYS = ("vg", "pvs", "thin_pool", "thin_pool_size", "pool", "pool_size")
# nfs(5) options every share is mounted with unless the backend lists its own: hard (a server that goes away blocks
# I/O until it is back instead of failing it: the volumes are disks), NFS 4.2 (ALLOCATE for fallocate, reflink-like
# CLONE where the server has it).
DEFAULT_MOUNT_OPTIONS = ("rw", "hard", "noatime", "vers=4.2")
# Cinder's nfs_mount_point_base: each share is mounted at <base>/<hash of the share>.
DEFAULT_MOUNT_POINT_BASE = "/var/lib/ember-blockstore/mnt"
MAX_SHARES = 64
# AnsibleModule's check of backend_options() (the role argument spec has the same): vg is required for the LVM
# drivers only.
NODE_BACKEND_REQUIRED_IF = [("driver", "lvm", ("vg",)), ("driver", "lvm_thin", ("vg",))]
BACKEND_REQUIRED_IF = NODE_BACKEND_REQUIRED_IF

# Backend keys renamed in 0.2.0: {old name: new name}. The old names are accepted, deprecated, until 1.0.0
# (``pool`` alone means the scheduler's pool, ``<host>@<backend>``, everywhere else); both names at once are an error.
RENAMED_BACKEND_KEYS = {"pool": "thin_pool", "pool_size": "thin_pool_size"}
RENAMED_KEYS_REMOVED_IN = "1.0.0"


def _deprecated_alias(old):
    return dict(aliases=[old], deprecated_aliases=[dict(name=old, version=RENAMED_KEYS_REMOVED_IN,
                                                        collection_name="ember.blockstore")])


def backend_options():
    """Suboptions of one backend (an item of a storage node's ``blockstore_backends``), the inventory schema and
    what the storage-node modules take: the LVM drivers' keys and the ``nfs`` driver's (``shares``,
    ``mount_options``, ``mount_point_base``, ``sparse``); ``vg`` is required for the LVM drivers only
    (:data:`BACKEND_REQUIRED_IF`; :func:`validate_backends` checks it, and that the keys given belong to the
    backend's driver). The keys renamed in 0.2.0 are deprecated aliases (AnsibleModule warns, and copies the value
    to the new name)."""
    return copy.deepcopy(dict(
        name=dict(type="str", required=True),
        driver=dict(type="str", choices=list(DRIVERS), default="lvm"),
        vg=dict(type="str"),
        pvs=dict(type="list", elements="str", default=[]),
        thin_pool=dict(type="str", default="thinpool", **_deprecated_alias("pool")),
        thin_pool_size=dict(type="str", default="95%VG", **_deprecated_alias("pool_size")),
        availability_zone=dict(type="str", default="nova"),
        reserved_percentage=dict(type="int", default=0),
        max_over_subscription_ratio=dict(type="raw", default=20.0),
        volume_backend_name=dict(type="str"),
        capabilities=dict(type="dict", default={}),
        volume_clear=dict(type="str", choices=["zero", "none"], default="zero"),
        volume_clear_size=dict(type="str", default="0"),
        mutual_chap=dict(type="bool", default=False),
        shares=dict(type="list", elements="str"),
        mount_options=dict(type="list", elements="str", default=list(DEFAULT_MOUNT_OPTIONS)),
        mount_point_base=dict(type="str", default=DEFAULT_MOUNT_POINT_BASE),
        sparse=dict(type="bool", default=True),
    ))


def node_backend_options():
    """:func:`backend_options` (the storage-node modules' name for it, kept for their imports)."""
    return backend_options()


MAX_CAPABILITIES = 64


def renamed_keys(backend, where, strict=True):
    """``backend`` (a dict) with the keys renamed in 0.2.0 under their new names. Both names at once raise
    ValueError naming both; with ``strict=False`` only when their values differ (AnsibleModule has copied the
    value of a deprecated alias to the option, so a module's parameters hold both)."""
    cfg = dict(backend)
    for old, new in RENAMED_BACKEND_KEYS.items():
        if old not in cfg:
            continue
        value = cfg.pop(old)
        if new in cfg and (strict or cfg[new] != value):
            raise ValueError("%s: both %s and %s are given; %s is the name of %s before 0.2.0 (deprecated): keep only "
                             "%s" % (where, new, old, old, new, new))
        cfg[new] = value
    return cfg


def _check_thin_pool_size(value, field):
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else None
    if text is None or len(text) > 40:
        raise ValueError("%s: %s is not a percentage of the VG such as 95%%VG, or a size" % (field, show_value(value)))
    if text.upper().endswith("%VG"):
        try:
            pct = float(text[:-3])
        except ValueError:
            pct = -1.0
        if not 0 < pct <= 100:
            raise ValueError("%s: %r is not a percentage of the VG such as 95%%VG, or a size" % (field, value))
    else:
        parse_size(text, field)


def _check_capabilities(caps, field):
    if not isinstance(caps, dict) or len(caps) > MAX_CAPABILITIES:
        raise ValueError("%s: expected a dict of at most %d capabilities" % (field, MAX_CAPABILITIES))
    for key, value in caps.items():
        validate_text(key, "%s key" % field, 255, "capability name")
        values = value if isinstance(value, list) else [value]
        for one in values:
            if isinstance(one, str):
                if one:
                    validate_text(one, "%s.%s" % (field, key), 1024, "capability value")
            elif not isinstance(one, (bool, int, float)) or (isinstance(one, float) and not math.isfinite(one)):
                raise ValueError("%s.%s: %s is not a string, number or boolean" % (field, key, show_value(one)))


def backend_config(backend, field=None):
    """Validate and normalise one backend dict (after AnsibleModule's type checks): the keys renamed in 0.2.0 are
    under their new names (:func:`renamed_keys`); ``thin_pool`` is the thin pool's LV name for ``lvm_thin``, else
    None; ``volume_backend_name`` defaults to ``name``; ``max_over_subscription_ratio`` is a finite float > 0 or
    ``"auto"``. Every field is bounded and validated (names as LVM and the pool ids take them, device paths, sizes,
    labels without control characters). An ``nfs`` backend has no ``vg`` or ``pvs`` (both refused) and
    ``thin_pool`` None; its ``shares`` (required, each ``server:/export``, returned in canonical form),
    ``mount_options`` (nfs(5) options, not ``ro``), ``mount_point_base`` (an absolute path) and ``sparse`` are
    checked; ``shares`` on an LVM backend is refused. Raises ValueError naming the field (``field``, default
    ``backends[<name>]``)."""
    cfg = dict(backend)
    if field is None:
        try:
            field = "backends[%s]" % validate_backend_name(cfg.get("name"))
        except NameError_:
            field = "backends[?]"
    where = field
    cfg = renamed_keys(cfg, where, strict=False)
    nfs = cfg.get("driver") == "nfs"
    try:
        validate_backend_name(cfg.get("name"), where + ".name")
        if nfs:
            _check_nfs(cfg, where)
        else:
            validate_vg_name(cfg.get("vg"), where + ".vg")
            validate_lv_name(cfg.get("thin_pool"), where + ".thin_pool")
            for n, pv in enumerate(cfg.get("pvs") or []):
                validate_device_path(pv, "%s.pvs[%d]" % (where, n))
        validate_text(cfg.get("availability_zone"), where + ".availability_zone", 255, "zone name")
        if cfg.get("volume_backend_name") is not None:
            validate_text(cfg["volume_backend_name"], where + ".volume_backend_name", 255, "name")
        _check_capabilities(cfg.get("capabilities") or {}, where + ".capabilities")
        if not nfs:
            _check_thin_pool_size(cfg.get("thin_pool_size"), where + ".thin_pool_size")
    except (NameError_, SizeError) as exc:
        raise ValueError(str(exc)) from None
    if not nfs and cfg.get("shares"):
        raise ValueError("%s.shares: %s is given, but only a backend with driver nfs has shares (driver is %s)"
                         % (where, show_value(cfg["shares"]), cfg["driver"]))
    if cfg["driver"] != "lvm_thin":
        cfg["thin_pool"] = None
    cfg["volume_backend_name"] = cfg.get("volume_backend_name") or cfg["name"]
    mosr = cfg.get("max_over_subscription_ratio")
    if isinstance(mosr, str) and mosr.strip().lower() == "auto":
        cfg["max_over_subscription_ratio"] = "auto"
    else:
        try:
            if isinstance(mosr, bool) or (isinstance(mosr, str) and len(mosr) > 32):
                raise ValueError
            cfg["max_over_subscription_ratio"] = float(mosr)
            if not math.isfinite(cfg["max_over_subscription_ratio"]) or cfg["max_over_subscription_ratio"] <= 0:
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError("%s.max_over_subscription_ratio: %s is not a number greater than 0 or 'auto'"
                             % (where, show_value(mosr))) from None
    pct = cfg.get("reserved_percentage") or 0
    if isinstance(pct, bool) or not isinstance(pct, int) or not 0 <= pct <= 100:
        raise ValueError("%s.reserved_percentage: %r is not within 0..100" % (where, cfg["reserved_percentage"]))
    return cfg


def canonical_share(value, field="share"):
    """The canonical form of an NFS share ``server:/export`` (``_nfs.parse_share``: the server an IP address in its
    canonical form, IPv6 in brackets): the form mount points are derived from and pools are named by."""
    share = parse_share(value, field)
    server = share["server"]
    return "%s:%s" % ("[%s]" % server if ":" in server else server, share["export"])


def _check_nfs(cfg, where):
    """The keys of an nfs backend (``cfg`` with the module's defaults applied); normalises ``shares`` to their
    canonical form (:func:`canonical_share`). Raises NameError_ naming the field and the value."""
    if cfg.get("vg") is not None:
        raise NameError_("%s.vg: %s is given, but an nfs backend has no volume group (its volumes are files on its "
                         "shares); remove it" % (where, show_value(cfg["vg"])))
    if cfg.get("pvs"):
        raise NameError_("%s.pvs: %s is given, but an nfs backend has no physical volumes; remove it"
                         % (where, show_value(cfg["pvs"])))
    shares = cfg.get("shares")
    if not isinstance(shares, list) or not shares or len(shares) > MAX_SHARES:
        raise NameError_("%s.shares: %s is not a list of 1-%d NFS shares written server:/export (required for "
                         "driver nfs)" % (where, show_value(shares), MAX_SHARES))
    canonical = []
    for index, share in enumerate(shares):
        one = canonical_share(share, "%s.shares[%d]" % (where, index))
        if one in canonical:
            raise NameError_("%s.shares[%d]: %s is listed twice (as %s)" % (where, index, show_value(share), one))
        canonical.append(one)
    cfg["shares"] = canonical
    options = cfg.get("mount_options")
    _mount_options(options, where + ".mount_options")
    if "ro" in options:
        raise NameError_("%s.mount_options: 'ro' is listed, but the volumes on the shares are written; remove it"
                         % where)
    _nfs_path(cfg.get("mount_point_base"), where + ".mount_point_base")
    if not isinstance(cfg.get("sparse"), bool):
        raise NameError_("%s.sparse: %s is not a boolean" % (where, show_value(cfg.get("sparse"))))
    cfg["vg"] = None


def validate_backends(backends, field="blockstore_backends", options=None):
    """Validate a storage node's ``blockstore_backends`` as the roles receive it (before ``community.general.lvg``
    sees a volume group or device name): the keys renamed in 0.2.0 under their new names (both names at once are
    an error), defaults applied, unknown keys and bad choices refused, then :func:`backend_config` on each.
    Returns the list, with every backend that used an old key name replaced by a copy under the new names (the
    same list when none did); raises ValueError naming the field.

    ``options``: the suboptions to check against, default :func:`backend_options` (the inventory schema). The keys
    of one kind of backend given for the other are refused (``shares`` for an LVM driver, ``thin_pool`` for nfs,
    ...), and ``vg`` is required for the LVM drivers."""
    return _validated(backends, field, options)[0]


def node_backends(backends, field="backends"):
    """A storage node's backends as the ``volume`` and ``snapshot`` modules take them (their ``backends``
    option: raw dicts, as the host's ``blockstore_backends``): validated as :func:`validate_backends` does with
    :func:`node_backend_options`, and returned normalised (defaults applied, :func:`backend_config`). A name used
    twice is an error. Raises ValueError naming the field."""
    configs = _validated(backends, field, node_backend_options())[1]
    seen = {}
    for index, cfg in enumerate(configs):
        if cfg["name"] in seen:
            raise ValueError("%s[%d].name: %r is used twice (also %s[%d])"
                             % (field, index, cfg["name"], field, seen[cfg["name"]]))
        seen[cfg["name"]] = index
    return configs


def _validated(backends, field, options):
    if not isinstance(backends, list):
        raise ValueError("%s: expected a list of backends" % field)
    options = backend_options() if options is None else options
    out, configs = [], []
    for index, backend in enumerate(backends):
        where = "%s[%d]" % (field, index)
        if not isinstance(backend, dict):
            raise ValueError("%s: expected a dict" % where)
        if set(backend) & set(RENAMED_BACKEND_KEYS):
            backend = renamed_keys(backend, where)
        out.append(backend)
        unknown = sorted(str(k) for k in set(backend) - set(options))
        if unknown:
            raise ValueError("%s: unknown keys %s" % (where, ", ".join(unknown)))
        cfg = {key: copy.deepcopy(backend.get(key, spec.get("default"))) for key, spec in options.items()}
        for key, spec in options.items():
            if spec.get("required") and cfg[key] is None:
                raise ValueError("%s.%s: required" % (where, key))
            if "choices" in spec and cfg[key] not in spec["choices"]:
                raise ValueError("%s.%s: %s is not one of %s"
                                 % (where, key, show_value(cfg[key]), ", ".join(spec["choices"])))
        _check_kind(backend, cfg, where)
        if not isinstance(cfg["pvs"], list):
            raise ValueError("%s.pvs: expected a list of device paths" % where)
        configs.append(backend_config(cfg, field=where))
    return (out if any(new is not old for new, old in zip(out, backends)) else backends), configs


def _check_kind(backend, cfg, where):
    """With the storage-node options: the keys given (not defaulted) belong to the backend's driver."""
    if cfg["driver"] == "nfs":
        given = sorted(key for key in LVM_ONLY_KEYS if key in backend)
        if given:
            raise ValueError("%s.%s: %s is a key of the LVM drivers; an nfs backend has shares instead: remove it"
                             % (where, given[0], show_value(backend[given[0]])))
        return
    if cfg["vg"] is None:
        raise ValueError("%s.vg: required" % where)
    given = sorted(key for key in NFS_KEYS if key in backend)
    if given:
        raise ValueError("%s.%s: %s is a key of driver nfs; backend %s has driver %s: remove it"
                         % (where, given[0], show_value(backend[given[0]]), show_value(cfg.get("name")),
                            cfg["driver"]))


def single_form(item_options):
    """The options of one batch item as top-level options of a module's single form; none of them required
    there (the module's ``required_by`` says which go together)."""
    return {key: dict(spec, required=False) for key, spec in item_options.items()}


def batch_items(params, list_key, item_options, single_field):
    """``(items, field)``: the batch list when given, else the single form's options as a one-item list.
    ``field`` names the items in error messages (``volumes[0].size`` or ``volume[0].size``)."""
    if params[list_key] is not None:
        return params[list_key], list_key
    return [{key: params[key] for key in item_options}], single_field

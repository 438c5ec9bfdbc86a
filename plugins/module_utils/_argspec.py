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
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_size

__all__ = ["backend_options", "DRIVERS", "RENAMED_BACKEND_KEYS", "renamed_keys", "backend_config", "single_form",
           "batch_items", "validate_backends"]

DRIVERS = ("lvm", "lvm_thin")

# Backend keys renamed in 0.2.0: {old name: new name}. The old names are accepted, deprecated, until 1.0.0
# (``pool`` alone means the scheduler's pool, ``<host>@<backend>``, everywhere else); both names at once are an error.
RENAMED_BACKEND_KEYS = {"pool": "thin_pool", "pool_size": "thin_pool_size"}
RENAMED_KEYS_REMOVED_IN = "1.0.0"


def _deprecated_alias(old):
    return dict(aliases=[old], deprecated_aliases=[dict(name=old, version=RENAMED_KEYS_REMOVED_IN,
                                                        collection_name="ember.blockstore")])


def backend_options():
    """Suboptions of one backend (an item of a storage node's ``blockstore_backends``). The keys renamed in 0.2.0
    are deprecated aliases (AnsibleModule warns, and copies the value to the new name)."""
    return copy.deepcopy(dict(
        name=dict(type="str", required=True),
        driver=dict(type="str", choices=list(DRIVERS), default="lvm"),
        vg=dict(type="str", required=True),
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
    ))


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
    labels without control characters). Raises ValueError naming the field (``field``, default
    ``backends[<name>]``)."""
    cfg = dict(backend)
    if field is None:
        try:
            field = "backends[%s]" % validate_backend_name(cfg.get("name"))
        except NameError_:
            field = "backends[?]"
    where = field
    cfg = renamed_keys(cfg, where, strict=False)
    try:
        validate_backend_name(cfg.get("name"), where + ".name")
        validate_vg_name(cfg.get("vg"), where + ".vg")
        validate_lv_name(cfg.get("thin_pool"), where + ".thin_pool")
        for n, pv in enumerate(cfg.get("pvs") or []):
            validate_device_path(pv, "%s.pvs[%d]" % (where, n))
        validate_text(cfg.get("availability_zone"), where + ".availability_zone", 255, "zone name")
        if cfg.get("volume_backend_name") is not None:
            validate_text(cfg["volume_backend_name"], where + ".volume_backend_name", 255, "name")
        _check_capabilities(cfg.get("capabilities") or {}, where + ".capabilities")
        _check_thin_pool_size(cfg.get("thin_pool_size"), where + ".thin_pool_size")
    except (NameError_, SizeError) as exc:
        raise ValueError(str(exc)) from None
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


def validate_backends(backends, field="blockstore_backends"):
    """Validate a storage node's ``blockstore_backends`` as the roles receive it (before ``community.general.lvg``
    sees a volume group or device name): the keys renamed in 0.2.0 under their new names (both names at once are
    an error), defaults applied, unknown keys and bad choices refused, then :func:`backend_config` on each.
    Returns the list, with every backend that used an old key name replaced by a copy under the new names (the
    same list when none did); raises ValueError naming the field."""
    if not isinstance(backends, list):
        raise ValueError("%s: expected a list of backends" % field)
    options = backend_options()
    out = []
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
        cfg = {key: backend.get(key, spec.get("default")) for key, spec in options.items()}
        for key, spec in options.items():
            if spec.get("required") and cfg[key] is None:
                raise ValueError("%s.%s: required" % (where, key))
            if "choices" in spec and cfg[key] not in spec["choices"]:
                raise ValueError("%s.%s: %s is not one of %s"
                                 % (where, key, show_value(cfg[key]), ", ".join(spec["choices"])))
        if not isinstance(cfg["pvs"], list):
            raise ValueError("%s.pvs: expected a list of device paths" % where)
        backend_config(cfg, field=where)
    return out if any(new is not old for new, old in zip(out, backends)) else backends


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

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by several modules (as community.crypto's ``_argspec`` does): declared once here."""

from __future__ import annotations

import copy

__all__ = ["backend_options", "DRIVERS", "backend_config", "single_form", "batch_items"]

DRIVERS = ("lvm", "lvm_thin")


def backend_options():
    """Suboptions of one backend (an item of a storage node's ``blockstore_backends``)."""
    return copy.deepcopy(dict(
        name=dict(type="str", required=True),
        driver=dict(type="str", choices=list(DRIVERS), default="lvm"),
        vg=dict(type="str", required=True),
        pvs=dict(type="list", elements="str", default=[]),
        pool=dict(type="str", default="thinpool"),
        pool_size=dict(type="str", default="95%VG"),
        availability_zone=dict(type="str", default="nova"),
        reserved_percentage=dict(type="int", default=0),
        max_over_subscription_ratio=dict(type="raw", default=20.0),
        volume_backend_name=dict(type="str"),
        capabilities=dict(type="dict", default={}),
        volume_clear=dict(type="str", choices=["zero", "none"], default="zero"),
        volume_clear_size=dict(type="str", default="0"),
    ))


def backend_config(backend):
    """Normalise one validated backend dict: ``thin_pool`` is the pool name for ``lvm_thin``, else None;
    ``volume_backend_name`` defaults to ``name``; ``max_over_subscription_ratio`` is a float or ``"auto"``.
    Raises ValueError naming the field for a bad ratio or percentage."""
    cfg = dict(backend)
    cfg["thin_pool"] = cfg["pool"] if cfg["driver"] == "lvm_thin" else None
    cfg["volume_backend_name"] = cfg.get("volume_backend_name") or cfg["name"]
    mosr = cfg.get("max_over_subscription_ratio")
    if str(mosr).lower() == "auto":
        cfg["max_over_subscription_ratio"] = "auto"
    else:
        try:
            cfg["max_over_subscription_ratio"] = float(mosr)
        except (TypeError, ValueError):
            raise ValueError("backends[%s].max_over_subscription_ratio: %r is not a number or 'auto'"
                             % (cfg["name"], mosr)) from None
    if not 0 <= int(cfg.get("reserved_percentage") or 0) <= 100:
        raise ValueError("backends[%s].reserved_percentage: %r is not within 0..100"
                         % (cfg["name"], cfg["reserved_percentage"]))
    return cfg


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

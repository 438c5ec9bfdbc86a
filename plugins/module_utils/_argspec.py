# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument specs shared by several modules (as community.crypto's ``_argspec`` does): declared once here."""

from __future__ import annotations

import copy

__all__ = ["backend_options", "DRIVERS", "backend_config"]

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

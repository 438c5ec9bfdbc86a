# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Builders shared by the scheduler tests."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.host_manager import PoolState
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.request_spec import RequestSpec

KiB, MiB, GiB, TiB = 2**10, 2**20, 2**30, 2**40
EXTENT = 4 * MiB


def pool_facts(pid="stor1@lvm", *, thin=False, total=100 * GiB, free=None, provisioned=None, allocated=None,
               az="az1", reserved=0, mosr=20.0, extent=EXTENT, volumes=(), **caps):
    """Pool facts as the backend_info module reports them. Thick pools: ``free`` defaults to ``total`` and
    allocated = provisioned = used = total - free (the VG's used space). Thin pools: ``free`` defaults to
    ``total``, allocated = total - free (data used), provisioned (the thin LVs' sizes) defaults to allocated."""
    host, backend = pid.split("@")
    if free is None:
        free = total
    if allocated is None:
        allocated = total - free if isinstance(total, int) and isinstance(free, int) else 0
    capabilities = {
        "volume_backend_name": backend, "storage_protocol": "iSCSI", "thin_provisioning_support": thin,
        "thick_provisioning_support": not thin, "availability_zone": az, "reserved_percentage": reserved,
        "max_over_subscription_ratio": mosr, "multiattach": True,
    }
    capabilities.update(caps)
    return {
        "id": pid, "host": host, "backend": backend, "driver": "lvm_thin" if thin else "lvm", "vg": "ember-vg",
        "thin_pool": "thinpool" if thin else None, "extent_size_bytes": extent, "total_bytes": total,
        "free_bytes": free, "provisioned_bytes": allocated if provisioned is None else provisioned,
        "allocated_bytes": allocated, "capabilities": capabilities, "volumes": list(volumes),
    }


def cinder_pool(pid="host1@lvm", *, total_gb=None, free_gb=None, provisioned_gb=0, allocated_gb=None, mosr=1.0,
                reserved=0, thin=False, extent=None, **caps):
    """A pool from one of Cinder's test cases (FakeBackendState attributes in GiB), converted to bytes.
    ``None`` stays None; 'infinite'/'unknown' stay strings. No extent rounding unless asked."""
    def conv(gb):
        return gb if gb is None or isinstance(gb, str) else int(gb * GiB)
    host, backend = pid.split("@")
    facts = {
        "id": pid, "host": host, "backend": backend, "extent_size_bytes": extent,
        # BackendState defaults: total_capacity_gb 0, free_capacity_gb None, provisioned_capacity_gb 0
        "total_bytes": conv(0 if total_gb is None else total_gb), "free_bytes": conv(free_gb),
        "allocated_bytes": conv(allocated_gb or 0), "provisioned_bytes": conv(provisioned_gb),
        "capabilities": {"thin_provisioning_support": thin, "reserved_percentage": reserved,
                         "max_over_subscription_ratio": mosr, **caps},
    }
    return PoolState(facts)


def state(**kwargs):
    return PoolState(pool_facts(**kwargs))


def spec(size, **kwargs):
    return RequestSpec(name="v1", size=size, **kwargs)


def existing(name, size, volume_type=None, attached_to=None):
    vol = {"name": name, "size_bytes": size, "volume_type": volume_type}
    if attached_to is not None:
        vol["attached_to"] = attached_to
    return vol


TYPES = {
    "fast": {"extra_specs": {"thin_provisioning_support": "<is> True"}, "description": "thin, over-subscribed"},
    "bulk": {"extra_specs": {"volume_backend_name": "lvm"}},
    "thick": {"extra_specs": {"provisioning:type": "thick"}},
    "shared": {"extra_specs": {"multiattach": "<is> True"}},
}


def by_name(result):
    return {v["name"]: v for v in result["volumes"]}


def placements(result):
    return {v["name"]: (v["action"], v["pool_id"], v["size_bytes"]) for v in result["volumes"]}


def schedule_error(*args, **kwargs):
    with pytest.raises(ScheduleError) as excinfo:
        plan(*args, **kwargs)
    return excinfo.value

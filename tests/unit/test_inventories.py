"""The shipped inventories are valid input: every volume, type and backend passes the same validation the
plan and the modules apply, and the lab's volumes fit the lab's pools as the scheduler plans them."""

import glob
import os

import pytest
import yaml
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import predict_vg_size, thin_pool_size
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filter_scheduler import plan
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.request_spec import (
    validate_requests,
    validate_volume_types,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GiB = 2**30


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle)


def backends_of(inventory):
    out = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "inventories", inventory, "host_vars", "*.yml"))):
        host = os.path.basename(path)[:-4]
        out[host] = load(path).get("blockstore_backends", [])
    return out


def full_backend(raw):
    """Apply the module's defaults and reject unknown keys, as AnsibleModule would."""
    options = backend_options()
    unknown = set(raw) - set(options)
    assert not unknown, unknown
    cfg = {key: raw.get(key, spec.get("default")) for key, spec in options.items()}
    assert cfg["driver"] in options["driver"]["choices"]
    return backend_config(cfg)


@pytest.mark.parametrize("inventory", ["lab", "example"])
def test_inventory_volumes_and_types_validate(inventory):
    data = load(os.path.join(ROOT, "inventories", inventory, "group_vars", "all.yml"))
    types = validate_volume_types(data["blockstore_volume_types"])
    consumers = None
    requests = validate_requests(data["blockstore_volumes"], types, data.get("blockstore_default_volume_type"),
                                 consumers)
    assert [r.name for r in requests] == [v["name"] for v in data["blockstore_volumes"]]
    for host, backends in backends_of(inventory).items():
        assert backends, host
        names = [full_backend(b)["name"] for b in backends]
        assert len(names) == len(set(names))


def test_lab_volumes_fit_the_lab_pools():
    """Plan the lab's volumes over pools predicted from its 4 GiB disks, as backend_info does in check mode."""
    data = load(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml"))
    pools = []
    for host, backends in backends_of("lab").items():
        for raw in backends:
            cfg = full_backend(raw)
            vg = predict_vg_size([4 * GiB])
            thin = cfg["driver"] == "lvm_thin"
            total = thin_pool_size(cfg["thin_pool_size"], vg) if thin else vg
            pools.append({
                "id": "%s@%s" % (host, cfg["name"]), "host": host, "backend": cfg["name"], "driver": cfg["driver"],
                "vg": cfg["vg"], "thin_pool": cfg["thin_pool"], "extent_size_bytes": 4 * 2**20,
                "total_bytes": total, "free_bytes": total, "provisioned_bytes": 0, "allocated_bytes": 0,
                "capabilities": {"volume_backend_name": cfg["volume_backend_name"], "thin_provisioning_support": thin,
                                 "thick_provisioning_support": not thin,
                                 "availability_zone": cfg["availability_zone"],
                                 "reserved_percentage": cfg["reserved_percentage"],
                                 "max_over_subscription_ratio": cfg["max_over_subscription_ratio"]},
                "volumes": []})
    result = plan(data["blockstore_volumes"], pools, data["blockstore_volume_types"], consumers=["client1"])
    placed = {v["name"]: v["pool_id"] for v in result["volumes"]}
    assert set(placed) == {v["name"] for v in data["blockstore_volumes"]}
    zones = {"az1": "stor1", "az2": "stor2"}
    for vol in data["blockstore_volumes"]:
        backend = data["blockstore_volume_types"][vol["volume_type"]]["extra_specs"]["volume_backend_name"]
        assert placed[vol["name"]].endswith("@" + backend)
        if vol.get("availability_zone"):
            assert placed[vol["name"]].startswith(zones[vol["availability_zone"]] + "@")
    assert sum(1 for v in data["blockstore_volumes"] if v.get("attachments")) >= 3
    assert {data["blockstore_volume_types"][v["volume_type"]]["extra_specs"]["volume_backend_name"]
            for v in data["blockstore_volumes"]} == {"lvm-thin", "lvm-thick"}

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.doc_fragments.schedule import ModuleDocFragment as ScheduleDocFragment
from ansible_collections.ember.blockstore.plugins.filter import schedule as filter_plugin
from ansible_collections.ember.blockstore.plugins.filter.schedule import FilterModule, schedule
from ansible_collections.ember.blockstore.plugins.lookup import schedule as lookup_plugin

GiB = 2**30


def pool(pid, free, volumes=()):
    host, backend = pid.split("@")
    return {"id": pid, "host": host, "backend": backend, "driver": "lvm", "vg": "ember", "thin_pool": None,
            "extent_size_bytes": 4 * 2**20, "total_bytes": 100 * GiB, "free_bytes": free,
            # A thick LVM pool, as backend_info reports it: provisioned = allocated = used = total - free.
            "provisioned_bytes": 100 * GiB - free, "allocated_bytes": 100 * GiB - free,
            "capabilities": {"volume_backend_name": backend, "availability_zone": "az1", "reserved_percentage": 0},
            "volumes": list(volumes)}


POOLS = [pool("stor1@lvm", 20 * GiB), pool("stor2@lvm", 60 * GiB, [{"name": "db01", "size_bytes": GiB}])]
TYPES = {"bulk": {"extra_specs": {"volume_backend_name": "lvm"}}}


def test_filter_is_registered():
    assert FilterModule().filters() == {"schedule": schedule}


def test_filter_returns_the_plan():
    result = schedule(POOLS, [{"name": "db01", "size": "1GiB"}, {"name": "db02", "size": "10GiB"}],
                      volume_types=TYPES, weight_multiplier=1.0, default_volume_type="bulk", consumers=[])
    assert [(v["name"], v["action"], v["pool_id"]) for v in result["volumes"]] == [
        ("db01", "none", "stor2@lvm"), ("db02", "create", "stor2@lvm")]
    assert result["volumes"][1]["volume_type"] == "bulk"
    assert result["pools"][1]["free_bytes"] == 50 * GiB


def test_filter_stacks_with_a_negative_multiplier():
    result = schedule(POOLS, [{"name": "db02", "size": "10GiB"}], weight_multiplier=-1)
    assert result["volumes"][0]["pool_id"] == "stor1@lvm"


def test_filter_error_carries_the_schedule_message():
    with pytest.raises(AnsibleFilterError) as excinfo:
        schedule(POOLS, [{"name": "big", "size": "70GiB"}, {"name": "db01", "size": "1GiB"}])
    assert str(excinfo.value) == (
        "No valid backend for big: "
        "stor1@lvm: CapacityFilter: needs 70 GiB, virtual free 20 GiB = min(free 20 GiB, total 100 GiB - reserved 0% "
        "- provisioned 80 GiB); "
        "stor2@lvm: CapacityFilter: needs 70 GiB, virtual free 60 GiB = min(free 60 GiB, total 100 GiB - reserved 0% "
        "- provisioned 40 GiB)")


def test_filter_validation_error():
    with pytest.raises(AnsibleFilterError, match=r"^blockstore_volumes\[0\]: unknown key\(s\) sise"):
        schedule(POOLS, [{"name": "x", "sise": 1}])
    with pytest.raises(AnsibleFilterError, match=r"^blockstore_volumes\[0\]\.size: 'lots' is not a size"):
        schedule(POOLS, [{"name": "x", "size": "lots"}])


@pytest.mark.parametrize("plugin", [filter_plugin, lookup_plugin], ids=["filter", "lookup"])
def test_documentation(plugin):
    doc = yaml.safe_load(plugin.DOCUMENTATION)
    assert doc["name"] == "schedule"
    yaml.safe_load(plugin.EXAMPLES)
    ret = yaml.safe_load(plugin.RETURN)
    options = set(doc["options"])
    for fragment in doc.get("extends_documentation_fragment", []):
        assert fragment == "ember.blockstore.schedule"
        options |= set(yaml.safe_load(ScheduleDocFragment.DOCUMENTATION)["options"])
    if plugin is filter_plugin:
        assert doc["positional"] == "_input, volumes"
        params = list(inspect.signature(schedule).parameters)
        assert options == {"_input"} | set(params[1:])
        assert set(ret["_value"]["contains"]) == {"volumes", "unmanaged", "pools"}
    else:
        assert options == {"volumes", "pools", "volume_types", "weight_multiplier", "default_volume_type",
                           "consumers", "default_availability_zone"}
        assert ret["_raw"]["type"] == "list"


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible-playbook not installed")
def test_filter_and_lookup_in_a_playbook(tmp_path):
    """Load both plugins through Ansible itself, with templated (tagged) input, and compare their plans."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))))))
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          gather_facts: false
          vars:
            pools: %s
            types: %s
            size: 2
            vols:
              - {name: db01, size: 1GiB}
              - {name: db02, size: "{{ size }}GiB", volume_type: bulk, description: "{{ 'ops' }}"}
          tasks:
            - ansible.builtin.set_fact:
                by_filter: "{{ pools | ember.blockstore.schedule(vols, volume_types=types) }}"
                by_lookup: "{{ lookup('ember.blockstore.schedule', volumes=vols, pools=pools, volume_types=types) }}"
                by_query: "{{ query('ember.blockstore.schedule', volumes=vols, pools=pools, volume_types=types) }}"
            - ansible.builtin.copy:
                dest: "%s"
                content: "{{ {'filter': by_filter, 'lookup': by_lookup, 'query': by_query} | to_json }}"
            - ansible.builtin.set_fact:
                failing: "{{ pools | ember.blockstore.schedule([{'name': 'huge', 'size': '1TiB'}]) }}"
        """) % (json.dumps(POOLS), json.dumps(TYPES), tmp_path / "out.json"))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(repo, ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0")
    proc = subprocess.run([shutil.which("ansible-playbook"), "-i", "localhost,", "-c", "local",
                           "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr  # the last task must fail
    assert "No valid backend for huge: stor1@lvm: CapacityFilter: needs 1 TiB" in proc.stdout + proc.stderr
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["filter"] == out["lookup"]
    assert out["query"] == [out["filter"]]
    assert [(v["name"], v["action"], v["pool_id"]) for v in out["filter"]["volumes"]] == [
        ("db01", "none", "stor2@lvm"), ("db02", "create", "stor2@lvm")]
    assert out["filter"]["volumes"][1]["description"] == "ops"
    assert out["filter"]["volumes"][1]["size_bytes"] == 2 * GiB

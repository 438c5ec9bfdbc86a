# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The blockstore role's internal address variables (roles/blockstore/vars/main.yml), templated by Ansible itself
over an inventory that mixes one address, several addresses and only the list: the ACL input per consumer, the
primary portal and every portal per storage node, and the multipath decision of the consumers' gather."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))


@pytest.mark.skipif(shutil.which("ansible-playbook") is None, reason="ansible-playbook not installed")
def test_address_vars_of_the_blockstore_role(tmp_path):
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(textwrap.dedent("""\
        all:
          vars: {ansible_connection: local}
          children:
            blockstore_storage:
              hosts:
                stor1: {blockstore_storage_ip: 198.18.0.11, blockstore_storage_ips: [198.18.1.11, 198.18.0.11]}
                stor2: {blockstore_storage_ips: [198.18.0.12, 198.18.1.12]}
                stor3: {blockstore_storage_ip: 198.18.0.13}
            blockstore_consumers:
              hosts:
                client1: {blockstore_storage_ips: [198.18.0.21, 198.18.1.21]}
                client2: {blockstore_storage_ip: 198.18.0.22}
                client3: {}
        """))
    out = tmp_path / "out.json"
    with open(os.path.join(REPO, "roles", "blockstore", "tasks", "gather_consumers.yml")) as handle:
        tasks = yaml.safe_load(handle)
    (decide,) = [t for t in tasks if "__blockstore_multipath" in (t.get("ansible.builtin.set_fact") or {})]
    multipath = decide["ansible.builtin.set_fact"]["__blockstore_multipath"].strip()
    playbook = tmp_path / "play.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: stor2,client2
          gather_facts: false
          vars_files:
            - %(repo)s/roles/blockstore/defaults/main.yml
            - %(repo)s/roles/blockstore/vars/main.yml
          tasks:
            - ansible.builtin.set_fact:
                seen:
                  initiator_addresses: "{{ __blockstore_initiator_addresses }}"
                  portals: "{{ __blockstore_portals }}"
                  storage_portals: "{{ __blockstore_storage_portals }}"
                  own_ips: "{{ __blockstore_storage_ips }}"
                  own_ip: "{{ __blockstore_storage_ip }}"
                  storage_addresses: "{{ __blockstore_storage_addresses }}"
                  multipath: "%(multipath)s"
            - ansible.builtin.copy:
                dest: "%(out)s.{{ inventory_hostname }}"
                content: "{{ seen | to_json }}"
              delegate_to: localhost
        """) % {"repo": REPO, "out": out, "multipath": multipath.replace('"', '\\"')})
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0")
    proc = subprocess.run([shutil.which("ansible-playbook"), "-i", str(inventory),
                           "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stor2 = json.loads((tmp_path / "out.json.stor2").read_text())
    client2 = json.loads((tmp_path / "out.json.client2").read_text())
    assert stor2["initiator_addresses"] == {"client1": ["198.18.0.21", "198.18.1.21"], "client2": ["198.18.0.22"],
                                            "client3": []}
    assert stor2["portals"] == {"stor1": "198.18.0.11:3260", "stor2": "198.18.0.12:3260", "stor3": "198.18.0.13:3260"}
    assert stor2["storage_portals"] == {"stor1": ["198.18.0.11:3260", "198.18.1.11:3260"],
                                        "stor2": ["198.18.0.12:3260", "198.18.1.12:3260"],
                                        "stor3": ["198.18.0.13:3260"]}
    # a migration's temporary target admits only the destination's primary address
    assert stor2["storage_addresses"] == {"stor1": "198.18.0.11", "stor2": "198.18.0.12", "stor3": "198.18.0.13"}
    assert (stor2["own_ips"], stor2["own_ip"]) == (["198.18.0.12", "198.18.1.12"], "198.18.0.12")
    assert (client2["own_ips"], client2["own_ip"]) == (["198.18.0.22"], "198.18.0.22")
    assert client2["multipath"] is True  # stor1 and stor2 have two portals each

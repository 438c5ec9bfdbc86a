# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The node_exporter textfile of a storage host, parsed back with prometheus_client's text parser (the
reference implementation of the exposition format). The lab test (test_site.py) checks a written file with
promtool."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.plan import metrics_textfile
from ansible_collections.ember.blockstore.plugins.plugin_utils.metrics import textfile
from ansible_collections.ember.blockstore.plugins.plugin_utils.report import build_report
from prometheus_client.parser import text_string_to_metric_families

GiB, MiB = 2**30, 2**20


def _pool(pool_id, thin, total, allocated, provisioned, volumes=(), mosr=20.0, zone="az1", reserved=10):
    host, backend = pool_id.split("@")
    return {"id": pool_id, "host": host, "backend": backend, "exists": True, "predicted": False,
            "driver": "lvm_thin" if thin else "lvm", "thin_pool": "thinpool" if thin else None,
            "total_bytes": total, "free_bytes": total - allocated, "allocated_bytes": allocated,
            "provisioned_bytes": provisioned,
            "capabilities": {"max_over_subscription_ratio": mosr, "availability_zone": zone,
                             "reserved_percentage": reserved},
            "volumes": [{"name": n, "size_bytes": s} for n, s in volumes]}


def _entry(name, action, pool_id, size=GiB, state="present", attachments=(), volume_type="fast"):
    host, backend = pool_id.split("@")
    return {"name": name, "state": state, "action": action, "size_bytes": size if state == "present" else None,
            "volume_type": volume_type, "availability_zone": "az1", "host": host, "backend": backend,
            "pool_id": pool_id, "attachments": list(attachments), "reason": None}


def _report():
    pools = [_pool("stor1@lvm-thick", False, 4 * GiB, GiB, GiB, volumes=[("old", GiB)]),
             _pool("stor1@lvm-thin", True, 2 * GiB, 512 * MiB, 3 * GiB, volumes=[("kept", GiB)], mosr="auto"),
             _pool("stor2@lvm-thick", False, 4 * GiB, 0, 0, zone="az2"),
             _pool("stor2@lvm-thin", True, 4 * GiB, 0, 0, zone="az2")]
    plan = {"volumes": [_entry("new", "create", "stor1@lvm-thick"),
                        _entry("old", "delete", "stor1@lvm-thick", state="absent"),
                        _entry("kept", "none", "stor1@lvm-thin", attachments=["client1", "client2"]),
                        _entry("other", "create", "stor2@lvm-thick", size=64 * MiB)],
            "unmanaged": [{"name": 'odd"name\\x', "size_bytes": 8 * MiB, "pool_id": "stor1@lvm-thin",
                           "reason": "not in inventory"}],
            "hosts": {"stor1": {"status": "ok"}, "stor2": {"status": "ok"}}}
    vol = {"name": "new", "action": "create", "changed": True, "size_bytes": GiB}
    deleted = {"name": "old", "action": "delete", "changed": True, "size_bytes": GiB}
    other = {"name": "other", "action": "create", "changed": True, "size_bytes": 64 * MiB}
    kept_export = {"volume": "kept", "action": "none", "changed": False}
    logins = {c: {"connections": [{"volume": "kept", "action": "none", "device": "/dev/sd" + c[-1]}]}
              for c in ("client1", "client2")}
    return build_report(plan, volume_results={"stor1": {"volumes": [vol]}, "stor2": {"volumes": [other]}},
                        delete_results={"stor1": {"volumes": [deleted]}},
                        attachment_results={"stor1": {"attachments": [kept_export]}},
                        connection_results=logins, pools=pools)


def _samples(text):
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def _value(samples, name, **labels):
    hits = [v for (n, lbl), v in samples.items() if n == "ember_blockstore_" + name
            and all(dict(lbl).get(k) == w for k, w in labels.items())]
    assert len(hits) == 1, (name, labels, hits)
    return hits[0]


def test_pools_of_the_host_after_the_run():
    samples = _samples(textfile(_report(), "stor1"))
    thick = {"pool": "stor1@lvm-thick", "backend": "lvm-thick", "driver": "lvm", "availability_zone": "az1"}
    # 1 GiB used before, +1 GiB created, -1 GiB deleted.
    assert _value(samples, "pool_capacity_bytes", **thick) == 4 * GiB
    assert _value(samples, "pool_allocated_bytes", **thick) == GiB
    assert _value(samples, "pool_free_bytes", **thick) == 3 * GiB
    assert _value(samples, "pool_over_subscription_ratio", **thick) == 0.25
    assert _value(samples, "pool_reserved_ratio", **thick) == 0.1
    # thin: a created thin volume allocates nothing; provisioned counts; auto ratio has no sample.
    assert _value(samples, "pool_provisioned_bytes", pool="stor1@lvm-thin") == 3 * GiB
    assert not [k for k in samples if k[0] == "ember_blockstore_pool_max_over_subscription_ratio"]
    # stor2's pool is not on stor1's file.
    assert not [k for k in samples if dict(k[1]).get("pool", "").startswith("stor2")]


def test_volumes_sizes_statuses_attachments_and_counts():
    samples = _samples(textfile(_report(), "stor1"))
    assert _value(samples, "volume_size_bytes", volume="new") == GiB
    assert _value(samples, "volume_status", volume="new", status="available") == 1
    assert _value(samples, "volume_status", volume="kept", status="in-use") == 1
    assert _value(samples, "volume_attachments", volume="kept") == 2
    assert _value(samples, "volume_attachments", volume="new") == 0
    # The deleted volume has no samples; the unmanaged one (a name needing escapes) is there, parsed back intact.
    assert not [k for k in samples if dict(k[1]).get("volume") == "old"]
    assert _value(samples, "volume_status", volume='odd"name\\x', status="not in inventory") == 1
    assert _value(samples, "pool_volumes", pool="stor1@lvm-thin", status="in-use") == 1
    assert _value(samples, "pool_volumes", pool="stor1@lvm-thin", status="not in inventory") == 1
    assert _value(samples, "pool_volumes", pool="stor1@lvm-thick", status="available") == 1
    assert _value(samples, "pool_volumes", pool="stor1@lvm-thick", status="error") == 0


def test_every_family_has_help_and_type_and_the_text_is_stable():
    report = _report()
    text = textfile(report, "stor2")
    assert text.endswith("\n") and "\n\n" not in text
    families = list(text_string_to_metric_families(text))
    assert families and all(f.type == "gauge" and f.documentation for f in families)
    assert len({f.name for f in families}) == len(families)
    # A thin pool with a numeric ratio carries it; a thick pool does not.
    samples = _samples(text)
    assert _value(samples, "pool_max_over_subscription_ratio", pool="stor2@lvm-thin") == 20.0
    assert not [k for k in samples if k[0].endswith("max_over_subscription_ratio")
                and dict(k[1])["pool"] == "stor2@lvm-thick"]
    # No timestamp: the same report renders the same bytes.
    assert textfile(_report(), "stor2") == text


def test_a_host_without_pools_renders_nothing_and_an_old_report_is_refused():
    assert textfile(_report(), "stor9") == ""
    with pytest.raises(AnsibleFilterError, match="no pool_usage"):
        metrics_textfile({"rows": []}, "stor1")

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``plugin_utils.report``: the statuses of a run computed from what the modules returned (never from the plan
alone), and the run's last lines.

Plans are in the shape the ``plan`` filter returns; module results as the play registers them: a batch module
stops at the first failing item (``failed: true`` on the result, the failed item last in its list, the items
after it absent), an unreachable host gives ``{"unreachable": true, "msg": ...}``.
"""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.report import build_report, summary_lines

GiB, MiB = 2**30, 2**20
DEV = "/dev/disk/by-path/ip-198.18.0.11:3260-iscsi-iqn.2026-11.io.ember.blockstore:volume-%s-lun-1"


def entry(name, action, host="stor1", backend="lvm-thin", state="present", size=GiB, attachments=(),
          reason="test"):
    placed = host is not None
    return {"name": name, "state": state, "action": action, "size_bytes": size if state == "present" else None,
            "volume_type": "fast", "availability_zone": "az1" if placed else None, "host": host,
            "backend": backend if placed else None, "pool_id": "%s@%s" % (host, backend) if placed else None,
            "attachments": list(attachments), "reason": reason}


def plan(*entries, unmanaged=(), hosts=None):
    return {"volumes": list(entries), "unmanaged": list(unmanaged),
            "hosts": hosts if hosts is not None else {"stor1": {"status": "ok", "reason": None},
                                                      "stor2": {"status": "ok", "reason": None}}}


def vols(*items, **top):
    """A volume module result: items are (name, action) or (name, action, extra dict)."""
    out = []
    for item in items:
        name, action, extra = (item + ({},))[:3]
        out.append(dict({"name": name, "action": action, "changed": action in ("create", "extend", "delete"),
                         "size_bytes": GiB}, **extra))
    return dict({"changed": any(i["changed"] for i in out), "volumes": out}, **top)


def exports(*names, **top):
    return dict({"changed": False, "attachments": [{"volume": n, "action": "none", "changed": False}
                                                   for n in names]}, **top)


def logins(*items, **top):
    out = []
    for item in items:
        name, extra = (item + ({},))[:2] if isinstance(item, tuple) else (item, {})
        out.append(dict({"volume": name, "action": "none", "changed": False, "device": DEV % name}, **extra))
    return dict({"changed": False, "connections": out}, **top)


UNREACHABLE = {"unreachable": True, "changed": False, "msg": "Failed to connect to the host via ssh: timed out"}


def rows(report):
    return {row["volume"]: row for row in report["rows"]}


# --- volumes that exist after the run ----------------------------------------------------------------------------

def test_create_ok_is_available():
    got = build_report(plan(entry("web01", "create", size=256 * MiB)),
                       volume_results={"stor1": vols(("web01", "create", {"size_bytes": 256 * MiB}))})
    row = rows(got)["web01"]
    assert row["state"] == "available" and row["status"] == "available"
    assert row["size_bytes"] == 256 * MiB
    assert row["pool"] == "stor1@lvm-thin" and row["action"] == "create"
    assert got["counts"] == {"available": 1}
    assert got["errors"] == [] and got["hosts_failed"] == {}


def test_size_is_the_modules_not_the_plans():
    got = build_report(plan(entry("logs01", "extend", size=512 * MiB)),
                       volume_results={"stor1": vols(("logs01", "extend", {"size_bytes": 516 * MiB}))})
    assert rows(got)["logs01"]["size_bytes"] == 516 * MiB


def test_attached_exported_and_logged_in_is_in_use_with_the_device():
    got = build_report(plan(entry("db01-data", "none", attachments=["client1"])),
                       volume_results={"stor1": vols(("db01-data", "none"))},
                       attachment_results={"stor1": exports("db01-data")},
                       connection_results={"client1": logins("db01-data")})
    row = rows(got)["db01-data"]
    assert row["state"] == "in-use" and row["status"] == "in-use"
    assert row["device"] == "client1:" + DEV % "db01-data"
    assert row["attached_to"] == "client1"
    assert got["errors"] == []


def test_multiattach_lists_every_device():
    got = build_report(plan(entry("shared", "none", attachments=["client1", "client2"])),
                       volume_results={"stor1": vols(("shared", "none"))},
                       attachment_results={"stor1": exports("shared")},
                       connection_results={"client1": logins("shared"), "client2": logins("shared")})
    row = rows(got)["shared"]
    assert row["state"] == "in-use"
    assert "client1:" + DEV % "shared" in row["device"] and "client2:" + DEV % "shared" in row["device"]
    assert row["attached_to"] == "client1, client2"


def test_consumer_login_failed_is_error_with_the_reason():
    msg = "connection to iqn.2026-11.io.ember.blockstore:volume-db01-data: iscsiadm: Login failed (rc=24)"
    got = build_report(plan(entry("db01-data", "none", attachments=["client1"])),
                       volume_results={"stor1": vols(("db01-data", "none"))},
                       attachment_results={"stor1": exports("db01-data")},
                       connection_results={"client1": logins(("db01-data", {"failed": True, "device": None}),
                                                             failed=True, msg=msg)})
    row = rows(got)["db01-data"]
    assert row["state"] == "error"
    assert row["status"].startswith("error (")
    assert "client1" in row["status"] and "Login failed" in row["status"]
    assert row["device"] == "-"
    assert len(got["errors"]) == 1
    assert got["errors"][0].startswith("db01-data: error") and "Login failed" in got["errors"][0]


def test_consumer_unreachable_is_error_not_in_use():
    got = build_report(plan(entry("db01-data", "none", attachments=["client1"])),
                       volume_results={"stor1": vols(("db01-data", "none"))},
                       attachment_results={"stor1": exports("db01-data")},
                       connection_results={"client1": UNREACHABLE})
    row = rows(got)["db01-data"]
    assert row["state"] == "error"
    assert "client1" in row["status"]


def test_consumer_without_a_result_is_error():
    got = build_report(plan(entry("db01-data", "none", attachments=["client1"])),
                       volume_results={"stor1": vols(("db01-data", "none"))},
                       attachment_results={"stor1": exports("db01-data")}, connection_results={})
    assert rows(got)["db01-data"]["state"] == "error"
    assert "client1" in rows(got)["db01-data"]["status"]


def test_one_consumer_logged_in_and_one_failed_is_error_keeping_the_device():
    got = build_report(plan(entry("shared", "none", attachments=["client1", "client2"])),
                       volume_results={"stor1": vols(("shared", "none"))},
                       attachment_results={"stor1": exports("shared")},
                       connection_results={"client1": logins("shared"),
                                           "client2": {"failed": True, "msg": "no such host"}})
    row = rows(got)["shared"]
    assert row["state"] == "error"
    assert "client2" in row["status"] and "no such host" in row["status"]
    assert row["device"] == "client1:" + DEV % "shared"


def test_export_failed_is_error():
    got = build_report(plan(entry("db01-data", "create", attachments=["client1"])),
                       volume_results={"stor1": vols(("db01-data", "create"))},
                       attachment_results={"stor1": {"failed": True, "attachments": [
                           {"volume": "db01-data", "failed": True}], "msg": "attachment of db01-data: tgtadm rc 22"}},
                       connection_results={"client1": logins("db01-data")})
    row = rows(got)["db01-data"]
    assert row["state"] == "error"
    assert "tgtadm rc 22" in row["status"]


def test_export_phase_never_ran_is_error_not_in_use():
    # The issue: "in-use" for an attachment that was never made.
    got = build_report(plan(entry("db01-data", "create", attachments=["client1"])),
                       volume_results={"stor1": vols(("db01-data", "create"))},
                       attachment_results={"stor1": UNREACHABLE}, connection_results={})
    row = rows(got)["db01-data"]
    assert row["state"] != "in-use"
    assert row["state"] in ("unknown", "error")
    assert "stor1" in row["status"]


# --- failed and unanswered volume phases -------------------------------------------------------------------------

def test_volume_item_failed_is_error_and_the_rest_not_attempted():
    msg = "volume web01: lvcreate failed (rc=5): Volume group \"ember-thick\" has insufficient free space"
    got = build_report(plan(entry("db01-data", "create"), entry("web01", "create", backend="lvm-thick"),
                            entry("web02", "create", backend="lvm-thick")),
                       volume_results={"stor1": vols(("db01-data", "create"), ("web01", "create", {"failed": True}),
                                                     failed=True, msg=msg)})
    by = rows(got)
    assert by["db01-data"]["state"] == "available"
    assert by["web01"]["state"] == "error" and "insufficient free space" in by["web01"]["status"]
    assert by["web02"]["state"] == "error" and "not attempted" in by["web02"]["status"]
    assert got["counts"] == {"available": 1, "error": 2}
    assert [e.split(":")[0] for e in got["errors"]] == ["web01", "web02"]


def test_module_failed_before_any_item_is_error_for_all():
    # Only the create was sent to the module (the facts confirmed "b", so it is not an item): "a" is in error.
    got = build_report(plan(entry("a", "create"), entry("b", "none")),
                       volume_results={"stor1": {"failed": True, "msg": "vgs failed (rc=5)", "volumes": []}})
    assert rows(got)["a"]["state"] == "error" and "vgs failed" in rows(got)["a"]["status"]
    assert rows(got)["b"]["state"] == "available"


def test_confirmed_by_facts_export_and_session():
    # Nothing was sent to any module: the facts say the export is right and client1 has a session.
    iqn = "iqn.2026-11.io.ember.blockstore:volume-db01-data"
    pools = [{"volumes": [{"name": "db01-data", "target_iqn": iqn, "export_ok": True}]}]
    facts = {"client1": {"sessions": [{"target_iqn": iqn, "device": "/dev/disk/by-path/x"}]}}
    got = build_report(plan(entry("db01-data", "none", attachments=["client1"])), pools=pools,
                       consumer_facts=facts)
    assert rows(got)["db01-data"]["state"] == "in-use"
    assert rows(got)["db01-data"]["device"] == "client1:/dev/disk/by-path/x"
    # Without a session on client1 (and no login result) it is an error, with the reason.
    got = build_report(plan(entry("db01-data", "none", attachments=["client1"])), pools=pools,
                       consumer_facts={"client1": {"sessions": []}})
    assert rows(got)["db01-data"]["state"] == "error"
    assert "client1" in rows(got)["db01-data"]["status"]


def test_host_unreachable_mid_volume_phase():
    got = build_report(plan(entry("new1", "create", host="stor2"), entry("old1", "none", host="stor2"),
                            entry("big1", "extend", host="stor2")),
                       volume_results={"stor2": UNREACHABLE})
    by = rows(got)
    # A create that was not confirmed may or may not exist: creating; an existing volume's state is unknown.
    assert by["new1"]["state"] == "creating"
    assert by["old1"]["state"] == "unknown"
    assert by["big1"]["state"] == "unknown"
    for row in by.values():
        assert "stor2" in row["status"]
    assert got["counts"] == {"creating": 1, "unknown": 2}
    assert len(got["errors"]) == 3


def test_no_volume_result_at_all_is_error():
    got = build_report(plan(entry("new1", "create")), volume_results={})
    row = rows(got)["new1"]
    assert row["state"] == "error"
    assert "stor1" in row["status"]


def test_host_lost_mid_run_is_named_among_the_failed_hosts():
    got = build_report(plan(entry("new1", "create", host="stor2")), volume_results={"stor2": UNREACHABLE})
    assert "stor2" in got["hosts_failed"]
    assert "all reported" not in "\n".join(summary_lines(got))


# --- deletes -----------------------------------------------------------------------------------------------------

def test_delete_ok_is_deleted():
    got = build_report(plan(entry("scratch01", "delete", state="absent")),
                       delete_results={"stor1": vols(("scratch01", "delete"))})
    row = rows(got)["scratch01"]
    assert row["state"] == "deleted" and row["size_bytes"] is None and row["size"] == "-"
    assert got["errors"] == []


def test_delete_not_confirmed_is_deleting_and_failed_is_error():
    got = build_report(plan(entry("x", "delete", state="absent"), entry("y", "delete", host="stor2", state="absent"),
                            entry("z", "delete", state="absent")),
                       delete_results={"stor1": vols(("x", "delete", {"failed": True}), failed=True,
                                                     msg="volume x: lvremove failed: in use"),
                                       "stor2": UNREACHABLE})
    by = rows(got)
    assert by["x"]["state"] == "error" and "in use" in by["x"]["status"]
    assert by["y"]["state"] == "deleting" and "stor2" in by["y"]["status"]
    assert by["z"]["state"] == "error" and "not attempted" in by["z"]["status"]


def test_absent_is_absent():
    got = build_report(plan(entry("gone", "absent", host=None, state="absent")))
    row = rows(got)["gone"]
    assert row["state"] == "absent" and row["status"] == "absent" and row["pool"] == "-"
    assert got["errors"] == []


# --- volumes on a host that did not report -----------------------------------------------------------------------

def test_action_unknown_is_unknown_with_its_reason():
    hosts = {"stor1": {"status": "ok", "reason": None},
             "stor2": {"status": "unreachable", "reason": "unreachable: timed out"}}
    got = build_report(plan(entry("db02-data", "unknown", host="stor2", reason="stor2 unreachable"),
                            entry("db01-data", "none"), hosts=hosts),
                       volume_results={"stor1": vols(("db01-data", "none"))})
    row = rows(got)["db02-data"]
    assert row["state"] == "unknown"
    assert row["status"] == "unknown (stor2 unreachable)"
    assert row["pool"] == "stor2@lvm-thin"
    assert rows(got)["db01-data"]["state"] == "available"
    assert got["hosts_failed"] == {"stor2": "unreachable: timed out"}
    assert got["counts"] == {"unknown": 1, "available": 1}


def test_unknown_is_unknown_in_check_mode_too():
    got = build_report(plan(entry("db02-data", "unknown", host="stor2", reason="stor2 failed")), check_mode=True)
    assert rows(got)["db02-data"]["state"] == "unknown"


# --- check mode --------------------------------------------------------------------------------------------------

def test_check_mode_predicts_without_results():
    got = build_report(plan(entry("new1", "create"), entry("old1", "none"),
                            entry("att1", "none", attachments=["client1"]),
                            entry("del1", "delete", state="absent"), entry("ext1", "extend")), check_mode=True)
    states = {name: row["state"] for name, row in rows(got).items()}
    assert states == {"new1": "creating", "old1": "available", "att1": "in-use", "del1": "deleting",
                      "ext1": "available"}
    assert got["errors"] == []
    assert got["counts"] == {"creating": 1, "available": 2, "in-use": 1, "deleting": 1}


# --- unmanaged rows, counts, hosts -------------------------------------------------------------------------------

def test_unmanaged_rows():
    unmanaged = [{"name": "b", "pool_id": "stor1@lvm-thin", "host": "stor1", "backend": "lvm-thin",
                  "size_bytes": GiB, "volume_type": None, "reason": "not in inventory"},
                 {"name": "old9", "pool_id": "stor2@lvm-thick", "host": "stor2", "backend": "lvm-thick",
                  "size_bytes": None, "volume_type": None, "reason": "unknown (stor2 unreachable)"}]
    got = build_report(plan(unmanaged=unmanaged))
    by = rows(got)
    assert by["b"]["state"] == "not in inventory" and by["b"]["status"] == "not in inventory"
    assert by["b"]["size_bytes"] == GiB and by["b"]["action"] == "none" and by["b"]["pool"] == "stor1@lvm-thin"
    assert by["old9"]["state"] == "unknown" and by["old9"]["status"] == "unknown (stor2 unreachable)"
    assert by["old9"]["size"] == "-"
    assert got["counts"] == {"not in inventory": 1, "unknown": 1}


def test_rows_keep_the_plan_order_then_unmanaged():
    unmanaged = [{"name": "zz", "pool_id": "stor1@lvm-thin", "host": "stor1", "size_bytes": GiB,
                  "reason": "not in inventory"}]
    got = build_report(plan(entry("b", "create"), entry("a", "create"), unmanaged=unmanaged),
                       volume_results={"stor1": vols(("a", "create"), ("b", "create"))})
    assert [r["volume"] for r in got["rows"]] == ["b", "a", "zz"]
    assert sum(got["counts"].values()) == len(got["rows"])


def test_counts_of_a_mixed_run():
    hosts = {"stor1": {"status": "ok", "reason": None}, "stor2": {"status": "failed", "reason": "prep failed"}}
    got = build_report(
        plan(entry("a", "create"), entry("b", "none"), entry("c", "none", attachments=["client1"]),
             entry("d", "delete", state="absent"), entry("e", "unknown", host="stor2", reason="stor2 failed"),
             entry("f", "create", backend="lvm-thick"), hosts=hosts),
        volume_results={"stor1": vols(("a", "create"), ("b", "none"), ("c", "none"),
                                      ("f", "create", {"failed": True}), failed=True, msg="boom")},
        attachment_results={"stor1": exports("c")}, connection_results={"client1": logins("c")},
        delete_results={"stor1": vols(("d", "delete"))})
    assert got["counts"] == {"available": 2, "in-use": 1, "deleted": 1, "unknown": 1, "error": 1}
    assert got["hosts_failed"] == {"stor2": "prep failed"}
    assert len(got["errors"]) == 1 and got["errors"][0].startswith("f: error")


# --- summary_lines -----------------------------------------------------------------------------------------------

def test_summary_counts_per_status_and_all_reported():
    report = {"counts": {"available": 3, "in-use": 2, "not in inventory": 1}, "hosts_failed": {}, "errors": []}
    lines = summary_lines(report)
    assert len(lines) == 2
    assert lines[0].startswith("volumes: ")
    parts = lines[0][len("volumes: "):].split(", ")
    assert sorted(parts) == sorted(["3 available", "2 in-use", "1 not in inventory"])
    assert "all reported" in lines[1]


def test_summary_no_volumes():
    lines = summary_lines({"counts": {}, "hosts_failed": {}, "errors": []})
    assert lines[0].startswith("volumes: ")
    assert not any(ch.isdigit() for ch in lines[0])


def test_summary_names_the_hosts_that_did_not_report_and_lists_errors():
    report = {"counts": {"available": 1, "unknown": 2, "error": 1},
              "hosts_failed": {"stor2": "unreachable: timed out", "stor3": "preparation failed: lvg"},
              "errors": ["web01: error (volume on stor1 failed: boom)"]}
    lines = summary_lines(report)
    assert "1 available" in lines[0] and "2 unknown" in lines[0] and "1 error" in lines[0]
    hosts_line = lines[1]
    assert "stor2" in hosts_line and "timed out" in hosts_line
    assert "stor3" in hosts_line and "preparation failed: lvg" in hosts_line
    assert lines[2:] == ["web01: error (volume on stor1 failed: boom)"]


def test_summary_unknown_status_names_are_kept():
    lines = summary_lines({"counts": {"weird": 4, "available": 1}, "hosts_failed": {}, "errors": []})
    assert "4 weird" in lines[0] and "1 available" in lines[0]


@pytest.mark.parametrize("n", [49, 50, 51, 120])
def test_summary_lists_at_most_50_errors(n):
    errors = ["disk%03d: error (x)" % i for i in range(n)]
    lines = summary_lines({"counts": {"error": n}, "hosts_failed": {}, "errors": errors})
    listed = [line for line in lines if line.startswith("disk")]
    assert listed == errors[:50]
    more = [line for line in lines if "more" in line]
    if n > 50:
        assert len(more) == 1 and "and %d more" % (n - 50) in more[0]
        assert lines[-1] == more[0]
    else:
        assert more == []
    assert "%d error" % n in lines[0]


def test_long_reasons_are_shortened_in_rows_and_summary():
    msg = "x" * 5000
    got = build_report(plan(entry("a", "create")),
                       volume_results={"stor1": vols(("a", "create", {"failed": True}), failed=True, msg=msg)})
    assert len(rows(got)["a"]["status"]) < 1000
    report = {"counts": {}, "hosts_failed": {"stor2": msg}, "errors": []}
    assert len(summary_lines(report)[1]) < 1000


# --- one line per pool after the run ----------------------------------------------------------------------------

def _pool(pool_id, thin, total, allocated, provisioned, volumes=(), mosr=20.0):
    host, backend = pool_id.split("@")
    return {"id": pool_id, "host": host, "backend": backend, "exists": True, "predicted": False,
            "driver": "lvm_thin" if thin else "lvm_thick", "thin_pool": "thinpool" if thin else None,
            "total_bytes": total, "free_bytes": total - allocated, "allocated_bytes": allocated,
            "provisioned_bytes": provisioned, "capabilities": {"max_over_subscription_ratio": mosr},
            "volumes": [{"name": n, "size_bytes": s} for n, s in volumes]}


def test_pool_lines_count_what_the_run_created_extended_and_deleted():
    pools = [_pool("stor1@lvm-thick", False, 4 * GiB, GiB, GiB, volumes=[("old", GiB)]),
             _pool("stor1@lvm-thin", True, 2 * GiB, 512 * MiB, 3 * GiB, volumes=[("grown", GiB)])]
    got = build_report(plan(entry("new", "create", backend="lvm-thick", size=GiB),
                            entry("old", "delete", backend="lvm-thick", state="absent"),
                            entry("grown", "extend", backend="lvm-thin", size=2 * GiB),
                            entry("thin-new", "create", backend="lvm-thin", size=4 * GiB)),
                       volume_results={"stor1": vols(("new", "create"), ("grown", "extend", {"size_bytes": 2 * GiB}),
                                                     ("thin-new", "create", {"size_bytes": 4 * GiB}))},
                       delete_results={"stor1": vols(("old", "delete"))}, pools=pools)
    thick, thin = got["pools"]
    # thick: 1 GiB used before, +1 GiB created, -1 GiB deleted = 1 GiB of 4 GiB: a quarter of the bar.
    assert thick == ("pool stor1@lvm-thick [########......................] used 1 GiB, provisioned 1 GiB, "
                     "free 3 GiB of 4 GiB, over-subscription 0.25")
    # thin: allocation unchanged (thin creates allocate nothing); provisioned 3 + 1 (extend) + 4 = 8 GiB of 2 GiB.
    assert thin.startswith("pool stor1@lvm-thin [########++++++++++++++++++++++]> used 512 MiB, provisioned 8 GiB, "
                           "free 1.5 GiB of 2 GiB, over-subscription 4.00 of 20.0 max")
    assert summary_lines(got)[-2:] == [thick, thin]


def test_pool_lines_leave_out_pools_that_do_not_exist_and_failed_items():
    gone = dict(_pool("stor2@lvm-thick", False, 0, 0, 0), exists=False)
    pools = [_pool("stor1@lvm-thick", False, 4 * GiB, 0, 0), gone]
    got = build_report(plan(entry("new", "create", backend="lvm-thick")),
                       volume_results={"stor1": vols(("new", "create", {"failed": True}), failed=True, msg="boom")},
                       pools=pools)
    assert got["pools"] == ["pool stor1@lvm-thick [..............................] used 0 B, provisioned 0 B, "
                            "free 4 GiB of 4 GiB, over-subscription 0.00"]


def test_snapshot_deltas_count_cow_stores_and_thin_provisioned_sizes():
    from ansible_collections.ember.blockstore.plugins.plugin_utils.report import snapshot_deltas

    plan = {"volumes": [
        {"name": "a", "pool_id": "s1@thick", "thin_pool": None, "size_bytes": 100, "snapshots": [
            {"name": "new", "action": "create", "cow_size_bytes": 40}, {"name": "old", "action": "delete"}]},
        {"name": "b", "pool_id": "s1@thin", "thin_pool": "tp", "size_bytes": 300, "snapshots": [
            {"name": "new", "action": "create", "cow_size_bytes": None}, {"name": "same", "action": "none"}]},
        {"name": "c", "pool_id": "s1@thick", "thin_pool": None, "size_bytes": None, "snapshots": [
            {"name": "x", "action": "delete"}]},
        {"name": "d", "pool_id": "s1@thick", "thin_pool": None, "size_bytes": 10, "snapshots": [
            {"name": "y", "action": "create", "cow_size_bytes": 10}]}]}
    rows = [{"volume": "a", "state": "available"}, {"volume": "b", "state": "in-use"},
            {"volume": "c", "state": "deleted"}, {"volume": "d", "state": "error"}]
    facts = {"a": {"managed_snapshots": [{"name": "old", "cow_size_bytes": 25, "volume_size_bytes": 100}]},
             "c": {"managed_snapshots": [{"name": "x", "cow_size_bytes": 7, "volume_size_bytes": 50}]}}
    # thick: +40 (a's new COW) -25 (a's old) -7 (c's, deleted with it); d is in error: not counted. thin: +300.
    assert snapshot_deltas(plan, rows, facts) == {"s1@thick": 8, "s1@thin": 300}

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``plugin_utils.ledger``: which storage hosts reported, the merged placement ledger, the reconciled plan input,
and the ledgers written before and after a run.

Gathers are ``backend_info`` results as a play registers them (``unreachable``/``failed`` results included);
pools carry only the keys these functions read (``id`` and ``volumes``).
"""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.ledger import (
    MAX_LISTED,
    PlanRefused,
    final_ledger,
    host_reports,
    intent_ledger,
    ledger_write_args,
    merge_ledgers,
    reconcile,
)

HOSTS = ["stor1", "stor2"]


def place(host, backend="lvm-thin", status="available"):
    return {"host": host, "pool_id": "%s@%s" % (host, backend), "status": status}


def pool(host, backend, *names):
    return {"id": "%s@%s" % (host, backend), "host": host, "backend": backend,
            "volumes": [{"name": n, "size_bytes": 2**30} for n in names]}


def book(generation, **volumes):
    return {"format": 1, "generation": generation, "volumes": volumes, "written_by": "test", "written_at": None}


def gather(pools=(), ledger=None, problems=(), ledger_error=None):
    return {"changed": False, "pools": list(pools), "problems": list(problems), "ledger": ledger,
            "ledger_error": ledger_error}


UNREACHABLE = {"unreachable": True, "changed": False,
               "msg": "Failed to connect to the host via ssh: ssh: connect to host 198.18.0.12 port 22: No route"}

# The lab after a converge: stor1 holds db01-data and archive01 (thin), logs01 (thick); stor2 db02-data (thin)
# and web01 (thick). Every node holds the same ledger at generation 7.
LAB = book(7, **{"db01-data": place("stor1"), "archive01": place("stor1"), "logs01": place("stor1", "lvm-thick"),
                 "db02-data": place("stor2"), "web01": place("stor2", "lvm-thick")})
STOR1_POOLS = [pool("stor1", "lvm-thick", "logs01"), pool("stor1", "lvm-thin", "archive01", "db01-data")]
STOR2_POOLS = [pool("stor2", "lvm-thick", "web01"), pool("stor2", "lvm-thin", "db02-data")]
REQUESTED = {"db01-data": "present", "archive01": "present", "logs01": "present", "db02-data": "present",
             "web01": "present"}


def reports(stor1=None, stor2=None):
    results = {"stor1": {"gather": gather(STOR1_POOLS, LAB) if stor1 is None else stor1},
               "stor2": {"gather": gather(STOR2_POOLS, LAB) if stor2 is None else stor2}}
    return host_reports(HOSTS, results)


def refusal(excinfo):
    errors = excinfo.value.args[0]
    assert isinstance(errors, list) and errors
    return errors


# --- host_reports ------------------------------------------------------------------------------------------------

def test_all_hosts_ok():
    got = reports()
    assert set(got) == {"stor1", "stor2"}
    assert got["stor1"]["status"] == "ok" and got["stor1"]["reason"] is None
    assert got["stor1"]["pools"] == STOR1_POOLS
    assert got["stor1"]["ledger"] == LAB
    assert got["stor1"]["problems"] == [] and got["stor1"]["ledger_error"] is None


def test_unreachable_host_carries_ansibles_message():
    got = reports(stor2=UNREACHABLE)["stor2"]
    assert got["status"] == "unreachable"
    assert "unreachable" in got["reason"] and "No route" in got["reason"]
    assert got["pools"] == [] and got["ledger"] is None


def test_failed_gather():
    got = reports(stor2={"failed": True, "msg": "vgs failed (rc=5): Volume group not found"})["stor2"]
    assert got["status"] == "failed"
    assert "backend_info" in got["reason"] and "Volume group not found" in got["reason"]
    assert got["pools"] == []


@pytest.mark.parametrize("result", [{}, None, {"skipped": True, "changed": False},
                                    {"changed": False, "msg": "no pools key"}], ids=["empty", "none", "skipped",
                                                                                     "no-pools"])
def test_no_result_is_not_an_empty_host(result):
    got = host_reports(HOSTS, {"stor1": {"gather": gather(STOR1_POOLS, LAB)}, "stor2": {"gather": result}})
    assert got["stor2"]["status"] != "ok"
    assert got["stor2"]["reason"]
    assert got["stor2"]["pools"] == []


def test_host_missing_from_the_results_is_not_ok():
    got = host_reports(HOSTS, {"stor1": {"gather": gather(STOR1_POOLS, LAB)}})
    assert got["stor1"]["status"] == "ok"
    assert got["stor2"]["status"] != "ok" and got["stor2"]["reason"]


def test_prepare_error_fails_the_host_but_keeps_its_ledger():
    got = host_reports(HOSTS, {"stor1": {"gather": gather(STOR1_POOLS, LAB)},
                               "stor2": {"gather": gather(STOR2_POOLS, LAB),
                                         "prepare_error": "lvg: list index out of range"}})
    assert got["stor1"]["status"] == "ok"
    assert got["stor2"]["status"] == "failed"
    assert "preparation" in got["stor2"]["reason"]
    assert "list index out of range" in got["stor2"]["reason"]
    assert got["stor2"]["pools"] == []  # nothing may be scheduled there
    assert got["stor2"]["ledger"] == LAB  # but its copy of the ledger counts


def test_damaged_host_names_backend_device_and_repair():
    problems = [
        {"backend": "lvm-thick", "vg": "ember-thick", "device": "/dev/vdb",
         "message": "LVM cannot read the volume group on this PV ([unknown] VG)",
         "repair": "vgck --updatemetadata ember-thick"},
        {"backend": "lvm-thin", "vg": "ember-thin", "device": None, "message": "thin pool data is 99.0% full",
         "repair": "lvextend -L +SIZE ember-thin/thinpool"},
    ]
    got = reports(stor2=gather([], LAB, problems))["stor2"]
    assert got["status"] == "damaged"
    assert got["problems"] == problems
    for text in ("lvm-thick", "/dev/vdb", "vgck --updatemetadata ember-thick", "[unknown]", "lvm-thin",
                 "lvextend -L +SIZE ember-thin/thinpool"):
        assert text in got["reason"]
    assert got["ledger"] == LAB


def test_host_reports_keeps_only_the_storage_hosts_in_order():
    got = host_reports(["stor2", "stor1"], {"stor1": {"gather": gather(STOR1_POOLS, LAB)},
                                            "stor2": {"gather": gather(STOR2_POOLS, LAB)},
                                            "client1": {"gather": gather()}})
    assert list(got) == ["stor2", "stor1"]


def test_ledger_error_is_carried():
    got = reports(stor1=gather(STOR1_POOLS, None, ledger_error="/var/lib/x: not valid JSON"))["stor1"]
    assert got["status"] == "ok"
    assert got["ledger_error"] == "/var/lib/x: not valid JSON" and got["ledger"] is None


# --- merge_ledgers -----------------------------------------------------------------------------------------------

def _r(ledger, status="ok", ledger_error=None):
    return {"status": status, "reason": None, "pools": [], "ledger": ledger, "ledger_error": ledger_error,
            "problems": []}


def test_highest_generation_wins():
    old = book(6, vol1=place("stor1"), vol2=place("stor2"))
    new = book(7, vol1=place("stor1"))
    got = merge_ledgers({"stor1": _r(new), "stor2": _r(old)})
    assert got["generation"] == 7
    assert got["volumes"] == {"vol1": place("stor1")}  # vol2 was deleted by the run that wrote generation 7
    assert got["conflicts"] == []
    assert got["nodes"] == {"stor1": {"generation": 7, "volumes": {"vol1": place("stor1")}},
                            "stor2": {"generation": 6, "volumes": {"vol1": place("stor1"), "vol2": place("stor2")}}}


def test_highest_generation_wins_whatever_the_host_order():
    old = book(9, vol1=place("stor2"))
    new = book(3, vol1=place("stor1"))
    assert merge_ledgers({"stor1": _r(new), "stor2": _r(old)})["volumes"] == {"vol1": place("stor2")}
    assert merge_ledgers({"stor2": _r(old), "stor1": _r(new)})["volumes"] == {"vol1": place("stor2")}


def test_equal_generation_different_content_unites_and_reports_conflicts():
    # Two runs that both bumped generation 4 to 5, each on one node.
    one = book(5, vol1=place("stor1"), vol2=place("stor1", status="creating"))
    two = book(5, vol1=place("stor1"), vol2=place("stor2"), vol3=place("stor2", status="creating"))
    got = merge_ledgers({"stor1": _r(one), "stor2": _r(two)})
    assert got["generation"] == 5
    assert set(got["volumes"]) == {"vol1", "vol2", "vol3"}
    assert got["volumes"]["vol1"] == place("stor1")
    assert got["volumes"]["vol3"] == place("stor2", status="creating")
    # The copy that says vol2 exists wins over the one that says it is being created.
    assert got["volumes"]["vol2"] == place("stor2")
    assert len(got["conflicts"]) == 1
    assert "vol2" in got["conflicts"][0] and "5" in got["conflicts"][0]
    assert "stor1@lvm-thin" in got["conflicts"][0] and "stor2@lvm-thin" in got["conflicts"][0]


def test_conflict_prefers_available_whichever_host_holds_it():
    first = book(5, vol1=place("stor1"))
    second = book(5, vol1=place("stor2", status="creating"))
    got = merge_ledgers({"stor1": _r(first), "stor2": _r(second)})
    assert got["volumes"]["vol1"] == place("stor1")
    assert len(got["conflicts"]) == 1


def test_merge_skips_unreadable_and_absent_ledgers():
    got = merge_ledgers({"stor1": _r(None, ledger_error="bad JSON"), "stor2": _r(None, status="unreachable"),
                         "stor3": _r(book(2, vol1=place("stor3")))})
    assert list(got["nodes"]) == ["stor3"]
    assert got["generation"] == 2 and got["volumes"] == {"vol1": place("stor3")}


def test_merge_of_nothing_is_generation_0():
    got = merge_ledgers({})
    assert got == {"generation": 0, "volumes": {}, "nodes": {}, "conflicts": []}


def test_merge_counts_the_ledger_of_a_host_that_failed_in_preparation():
    got = merge_ledgers({"stor1": _r(book(3)), "stor2": _r(book(4, vol1=place("stor2")), status="failed")})
    assert got["generation"] == 4 and got["volumes"] == {"vol1": place("stor2")}


# --- reconcile ---------------------------------------------------------------------------------------------------

def test_everything_reported():
    ctx = reconcile(reports(), REQUESTED)
    assert ctx["missing"] == {} and ctx["unknown"] == {} and ctx["pinned"] == {}
    assert ctx["pools"] == STOR1_POOLS + STOR2_POOLS
    assert ctx["ledger"]["generation"] == 7
    assert ctx["existing"]["web01"] == [{"host": "stor2", "pool_id": "stor2@lvm-thick"}]


def test_missing_host_refuses_naming_host_reason_and_its_volumes():
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(reports(stor2=UNREACHABLE), REQUESTED)
    errors = refusal(excinfo)
    about = [e for e in errors if "stor2" in e]
    assert about
    text = "\n".join(errors)
    assert "No route" in text  # the reason
    assert "db02-data" in about[0] and "web01" in about[0]
    assert "2 volumes" in about[0]
    for name in ("db01-data", "archive01", "logs01"):  # stor1's volumes are not named
        assert name not in text
    assert "nothing was changed" in text.lower()
    assert "blockstore_allow_partial" in text


def test_missing_host_with_one_volume_is_singular():
    one = book(7, **{"db01-data": place("stor1"), "web01": place("stor2", "lvm-thick")})
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(host_reports(HOSTS, {"stor1": {"gather": gather(STOR1_POOLS, one)},
                                       "stor2": {"gather": UNREACHABLE}}), REQUESTED)
    assert any("1 volume there: web01" in e for e in refusal(excinfo))


def test_missing_host_without_volumes_still_refuses():
    empty = book(7, **{"db01-data": place("stor1")})
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(host_reports(HOSTS, {"stor1": {"gather": gather(STOR1_POOLS, empty)},
                                       "stor2": {"gather": UNREACHABLE}}), REQUESTED)
    assert any("stor2" in e and "0 volumes" in e for e in refusal(excinfo))


def test_every_missing_host_is_named():
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(reports(stor1={"failed": True, "msg": "boom"}, stor2=UNREACHABLE), REQUESTED)
    errors = refusal(excinfo)
    assert any(e.startswith("storage host stor1") and "boom" in e for e in errors)
    assert any(e.startswith("storage host stor2") and "No route" in e for e in errors)


def test_refusal_lists_at_most_twenty_volumes_then_counts():
    names = ["vol%02d" % i for i in range(MAX_LISTED + 5)]
    many = book(3, **{n: place("stor2") for n in names})
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(host_reports(HOSTS, {"stor1": {"gather": gather([], many)}, "stor2": {"gather": UNREACHABLE}}),
                  {})
    message = next(e for e in refusal(excinfo) if "stor2" in e)
    assert MAX_LISTED == 20
    assert "25 volumes" in message
    listed = [n for n in names if n in message]
    assert listed == names[:20]  # sorted, the first 20
    assert message.endswith("and 5 more")


def test_refusal_lists_exactly_twenty_without_more():
    names = ["vol%02d" % i for i in range(20)]
    many = book(3, **{n: place("stor2") for n in names})
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(host_reports(HOSTS, {"stor1": {"gather": gather([], many)}, "stor2": {"gather": UNREACHABLE}}),
                  {})
    message = next(e for e in refusal(excinfo) if "stor2" in e)
    assert all(n in message for n in names)
    assert "more" not in message


def test_allow_partial_leaves_the_missing_hosts_volumes_unknown():
    ctx = reconcile(reports(stor2=UNREACHABLE), REQUESTED, allow_partial=True)
    assert set(ctx["missing"]) == {"stor2"} and "No route" in ctx["missing"]["stor2"]
    assert set(ctx["unknown"]) == {"db02-data", "web01"}
    assert ctx["unknown"]["web01"]["host"] == "stor2"
    assert ctx["unknown"]["web01"]["pool_id"] == "stor2@lvm-thick"
    assert ctx["unknown"]["web01"]["status"] == "available"
    assert ctx["unknown"]["web01"]["reason"].startswith("stor2")
    assert ctx["pools"] == STOR1_POOLS  # only the pools of hosts that reported
    assert ctx["pinned"] == {}


def test_allow_partial_damaged_host_pools_are_not_used():
    damaged = gather(STOR2_POOLS, LAB, [{"backend": "lvm-thin", "vg": "ember-thin", "device": "/dev/vdc",
                                         "message": "Checksum error", "repair": "vgck --updatemetadata ember-thin"}])
    ctx = reconcile(reports(stor2=damaged), REQUESTED, allow_partial=True)
    assert all(p["host"] == "stor1" for p in ctx["pools"])
    assert "vgck --updatemetadata ember-thin" in ctx["missing"]["stor2"]
    assert set(ctx["unknown"]) == {"db02-data", "web01"}


def test_allow_partial_without_any_ledger_refuses():
    results = {"stor1": {"gather": gather(STOR1_POOLS, book(0))}, "stor2": {"gather": UNREACHABLE}}
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(host_reports(HOSTS, results), REQUESTED, allow_partial=True)
    text = "\n".join(refusal(excinfo))
    assert "stor2" in text and "ledger" in text


def test_allow_partial_without_any_ledger_refuses_whatever_other_host_is_forgotten():
    # All ledger copies are gone (generation 0), stor2 does not answer, and the inventory still forgets stor3,
    # a node removed long ago: stor2's volumes are not known, so they could be re-created on stor1.
    results = {"stor1": {"gather": gather(STOR1_POOLS, book(0))}, "stor2": {"gather": UNREACHABLE}}
    with pytest.raises(PlanRefused):
        reconcile(host_reports(HOSTS, results), dict(REQUESTED, newvol="present"), allow_partial=True,
                  forget_hosts=["stor3"])


def test_creating_entry_without_its_lv_is_pinned():
    ledger = book(8, **dict(LAB["volumes"], **{"db03-data": place("stor1", status="creating")}))
    ctx = reconcile(reports(stor1=gather(STOR1_POOLS, ledger), stor2=gather(STOR2_POOLS, ledger)),
                    dict(REQUESTED, **{"db03-data": "present"}))
    assert ctx["pinned"] == {"db03-data": "stor1@lvm-thin"}


def test_creating_entry_no_longer_requested_is_not_pinned():
    ledger = book(8, **dict(LAB["volumes"], **{"db03-data": place("stor1", status="creating")}))
    for requested in (REQUESTED, dict(REQUESTED, **{"db03-data": "absent"})):
        ctx = reconcile(reports(stor1=gather(STOR1_POOLS, ledger), stor2=gather(STOR2_POOLS, ledger)), requested)
        assert ctx["pinned"] == {}


def test_creating_entry_whose_lv_exists_is_not_pinned():
    ledger = book(8, **dict(LAB["volumes"], logs01=place("stor1", "lvm-thick", status="creating")))
    ctx = reconcile(reports(stor1=gather(STOR1_POOLS, ledger), stor2=gather(STOR2_POOLS, ledger)), REQUESTED)
    assert ctx["pinned"] == {}  # the LV tags are the truth


def test_available_entry_missing_on_its_host_is_refused_not_recreated():
    pools = [pool("stor1", "lvm-thick", "logs01"), pool("stor1", "lvm-thin", "db01-data")]  # archive01 lost
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(reports(stor1=gather(pools, LAB)), REQUESTED)
    errors = refusal(excinfo)
    assert len(errors) == 1
    assert "archive01" in errors[0] and "stor1@lvm-thin" in errors[0]
    assert "blockstore_ledger_forget" in errors[0]


def test_available_entry_missing_and_forgotten_is_accepted():
    pools = [pool("stor1", "lvm-thick", "logs01"), pool("stor1", "lvm-thin", "db01-data")]
    ctx = reconcile(reports(stor1=gather(pools, LAB)), REQUESTED, forget=["archive01"])
    assert "archive01" not in ctx["recorded"]
    assert "archive01" not in ctx["pinned"]


def test_available_entry_missing_and_not_in_inventory_is_dropped_quietly():
    pools = [pool("stor1", "lvm-thick", "logs01"), pool("stor1", "lvm-thin", "db01-data")]
    requested = {k: v for k, v in REQUESTED.items() if k != "archive01"}
    ctx = reconcile(reports(stor1=gather(pools, LAB)), requested)
    assert "archive01" in ctx["recorded"] and "archive01" not in ctx["existing"]
    assert "archive01" not in intent_ledger(ctx, [])


def test_available_entry_missing_and_declared_absent_is_accepted():
    pools = [pool("stor1", "lvm-thick", "logs01"), pool("stor1", "lvm-thin", "db01-data")]
    ctx = reconcile(reports(stor1=gather(pools, LAB)), dict(REQUESTED, archive01="absent"))
    assert "archive01" not in intent_ledger(ctx, [])


def test_deleting_entry_whose_lv_exists_and_inventory_says_present_is_refused():
    ledger = book(8, **dict(LAB["volumes"], logs01=place("stor1", "lvm-thick", status="deleting")))
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(reports(stor1=gather(STOR1_POOLS, ledger), stor2=gather(STOR2_POOLS, ledger)), REQUESTED)
    errors = refusal(excinfo)
    assert len(errors) == 1
    assert "logs01" in errors[0] and "stor1@lvm-thick" in errors[0]
    assert "absent" in errors[0] and "blockstore_ledger_forget" in errors[0]


def test_deleting_entry_whose_lv_exists_and_inventory_says_absent_is_accepted():
    ledger = book(8, **dict(LAB["volumes"], logs01=place("stor1", "lvm-thick", status="deleting")))
    ctx = reconcile(reports(stor1=gather(STOR1_POOLS, ledger), stor2=gather(STOR2_POOLS, ledger)),
                    dict(REQUESTED, logs01="absent"))
    assert ctx["existing"]["logs01"] == [{"host": "stor1", "pool_id": "stor1@lvm-thick"}]


def test_deleting_entry_whose_lv_is_gone_may_be_created_again():
    pools = [pool("stor1", "lvm-thick"), pool("stor1", "lvm-thin", "archive01", "db01-data")]
    ledger = book(8, **dict(LAB["volumes"], logs01=place("stor1", "lvm-thick", status="deleting")))
    ctx = reconcile(reports(stor1=gather(pools, ledger), stor2=gather(STOR2_POOLS, ledger)), REQUESTED)
    assert "logs01" not in ctx["pinned"] and "logs01" not in ctx["unknown"]


def test_forget_drops_volumes_from_the_ledger():
    ctx = reconcile(reports(stor2=UNREACHABLE), REQUESTED, allow_partial=True, forget=["web01"])
    assert set(ctx["unknown"]) == {"db02-data"}
    assert "web01" not in ctx["recorded"]


def test_forget_hosts_drops_a_host_for_good():
    ctx = reconcile(reports(stor2=UNREACHABLE), REQUESTED, forget_hosts=["stor2"])
    assert ctx["missing"] == {} and ctx["unknown"] == {}
    assert "db02-data" not in ctx["recorded"] and "web01" not in ctx["recorded"]
    assert ctx["pools"] == STOR1_POOLS


def test_forget_does_not_hide_a_missing_host():
    with pytest.raises(PlanRefused) as excinfo:
        reconcile(reports(stor2=UNREACHABLE), REQUESTED, forget=["web01"])
    message = next(e for e in refusal(excinfo) if "stor2" in e)
    assert "db02-data" in message and "web01" not in message


def test_unreadable_ledger_on_a_reporting_host_is_refused():
    bad = gather(STOR1_POOLS, None, ledger_error="/var/lib/ember-blockstore/ledger.json: not valid JSON")
    for allow_partial in (False, True):
        with pytest.raises(PlanRefused) as excinfo:
            reconcile(reports(stor1=bad), REQUESTED, allow_partial=allow_partial)
        errors = refusal(excinfo)
        assert any(e.startswith("stor1") and "not valid JSON" in e for e in errors)


# --- intent_ledger / final_ledger --------------------------------------------------------------------------------

def plan_entry(name, action, host="stor1", backend="lvm-thin", state="present"):
    placed = host is not None
    return {"name": name, "action": action, "state": state, "host": host,
            "pool_id": "%s@%s" % (host, backend) if placed else None}


def test_intent_records_existing_creates_and_deletes():
    ctx = reconcile(reports(), dict(REQUESTED, new1="present", logs01="absent"))
    plan = [plan_entry("db01-data", "none"), plan_entry("logs01", "delete", backend="lvm-thick", state="absent"),
            plan_entry("new1", "create", host="stor2")]
    got = intent_ledger(ctx, plan)
    assert got["new1"] == place("stor2", status="creating")
    assert got["logs01"] == place("stor1", "lvm-thick", status="deleting")
    assert got["db01-data"] == place("stor1")
    assert got["web01"] == place("stor2", "lvm-thick")
    assert set(got) == {"db01-data", "archive01", "logs01", "db02-data", "web01", "new1"}


def test_intent_keeps_the_entries_of_missing_hosts_unchanged():
    ledger = book(7, **dict(LAB["volumes"], db02x=place("stor2", status="creating")))
    ctx = reconcile(reports(stor2=UNREACHABLE, stor1=gather(STOR1_POOLS, ledger)), REQUESTED, allow_partial=True)
    got = intent_ledger(ctx, [])
    assert got["db02-data"] == place("stor2")
    assert got["web01"] == place("stor2", "lvm-thick")
    assert got["db02x"] == place("stor2", status="creating")


def test_intent_existing_lv_is_available_even_if_recorded_creating():
    ledger = book(8, **dict(LAB["volumes"], logs01=place("stor1", "lvm-thick", status="creating")))
    ctx = reconcile(reports(stor1=gather(STOR1_POOLS, ledger), stor2=gather(STOR2_POOLS, ledger)), REQUESTED)
    assert intent_ledger(ctx, [])["logs01"] == place("stor1", "lvm-thick")


def test_intent_pinned_create_stays_creating_on_its_pool():
    ledger = book(8, **dict(LAB["volumes"], new1=place("stor1", status="creating")))
    ctx = reconcile(reports(stor1=gather(STOR1_POOLS, ledger), stor2=gather(STOR2_POOLS, ledger)),
                    dict(REQUESTED, new1="present"))
    assert intent_ledger(ctx, [])["new1"] == place("stor1", status="creating")
    assert intent_ledger(ctx, [plan_entry("new1", "create")])["new1"] == place("stor1", status="creating")


def test_intent_keeps_the_deleting_mark_of_a_partly_wiped_volume_out_of_the_inventory():
    ledger = book(8, **dict(LAB["volumes"], logs01=place("stor1", "lvm-thick", status="deleting")))
    requested = {k: v for k, v in REQUESTED.items() if k != "logs01"}
    ctx = reconcile(reports(stor1=gather(STOR1_POOLS, ledger), stor2=gather(STOR2_POOLS, ledger)), requested)
    assert intent_ledger(ctx, [])["logs01"]["status"] == "deleting"


def result(*items, **top):
    return dict({"changed": True, "volumes": list(items)}, **top)


def test_final_create_ok_is_available_failed_is_dropped_unanswered_stays_creating():
    intent = {"a": place("stor1", status="creating"), "b": place("stor1", status="creating"),
              "c": place("stor2", status="creating"), "d": place("stor1", status="creating"),
              "e": place("stor1")}
    volume_results = {
        # The module stops at the first failure: a created, b failed, d not attempted.
        "stor1": result({"name": "a", "action": "create", "changed": True},
                        {"name": "b", "action": "create", "changed": False, "failed": True},
                        {"name": "e", "action": "extend", "changed": True}, failed=True, msg="volume b: lvcreate"),
        "stor2": {"unreachable": True, "msg": "Connection reset"},
    }
    got = final_ledger(intent, volume_results, {})
    assert got["a"] == place("stor1")
    assert "b" not in got
    assert got["c"] == place("stor2", status="creating")
    assert got["d"] == place("stor1", status="creating")
    assert got["e"] == place("stor1")
    assert intent["a"]["status"] == "creating"  # the intent is not modified


def test_final_create_found_existing_is_available():
    intent = {"a": place("stor1", status="creating")}
    got = final_ledger(intent, {"stor1": result({"name": "a", "action": "none", "changed": False})}, None)
    assert got == {"a": place("stor1")}


def test_final_delete_ok_or_absent_is_removed_failed_stays_deleting():
    intent = {"x": place("stor1", status="deleting"), "y": place("stor1", status="deleting"),
              "z": place("stor1", status="deleting"), "w": place("stor2", status="deleting")}
    delete_results = {
        "stor1": result({"name": "x", "action": "delete", "changed": True},
                        {"name": "y", "action": "absent", "changed": False},
                        {"name": "z", "action": "delete", "changed": False, "failed": True},
                        failed=True, msg="volume z: lvremove"),
        "stor2": {"skipped": True},
    }
    got = final_ledger(intent, {}, delete_results)
    assert got == {"z": place("stor1", status="deleting"), "w": place("stor2", status="deleting")}


def test_final_ignores_results_for_volumes_not_in_the_intent_state():
    intent = {"a": place("stor1"), "b": place("stor1", status="deleting")}
    got = final_ledger(intent, {"stor1": result({"name": "a", "action": "create", "failed": True},
                                                {"name": "b", "action": "create"},
                                                {"name": "zz", "action": "create"})}, {})
    assert got == intent


# --- ledger_write_args -------------------------------------------------------------------------------------------

def test_write_args_none_when_the_node_already_has_the_content():
    vols = {"a": place("stor1")}
    assert ledger_write_args("stor1", vols, {"stor1": {"generation": 3, "volumes": dict(vols)}}, 9) is None


def test_write_args_next_generation_expected_the_nodes():
    vols = {"a": place("stor1")}
    nodes = {"stor1": {"generation": 3, "volumes": {}}, "stor2": {"generation": 9, "volumes": vols}}
    assert ledger_write_args("stor1", vols, nodes, 9) == {"volumes": vols, "generation": 10,
                                                          "expected_generation": 3}


def test_write_args_for_a_node_without_a_ledger():
    vols = {"a": place("stor1")}
    assert ledger_write_args("stor3", vols, {}, 4) == {"volumes": vols, "generation": 5, "expected_generation": 0}
    assert ledger_write_args("stor3", {}, {}, 4) is None

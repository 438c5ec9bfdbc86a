# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Damaged LVM state: ``parse_pvs``, ``split_report``, ``parse_vg_backup``, ``backend_problems`` and the tolerant
reads ``Lvm.state(tolerant=True)`` / ``Lvm.pvs()``.

The healthy state is the lab's stor1 after a converge (``vgs_converged.json`` / ``lvs_converged.json``): backend
lvm-thick on VG ember-thick (PV /dev/vdb), lvm-thin on ember-thin (PV /dev/vdc) with thinpool at 0.00% data and
11.33% metadata. Damage is what LVM prints for the lab's VM after a hard kill with ``cache=unsafe`` (issue 6):
``[unknown]`` VG in ``pvs``, "Checksum error", "repair VG metadata ... with vgck --updatemetadata".
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import backend_config, backend_options
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import (
    THIN_DATA_LIMIT,
    THIN_METADATA_LIMIT,
    Lvm,
    LvmState,
    backend_problems,
    parse_lvs,
    parse_pvs,
    parse_vg_backup,
    parse_vgs,
    split_report,
)

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "lvm"
DISK = 4294967296  # the lab's 4 GiB data disks


def text(name):
    return (FIXTURES / name).read_text()


def cfg(**backend):
    raw = {key: spec.get("default") for key, spec in backend_options().items()}
    raw.update(backend)
    return backend_config(raw)


def thick(**kwargs):
    return cfg(**dict({"name": "lvm-thick", "driver": "lvm", "vg": "ember-thick", "pvs": ["/dev/vdb"],
                       "availability_zone": "az1"}, **kwargs))


def thin(**kwargs):
    return cfg(**dict({"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", "pvs": ["/dev/vdc"],
                       "thin_pool": "thinpool", "thin_pool_size": "95%VG", "availability_zone": "az1"}, **kwargs))


def pvs_json(*rows):
    """``pvs --reportformat json --units b --nosuffix -o pv_name,vg_name,pv_size,pv_missing`` as LVM prints it."""
    lines = ['  {', '      "report": [', '          {', '              "pv": [']
    body = ['                  {"pv_name":"%s", "vg_name":"%s", "pv_size":"%s", "pv_missing":"%s"}' % row
            for row in rows]
    lines.append(",\n".join(body))
    lines += ['              ]', '          }', '      ]', '  }']
    return "\n".join(lines) + "\n"


HEALTHY_PVS = pvs_json(("/dev/vdb", "ember-thick", DISK, ""), ("/dev/vdc", "ember-thin", DISK, ""))


def state(vg_changes=None, lv_changes=None):
    """The converged state with some vgs/lvs fields changed: ``{vg: {field: value}}``, ``{lv: {field: value}}``."""
    vgs = json.loads(text("vgs_converged.json"))
    lvs = json.loads(text("lvs_converged.json"))
    for row in vgs["report"][0]["vg"]:
        row.update((vg_changes or {}).get(row["vg_name"], {}))
    for row in lvs["report"][0]["lv"]:
        row.update((lv_changes or {}).get(row["lv_name"], {}))
    return LvmState(parse_vgs(json.dumps(vgs)), parse_lvs(json.dumps(lvs)))


HEALTHY = state()
CHECKSUM = "  WARNING: Checksum error at offset 4608 on /dev/vdb"
REPAIR = "  WARNING: repair VG metadata on /dev/vdb with vgck --updatemetadata."


def check_shape(problems, backend, vg):
    for p in problems:
        assert set(p) == {"backend", "vg", "device", "message", "repair"}
        assert p["backend"] == backend and p["vg"] == vg
        assert p["message"] and p["repair"]


# --- parse_pvs ---------------------------------------------------------------------------------------------------

def test_parse_pvs():
    sample = pvs_json(("/dev/vdb", "[unknown]", DISK, ""), ("/dev/vdc", "ember-thin", DISK, ""),
                      ("[unknown]", "ember-thin", "0", "missing"), ("/dev/vdd", "", "10737418240", ""))
    assert parse_pvs(sample) == [
        {"name": "/dev/vdb", "vg": "[unknown]", "size_bytes": DISK, "missing": False},
        {"name": "/dev/vdc", "vg": "ember-thin", "size_bytes": DISK, "missing": False},
        {"name": "[unknown]", "vg": "ember-thin", "size_bytes": 0, "missing": True},
        {"name": "/dev/vdd", "vg": "", "size_bytes": 10 * 2**30, "missing": False},
    ]


def test_parse_pvs_empty_and_odd_sizes():
    assert parse_pvs("") == [] and parse_pvs("   \n") == []
    rows = parse_pvs(pvs_json(("/dev/vdb", "ember-thick", "", "")))
    assert rows[0]["size_bytes"] == 0 and rows[0]["missing"] is False


def test_parse_pvs_with_a_stray_line_in_the_report():
    sample = HEALTHY_PVS.replace('              "pv": [', '              "pv": [\n  Retrying metadata scan.')
    assert [r["name"] for r in parse_pvs(sample)] == ["/dev/vdb", "/dev/vdc"]


def test_parse_pvs_not_json():
    with pytest.raises(ValueError):
        parse_pvs("  Volume group not found\n  {broken")


def test_split_report():
    body, stray = split_report('  {\n  Retrying metadata scan.\n      "report": []\n  }\n')
    assert json.loads(body) == {"report": []}
    assert stray == ["Retrying metadata scan."]
    assert split_report("") == ("", [])


# --- backend_problems: healthy -----------------------------------------------------------------------------------

def test_healthy_lab_has_no_problems():
    pv_rows = parse_pvs(HEALTHY_PVS)
    assert backend_problems(thick(), HEALTHY, pv_rows, []) == []
    assert backend_problems(thin(), HEALTHY, pv_rows, []) == []


def test_harmless_warnings_are_not_problems():
    messages = ["  WARNING: PV /dev/vdb in VG ember-thick is using an old PV header, modify the VG to update.",
                "  WARNING: Not using lvmetad because config setting use_lvmetad=0.",
                "  Device /dev/vdd excluded by a filter."]
    assert backend_problems(thick(), HEALTHY, parse_pvs(HEALTHY_PVS), messages) == []


def test_new_disk_not_yet_a_pv_is_not_a_problem():
    # Before the prepare phase makes the VG: the disk is no PV, the VG does not exist, no backup.
    empty = LvmState({}, [])
    assert backend_problems(thick(), empty, [], []) == []
    assert backend_problems(thick(), empty, parse_pvs(pvs_json(("/dev/vdb", "", DISK, ""))), []) == []


# --- backend_problems: damaged metadata --------------------------------------------------------------------------

def test_unknown_vg_on_a_backend_pv():
    pv_rows = parse_pvs(pvs_json(("/dev/vdb", "[unknown]", DISK, ""), ("/dev/vdc", "ember-thin", DISK, "")))
    problems = backend_problems(thick(), HEALTHY, pv_rows, [])
    check_shape(problems, "lvm-thick", "ember-thick")
    assert len(problems) == 1
    assert problems[0]["device"] == "/dev/vdb"
    assert "[unknown]" in problems[0]["message"]
    assert "vgck --updatemetadata ember-thick" in problems[0]["repair"]
    assert backend_problems(thin(), HEALTHY, pv_rows, []) == []  # the other backend is fine


def test_checksum_and_repair_lines_naming_a_backend_pv():
    problems = backend_problems(thick(), HEALTHY, parse_pvs(HEALTHY_PVS), [CHECKSUM, REPAIR])
    check_shape(problems, "lvm-thick", "ember-thick")
    assert problems  # at least one, each naming the device and a repair of the VG
    assert all(p["device"] == "/dev/vdb" for p in problems)
    assert all("ember-thick" in p["repair"] and "vgck --updatemetadata" in p["repair"] for p in problems)
    assert any("Checksum error at offset 4608 on /dev/vdb" in p["message"] for p in problems)
    # One problem per device (the code keeps LVM's most telling line, the checksum error).
    assert len(problems) == 1
    assert backend_problems(thin(), HEALTHY, parse_pvs(HEALTHY_PVS), [CHECKSUM, REPAIR]) == []


@pytest.mark.parametrize("line", [REPAIR, "  WARNING: invalid metadata text from /dev/vdb at 4608.",
                                  "  WARNING: scanning /dev/vdb mda1 failed to read metadata summary.",
                                  "  WARNING: bad metadata text on /dev/vdb in mda1"])
def test_each_damage_line_alone_is_a_problem(line):
    problems = backend_problems(thick(), HEALTHY, parse_pvs(HEALTHY_PVS), [line])
    assert len(problems) == 1
    assert problems[0]["device"] == "/dev/vdb"
    assert line.strip().replace("WARNING: ", "") in problems[0]["message"]
    assert "ember-thick" in problems[0]["repair"]


def test_same_line_from_vgs_and_lvs_is_one_problem():
    problems = backend_problems(thick(), HEALTHY, parse_pvs(HEALTHY_PVS), [CHECKSUM, CHECKSUM, REPAIR, CHECKSUM])
    assert len(problems) == 1


def test_unknown_vg_and_checksum_on_the_same_pv_keep_both_facts():
    pv_rows = parse_pvs(pvs_json(("/dev/vdb", "[unknown]", DISK, ""), ("/dev/vdc", "ember-thin", DISK, "")))
    problems = backend_problems(thick(), HEALTHY, pv_rows, [CHECKSUM, REPAIR])
    assert {p["device"] for p in problems} == {"/dev/vdb"}
    text_all = " ".join(p["message"] for p in problems)
    assert "[unknown]" in text_all and "Checksum error" in text_all
    assert all("vgck --updatemetadata ember-thick" in p["repair"] for p in problems)


def test_line_naming_the_vg_without_a_device():
    line = "  WARNING: Inconsistent metadata found for VG ember-thick."
    problems = backend_problems(thick(), HEALTHY, parse_pvs(HEALTHY_PVS), [line])
    assert len(problems) == 1 and problems[0]["device"] is None
    assert "ember-thick" in problems[0]["repair"]
    assert backend_problems(thin(), HEALTHY, parse_pvs(HEALTHY_PVS), [line]) == []


def test_lines_about_other_devices_and_vgs_are_ignored():
    messages = ["  WARNING: Checksum error at offset 4608 on /dev/vdd",
                "  WARNING: repair VG metadata on /dev/sdz with vgck --updatemetadata.",
                "  WARNING: Inconsistent metadata found for VG backup-vg."]
    pv_rows = parse_pvs(HEALTHY_PVS)
    assert backend_problems(thick(), HEALTHY, pv_rows, messages) == []
    assert backend_problems(thin(), HEALTHY, pv_rows, messages) == []


def test_a_line_naming_the_thin_pv_belongs_to_the_thin_backend():
    line = "  WARNING: Checksum error at offset 4608 on /dev/vdc"
    pv_rows = parse_pvs(HEALTHY_PVS)
    assert backend_problems(thick(), HEALTHY, pv_rows, [line]) == []
    problems = backend_problems(thin(), HEALTHY, pv_rows, [line])
    check_shape(problems, "lvm-thin", "ember-thin")
    assert [p["device"] for p in problems] == ["/dev/vdc"]
    assert "ember-thin" in problems[0]["repair"]


def test_a_vg_member_not_in_the_config_is_watched_too():
    # An operator extended the VG by hand with /dev/vde: damage there is the backend's.
    pv_rows = parse_pvs(pvs_json(("/dev/vdb", "ember-thick", DISK, ""), ("/dev/vde", "ember-thick", DISK, "")))
    problems = backend_problems(thick(), HEALTHY, pv_rows, ["  WARNING: Checksum error at offset 4608 on /dev/vde"])
    assert [p["device"] for p in problems] == ["/dev/vde"]


def test_pv_named_through_a_symlink(tmp_path):
    disk = tmp_path / "vdb"
    disk.write_text("")
    link = tmp_path / "by-id-virtio-data1"
    os.symlink(str(disk), str(link))
    pv_rows = parse_pvs(pvs_json((str(disk), "[unknown]", DISK, "")))
    problems = backend_problems(thick(pvs=[str(link)]), HEALTHY, pv_rows, [])
    assert len(problems) == 1 and problems[0]["device"] == str(link)


def test_a_device_whose_name_extends_the_pvs_is_another_device():
    pv_rows = parse_pvs(pvs_json(("/dev/loop1", "ember-thick", DISK, ""), ("/dev/loop10", "other", DISK, "")))
    assert backend_problems(thick(pvs=["/dev/loop1"]), HEALTHY, pv_rows,
                            ["  WARNING: Checksum error at offset 4608 on /dev/loop10"]) == []


def test_a_vg_whose_name_is_part_of_a_word_is_not_matched():
    backend = thick(vg="data", pvs=["/dev/vdb"])
    healthy = LvmState({"data": dict(HEALTHY.vgs["ember-thick"], name="data")}, [])
    pv_rows = parse_pvs(pvs_json(("/dev/vdb", "data", DISK, ""), ("/dev/sdz", "other", DISK, "")))
    assert backend_problems(backend, healthy, pv_rows,
                            ["  WARNING: repair VG metadata on /dev/sdz with vgck --updatemetadata."]) == []


# --- backend_problems: missing and foreign PVs -------------------------------------------------------------------

def test_missing_pv_count():
    damaged = state({"ember-thick": {"vg_missing_pv_count": "1"}})
    problems = backend_problems(thick(), damaged, parse_pvs(HEALTHY_PVS), [])
    check_shape(problems, "lvm-thick", "ember-thick")
    assert len(problems) == 1
    assert "1" in problems[0]["message"] and "missing" in problems[0]["message"]
    assert "vgreduce --removemissing ember-thick" in problems[0]["repair"]
    assert backend_problems(thin(), damaged, parse_pvs(HEALTHY_PVS), []) == []


def test_missing_pv_with_lvms_line_is_reported_once():
    damaged = state({"ember-thick": {"vg_missing_pv_count": "1"}})
    line = "  WARNING: VG ember-thick is missing PV 9XFdbe-0rN2-s7ty-1cFM-t1eN-L2xH-ABcd4E (last written to /dev/vdb)."
    problems = backend_problems(thick(), damaged, parse_pvs(HEALTHY_PVS), [line])
    assert len(problems) == 1
    assert "missing" in problems[0]["message"].lower()
    assert "vgreduce --removemissing ember-thick" in problems[0]["repair"]
    assert "attach the missing disk" in problems[0]["repair"]


def test_pv_in_another_vg():
    pv_rows = parse_pvs(pvs_json(("/dev/vdb", "ember-thin", DISK, ""), ("/dev/vdc", "ember-thin", DISK, "")))
    problems = backend_problems(thick(), HEALTHY, pv_rows, [])
    assert len(problems) == 1
    assert problems[0]["device"] == "/dev/vdb"
    assert "ember-thin" in problems[0]["message"] and "ember-thick" in problems[0]["message"]
    assert "lvm-thick" in problems[0]["repair"]


# --- backend_problems: thin pool limits --------------------------------------------------------------------------

def test_limits_are_the_documented_ones():
    assert (THIN_DATA_LIMIT, THIN_METADATA_LIMIT) == (98.0, 90.0)


@pytest.mark.parametrize("data, meta, expected", [
    ("97.99", "89.99", []),
    ("98.00", "11.33", ["data"]),
    ("0.00", "90.00", ["metadata"]),
    ("99.50", "95.00", ["data", "metadata"]),
    ("", "", []),
])
def test_thin_pool_over_its_limits(data, meta, expected):
    full = state(lv_changes={"thinpool": {"data_percent": data, "metadata_percent": meta}})
    problems = backend_problems(thin(), full, parse_pvs(HEALTHY_PVS), [])
    check_shape(problems, "lvm-thin", "ember-thin")
    kinds = ["metadata" if "metadata" in p["message"] else "data" for p in problems]
    assert kinds == expected
    for p in problems:
        assert p["device"] is None
        assert p["repair"].startswith("lvextend")
        assert "ember-thin/thinpool" in p["repair"]
        assert "thinpool" in p["message"]
    if "metadata" in expected:
        assert "--poolmetadatasize" in problems[-1]["repair"]
    # The thick backend never reports a thin pool.
    assert backend_problems(thick(), full, parse_pvs(HEALTHY_PVS), []) == []


# --- backend_problems: VG gone, backup left ----------------------------------------------------------------------

BACKUP = """# Generated by LVM2 version 2.03.16(2) (2022-05-18): Mon Nov 30 05:00:00 2026

contents = "Text Format Volume"
version = 1

description = "Created *after* executing 'lvcreate --yes -n volume-logs01 ember-thick'"

creation_host = "stor1"\t# Linux stor1 6.1.0-26-amd64 #1 SMP x86_64
creation_time = 1795900000\t# Mon Nov 30 05:00:00 2026

ember-thick {
\tid = "h3Jk2L-aaaa-bbbb-cccc-dddd-eeee-ffffff"
\tseqno = 5
\tformat = "lvm2"\t\t\t# informational
\tstatus = ["RESIZEABLE", "READ", "WRITE"]
\tflags = []
\textent_size = 8192\t\t# 4 Megabytes
\tmax_lv = 0
\tmax_pv = 0
\tmetadata_copies = 0

\tphysical_volumes {

\t\tpv0 {
\t\t\tid = "Xy12Ab-cdEF-gh34-IJkl-56mn-OPqr-stUV78"
\t\t\tdevice = "/dev/vdb"\t# Hint only

\t\t\tstatus = ["ALLOCATABLE"]
\t\t\tflags = []
\t\t\tdev_size = 8388608\t# 4 Gigabytes
\t\t\tpe_start = 2048
\t\t\tpe_count = 1023\t# 3.99609 Gigabytes
\t\t}
\t}

\tlogical_volumes {

\t\tvolume-logs01 {
\t\t\tid = "Qw7Er8-1111-2222-3333-4444-5555-666666"
\t\t\tstatus = ["READ", "WRITE", "VISIBLE"]
\t\t\tflags = []
\t\t\ttags = ["ember.blockstore", "ember.volume=logs01"]
\t\t\tsegment_count = 1

\t\t\tsegment1 {
\t\t\t\tstart_extent = 0
\t\t\t\textent_count = 64\t# 256 Megabytes

\t\t\t\ttype = "striped"
\t\t\t\tstripe_count = 1\t# linear

\t\t\t\tstripes = [
\t\t\t\t\t"pv0", 0
\t\t\t\t]
\t\t\t}
\t\t}
\t}

}
"""


def test_parse_vg_backup():
    assert parse_vg_backup(BACKUP) == [("Xy12Ab-cdEF-gh34-IJkl-56mn-OPqr-stUV78", "/dev/vdb")]
    assert parse_vg_backup("") == [] and parse_vg_backup(None) == []


def test_vg_gone_with_a_backup_is_restored_not_recreated():
    gone = LvmState({k: v for k, v in HEALTHY.vgs.items() if k != "ember-thick"},
                    [lv for lv in HEALTHY.lvs if lv["vg"] != "ember-thick"])
    pv_rows = parse_pvs(pvs_json(("/dev/vdb", "", DISK, ""), ("/dev/vdc", "ember-thin", DISK, "")))
    problems = backend_problems(thick(), gone, pv_rows, [], BACKUP)
    check_shape(problems, "lvm-thick", "ember-thick")
    assert len(problems) == 1
    problem = problems[0]
    assert problem["device"] == "/dev/vdb"
    assert "ember-thick" in problem["message"] and "/etc/lvm/backup/ember-thick" in problem["message"]
    repair = problem["repair"]
    assert "pvcreate --uuid Xy12Ab-cdEF-gh34-IJkl-56mn-OPqr-stUV78 --restorefile /etc/lvm/backup/ember-thick " \
           "/dev/vdb" in repair
    assert repair.index("pvcreate") < repair.index("vgcfgrestore ember-thick") < repair.index("vgchange -ay")
    # Without a backup (a new backend) the missing VG is not a problem.
    assert backend_problems(thick(), gone, pv_rows, [], None) == []


# --- Lvm.state(tolerant=True) and Lvm.pvs() ----------------------------------------------------------------------

class FakeRunner:
    """``Runner.run`` over canned ``(rc, out, err)`` per command name."""

    def __init__(self, outputs):
        self.outputs = outputs
        self.calls = []

    def run(self, args, check=True, ok_rcs=(0,), data=None):
        self.calls.append((list(args), check))
        rc, out, err = self.outputs[args[0]]
        if check and rc not in ok_rcs:
            raise CommandError(args, rc, out, err)
        return rc, out, err


def damaged_outputs():
    vgs = text("vgs_converged.json").replace('"report": [', '"report": [\n  Retrying metadata scan.', 1)
    err = CHECKSUM + "\n" + REPAIR + "\n\n"
    return {"vgs": (5, vgs, err), "lvs": (5, text("lvs_converged.json"), CHECKSUM + "\n"),
            "pvs": (5, pvs_json(("/dev/vdb", "[unknown]", DISK, ""), ("/dev/vdc", "ember-thin", DISK, "")), err)}


def test_tolerant_state_keeps_the_report_and_lvms_lines():
    runner = FakeRunner(damaged_outputs())
    got, messages = Lvm(runner).state(tolerant=True)
    assert sorted(got.vgs) == ["ember-thick", "ember-thin"]
    assert got.vgs == HEALTHY.vgs and got.lvs == HEALTHY.lvs
    stripped = [m.strip() for m in messages]
    assert "Retrying metadata scan." in stripped
    assert CHECKSUM.strip() in stripped and REPAIR.strip() in stripped
    assert all(m.strip() for m in messages)  # blank lines dropped
    assert [(args[0], check) for args, check in runner.calls] == [("vgs", False), ("lvs", False)]
    assert all("--reportformat" in args and "json" in args for args, _check in runner.calls)


def test_strict_state_raises_on_lvms_exit_code():
    with pytest.raises(CommandError):
        Lvm(FakeRunner(damaged_outputs())).state()


def test_strict_state_of_a_healthy_host():
    runner = FakeRunner({"vgs": (0, text("vgs_converged.json"), ""), "lvs": (0, text("lvs_converged.json"), "")})
    got = Lvm(runner).state()
    assert isinstance(got, LvmState) and got.vgs == HEALTHY.vgs


NOT_JSON = "BUG: split_report takes every line that does not look like JSON out as a stray message, so stdout " \
           "with no JSON at all (a vgs/lvs/pvs that failed outright) reads as a host with no VG/PV instead of " \
           "raising CommandError as Lvm.state's docstring says; the VG then looks absent to the prepare phase"


def test_tolerant_state_still_fails_on_output_that_is_not_json():
    outputs = damaged_outputs()
    outputs["lvs"] = (5, "  Volume group \"ember-thick\" not found\n  Cannot process volume group\n", "boom")
    with pytest.raises(CommandError) as excinfo:
        Lvm(FakeRunner(outputs)).state(tolerant=True)
    assert excinfo.value.args_list[0] == "lvs"
    assert excinfo.value.rc == 5


def test_pvs_ignores_the_exit_code_and_parses():
    runner = FakeRunner(damaged_outputs())
    rows = Lvm(runner).pvs()
    assert rows[0] == {"name": "/dev/vdb", "vg": "[unknown]", "size_bytes": DISK, "missing": False}
    assert runner.calls[0][1] is False


def test_pvs_not_json_is_a_command_error():
    with pytest.raises(CommandError) as excinfo:
        Lvm(FakeRunner({"pvs": (5, "garbage {", "err")})).pvs()
    assert excinfo.value.args_list[0] == "pvs"


def test_damaged_host_end_to_end():
    lvm = Lvm(FakeRunner(damaged_outputs()))
    got, messages = lvm.state(tolerant=True)
    pv_rows = lvm.pvs()
    thick_problems = backend_problems(thick(), got, pv_rows, messages)
    assert thick_problems and {p["device"] for p in thick_problems} == {"/dev/vdb"}
    assert all("vgck --updatemetadata ember-thick" in p["repair"] for p in thick_problems)
    assert backend_problems(thin(), got, pv_rows, messages) == []

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_ledger``: the placement ledger file (read, validate, atomic write) and the host lock; and the ``ledger``
module's ``main()`` (compare-and-swap on the generation, check mode, diff), driven through
``ansible.module_utils.testing.patch_module_args``.

The module tests live here rather than in ``tests/unit/plugins/modules/test_ledger.py``: that basename is also
``tests/unit/plugins/plugin_utils/test_ledger.py``, and without ``__init__.py`` files pytest cannot collect two
test modules of the same basename in one session ("import file mismatch").
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ember.blockstore.plugins.module_utils import _ledger
from ansible_collections.ember.blockstore.plugins.module_utils._ledger import (
    LEDGER_FORMAT,
    LedgerError,
    LockTimeout,
    empty_ledger,
    host_lock,
    read_ledger,
    same_content,
    validate_ledger,
    write_ledger,
)
from ansible_collections.ember.blockstore.plugins.modules import ledger as ledger_module

COLLECTIONS = str(Path(__file__).resolve().parents[4] / ".collections")

VOL1 = {"host": "stor1", "pool_id": "stor1@lvm-thin", "status": "available"}
VOL2 = {"host": "stor2", "pool_id": "stor2@lvm-thick", "status": "creating"}


def ledger(generation, volumes, written_by="test", written_at="2026-01-01T00:00:00Z"):
    return {"format": LEDGER_FORMAT, "generation": generation, "volumes": volumes, "written_by": written_by,
            "written_at": written_at}


def temp_files(directory):
    return sorted(p.name for p in Path(directory).iterdir() if p.name.endswith(".tmp"))


# --- read_ledger / validate_ledger -------------------------------------------------------------------------------

def test_missing_file_is_an_empty_ledger_at_generation_0(tmp_path):
    got = read_ledger(str(tmp_path / "nowhere" / "ledger.json"))
    assert got["generation"] == 0
    assert got["volumes"] == {}
    assert got["format"] == LEDGER_FORMAT
    assert got == empty_ledger()
    assert not (tmp_path / "nowhere").exists()  # reading creates nothing


def test_read_round_trips_a_valid_file(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(ledger(7, {"vol1": VOL1, "vol2": VOL2}, written_by="run A")))
    got = read_ledger(str(path))
    assert got["generation"] == 7
    assert got["volumes"] == {"vol1": VOL1, "vol2": VOL2}
    assert got["written_by"] == "run A"


def test_read_drops_unknown_entry_keys(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(ledger(2, {"vol1": dict(VOL1, size=5)})))
    assert read_ledger(str(path))["volumes"] == {"vol1": VOL1}


def test_invalid_json_names_the_file(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text('{"generation": 3, "volumes": {')
    with pytest.raises(LedgerError) as excinfo:
        read_ledger(str(path))
    assert str(path) in str(excinfo.value)
    assert "JSON" in str(excinfo.value)


def test_empty_file_is_not_silently_an_empty_ledger(tmp_path):
    # A file truncated to nothing (a crash outside the atomic write) must not read as "no volumes anywhere".
    path = tmp_path / "ledger.json"
    path.write_text("")
    with pytest.raises(LedgerError, match=str(path)):
        read_ledger(str(path))


def test_unreadable_path_names_the_file(tmp_path):
    with pytest.raises(LedgerError) as excinfo:
        read_ledger(str(tmp_path))  # a directory: open() fails with EISDIR, not ENOENT
    assert str(tmp_path) in str(excinfo.value)
    assert "cannot read" in str(excinfo.value)


def test_wrong_format_names_the_file_and_the_format(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(dict(ledger(1, {}), format=LEDGER_FORMAT + 1)))
    with pytest.raises(LedgerError) as excinfo:
        read_ledger(str(path))
    assert str(path) in str(excinfo.value)
    assert "format" in str(excinfo.value)
    assert str(LEDGER_FORMAT + 1) in str(excinfo.value)


def test_not_an_object(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text("[1, 2]")
    with pytest.raises(LedgerError) as excinfo:
        read_ledger(str(path))
    assert str(path) in str(excinfo.value) and "list" in str(excinfo.value)


def test_bad_status_names_the_file_volume_and_field(tmp_path):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(ledger(4, {"vol1": VOL1, "db01": dict(VOL1, status="gone")})))
    with pytest.raises(LedgerError) as excinfo:
        read_ledger(str(path))
    message = str(excinfo.value)
    assert message.startswith(str(path) + ".volumes.db01.status")
    assert "'gone'" in message
    for status in ("creating", "available", "deleting"):
        assert status in message


@pytest.mark.parametrize("generation", [-1, "3", 1.5, True, None])
def test_bad_generation(generation):
    with pytest.raises(LedgerError) as excinfo:
        validate_ledger({"generation": generation, "volumes": {}}, "where")
    assert str(excinfo.value).startswith("where.generation: ")


@pytest.mark.parametrize("key, value", [("host", ""), ("host", None), ("pool_id", 3), ("pool_id", "")])
def test_bad_host_or_pool(key, value):
    with pytest.raises(LedgerError) as excinfo:
        validate_ledger({"generation": 1, "volumes": {"vol1": dict(VOL1, **{key: value})}}, "ledger")
    assert str(excinfo.value).startswith("ledger.volumes.vol1.%s: " % key)


def test_entry_not_an_object_and_volumes_not_a_mapping():
    with pytest.raises(LedgerError, match=r"^L\.volumes\.vol1: expected an object"):
        validate_ledger({"generation": 1, "volumes": {"vol1": "stor1"}}, "L")
    with pytest.raises(LedgerError, match=r"^L\.volumes: expected an object"):
        validate_ledger({"generation": 1, "volumes": ["vol1"]}, "L")


def test_validate_normalises_missing_keys():
    assert validate_ledger({}) == empty_ledger()
    got = validate_ledger({"generation": 5, "volumes": {"v": VOL1}})
    assert got == {"format": LEDGER_FORMAT, "generation": 5, "volumes": {"v": VOL1}, "written_by": None,
                   "written_at": None}


def test_same_content_ignores_generation_and_writer():
    assert same_content(ledger(1, {"v": VOL1}, written_by="a"), ledger(9, {"v": VOL1}, written_by="b"))
    assert not same_content(ledger(1, {"v": VOL1}), ledger(1, {"v": dict(VOL1, status="deleting")}))
    assert same_content(None, ledger(3, {}))
    assert not same_content(None, ledger(3, {"v": VOL1}))


# --- write_ledger ------------------------------------------------------------------------------------------------

def test_write_round_trips_with_mode_0644_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "ledger.json"
    data = ledger(8, {"vol1": VOL1, "vol2": VOL2}, written_by="run B")
    old_umask = os.umask(0o077)  # the mode does not depend on the umask
    try:
        write_ledger(data, str(path))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert json.loads(path.read_text()) == data
    assert read_ledger(str(path)) == data
    assert temp_files(path.parent) == []
    assert sorted(p.name for p in path.parent.iterdir()) == ["ledger.json"]


def test_write_renames_a_temp_file_of_the_same_directory(tmp_path, monkeypatch):
    path = tmp_path / "ledger.json"
    path.write_text(json.dumps(ledger(1, {})))
    renames, fsyncs = [], []
    real_rename, real_fsync = os.rename, os.fsync

    def rename(src, dst):
        renames.append((src, dst, Path(src).read_text()))
        return real_rename(src, dst)

    def fsync(fd):
        fsyncs.append(fd)
        return real_fsync(fd)

    monkeypatch.setattr(os, "rename", rename)
    monkeypatch.setattr(os, "fsync", fsync)
    data = ledger(2, {"vol1": VOL1})
    write_ledger(data, str(path))
    assert len(renames) == 1
    src, dst, content = renames[0]
    assert os.path.dirname(src) == str(tmp_path)  # same filesystem: rename is atomic
    assert src != dst and dst == str(path)
    assert json.loads(content) == data  # the temp file was complete before the rename
    assert len(fsyncs) >= 2  # the file, then the directory
    assert json.loads(path.read_text()) == data


def test_failed_rename_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ledger.json"
    old = ledger(5, {"vol1": VOL1})
    write_ledger(old, str(path))
    before = path.read_bytes()
    seen = []

    def rename(src, dst):
        seen.append(src)
        assert os.path.exists(src)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="No space left"):
        write_ledger(ledger(6, {"vol1": VOL1, "vol2": VOL2}), str(path))
    assert seen and not os.path.exists(seen[0])
    assert path.read_bytes() == before
    assert read_ledger(str(path)) == old
    assert temp_files(tmp_path) == []


def test_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(5, {"vol1": VOL1}), str(path))
    before = path.read_bytes()

    def fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="Input/output"):
        write_ledger(ledger(6, {}), str(path))
    assert path.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_write_replaces_a_larger_file_entirely(tmp_path):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(1, {"vol%d" % i: VOL1 for i in range(50)}), str(path))
    write_ledger(ledger(2, {"vol1": VOL1}), str(path))
    assert read_ledger(str(path))["volumes"] == {"vol1": VOL1}


# --- host_lock ---------------------------------------------------------------------------------------------------

HOLDER = textwrap.dedent("""
    import sys
    sys.path.insert(0, sys.argv[1])
    from ansible_collections.ember.blockstore.plugins.module_utils._ledger import host_lock
    with host_lock(sys.argv[3], timeout=5, path=sys.argv[2]):
        print("locked", flush=True)
        sys.stdin.readline()
""")


@pytest.fixture()
def holder(tmp_path):
    """Start another process that holds the lock at ``tmp_path/run/lock`` until its stdin is closed."""
    procs = []

    def start(what):
        path = str(tmp_path / "run" / "lock")
        proc = subprocess.Popen([sys.executable, "-c", HOLDER, COLLECTIONS, path, what], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "locked"
        return proc, path

    yield start
    for proc in procs:
        if proc.poll() is None:
            proc.stdin.close()
            proc.wait(timeout=10)


def release(proc):
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0


def test_lock_held_by_another_process_times_out_naming_the_holder(holder):
    proc, path = holder("volume module (3 items)")
    start = time.monotonic()
    with pytest.raises(LockTimeout) as excinfo:
        with host_lock("ledger module", timeout=0.3, path=path, poll=0.05):
            pytest.fail("the lock was taken while another process held it")
    waited = time.monotonic() - start
    message = str(excinfo.value)
    assert "volume module (3 items)" in message
    assert "pid %d" % proc.pid in message
    assert socket.gethostname() in message
    assert 0.3 <= waited < 5


def test_lock_is_free_again_when_the_holder_exits(holder):
    proc, path = holder("attachment module (1 items)")
    with pytest.raises(LockTimeout):
        with host_lock("x", timeout=0, path=path):
            pass
    release(proc)
    entered = []
    with host_lock("ledger module", timeout=0, path=path):
        entered.append(True)
        assert "ledger module, pid %d" % os.getpid() in Path(path).read_text()
    assert entered == [True]


def test_waiting_run_gets_the_lock_when_the_holder_finishes(holder):
    proc, path = holder("volume module (1 items)")
    import threading
    threading.Timer(0.3, proc.stdin.close).start()
    start = time.monotonic()
    with host_lock("ledger module", timeout=5, path=path, poll=0.05):
        assert time.monotonic() - start >= 0.25
    assert proc.wait(timeout=10) == 0


def test_lock_released_on_exit_of_the_block_even_after_an_error(tmp_path):
    path = str(tmp_path / "lock")
    with pytest.raises(RuntimeError):
        with host_lock("first", timeout=0, path=path):
            # A second open description in this same process conflicts like another process would.
            with pytest.raises(LockTimeout, match="first, pid %d" % os.getpid()):
                with host_lock("second", timeout=0, path=path):
                    pass
            raise RuntimeError("boom")
    with host_lock("third", timeout=0, path=path):
        assert Path(path).read_text().startswith("third, pid %d, since " % os.getpid())


def test_lock_file_and_directory_are_created(tmp_path):
    path = tmp_path / "run" / "ember-blockstore" / "lock"
    with host_lock("module", timeout=0, path=str(path)):
        assert path.exists()
    assert stat.S_IMODE(path.parent.stat().st_mode) & 0o700 == 0o700


# --- the ledger module: main() -----------------------------------------------------------------------------------

@pytest.fixture()
def locks(tmp_path, monkeypatch):
    """Point the module's host lock at a temp file (host_lock's path default is bound at import, so the module
    attribute is replaced); records each acquisition."""
    calls = []
    path = str(tmp_path / "run" / "lock")

    def lock(what, timeout=1800):
        calls.append((what, timeout))
        return _ledger.host_lock(what, timeout, path=path, poll=0.05)

    monkeypatch.setattr(ledger_module, "host_lock", lock)
    return calls, path


def run(capsys, args, check_mode=False):
    """main() with ``args``; returns (exit code, result dict)."""
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit) as excinfo:
            ledger_module.main()
    return excinfo.value.code, json.loads(capsys.readouterr().out)


def args(path, volumes, generation, expected, **more):
    return dict({"volumes": volumes, "generation": generation, "expected_generation": expected,
                 "path": str(path)}, **more)


def test_module_writes_when_content_differs_and_generation_matches(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(7, {"vol1": VOL1}), str(path))
    wanted = {"vol1": VOL1, "vol2": VOL2}
    code, result = run(capsys, args(path, wanted, 8, 7, written_by="ember.blockstore run R", lock_timeout=12))
    assert code == 0
    assert result["changed"] is True and result["written"] is True
    assert (result["previous_generation"], result["generation"]) == (7, 8)
    assert result["volumes"] == wanted
    on_disk = read_ledger(str(path))
    assert on_disk["generation"] == 8 and on_disk["volumes"] == wanted
    assert on_disk["written_by"] == "ember.blockstore run R"
    assert time.strptime(on_disk["written_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert result["diff"] == {"before": {"generation": 7, "volumes": {"vol1": VOL1}},
                              "after": {"generation": 8, "volumes": wanted}}
    assert locks[0] == [("ledger module", 12)]


def test_module_creates_the_first_ledger(tmp_path, capsys, locks):
    path = tmp_path / "var" / "lib" / "ember-blockstore" / "ledger.json"
    code, result = run(capsys, args(path, {"vol1": VOL1}, 1, 0))
    assert code == 0 and result["changed"] is True
    assert result["previous_generation"] == 0 and result["generation"] == 1
    assert read_ledger(str(path))["volumes"] == {"vol1": VOL1}
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_module_same_content_is_not_written_even_with_other_generations(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(9, {"vol1": VOL1}, written_by="earlier"), str(path))
    before = path.read_bytes()
    code, result = run(capsys, args(path, {"vol1": VOL1}, 4, 3))
    assert code == 0
    assert result["changed"] is False and result["written"] is False
    assert result["generation"] == result["previous_generation"] == 9
    assert result["volumes"] == {"vol1": VOL1}
    assert path.read_bytes() == before


def test_module_refuses_a_stale_plan(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(9, {"vol1": VOL1}, written_by="run B", written_at="2026-02-03T04:05:06Z"), str(path))
    before = path.read_bytes()
    code, result = run(capsys, args(path, {"vol1": VOL1, "vol2": VOL2}, 8, 7))
    assert code == 1 and result["failed"] is True
    assert result["msg"].startswith("stale plan")
    for word in ("9", "7", "run B", "2026-02-03T04:05:06Z", "Nothing was changed"):
        assert word in result["msg"]
    assert result["written"] is False
    assert result["generation"] == result["previous_generation"] == 9
    assert result["volumes"] == {"vol1": VOL1}
    assert path.read_bytes() == before


def test_module_final_write_keeps_a_newer_copy(tmp_path, capsys, locks):
    # on_conflict=keep (the final placements of a run whose changes are made): another run wrote generation 9
    # after this run read 7; its copy stays, nothing fails.
    path = tmp_path / "ledger.json"
    write_ledger(ledger(9, {"vol1": VOL1}, written_by="run B"), str(path))
    before = path.read_bytes()
    code, result = run(capsys, dict(args(path, {"vol1": VOL1, "vol2": VOL2}, 8, 7), on_conflict="keep"))
    assert code == 0 and not result.get("failed")
    assert result["changed"] is False and result["written"] is False
    assert result["generation"] == 9 and "run B" in result["msg"]
    assert path.read_bytes() == before
    # With the expected generation it writes as usual.
    code, result = run(capsys, dict(args(path, {"vol1": VOL1, "vol2": VOL2}, 10, 9), on_conflict="keep"))
    assert code == 0 and result["written"] is True and result["generation"] == 10


def test_module_stale_plan_also_when_the_node_is_behind(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(3, {}), str(path))
    code, result = run(capsys, args(path, {"vol1": VOL1}, 8, 7))
    assert code == 1 and "stale plan" in result["msg"]
    assert read_ledger(str(path))["generation"] == 3


def test_module_refuses_a_generation_not_above_the_node(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(7, {}), str(path))
    code, result = run(capsys, args(path, {"vol1": VOL1}, 7, 7))
    assert code == 1
    assert "generation" in result["msg"] and "7" in result["msg"]
    assert read_ledger(str(path))["volumes"] == {}


def test_module_check_mode_reports_the_change_without_writing(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(7, {"vol1": VOL1}), str(path))
    before = path.read_bytes()
    wanted = {"vol1": dict(VOL1, status="deleting")}
    code, result = run(capsys, args(path, wanted, 8, 7), check_mode=True)
    assert code == 0
    # Nothing written: the node keeps generation 7, which later tasks of the check run compare against.
    assert result["changed"] is True and result["written"] is False
    assert result["generation"] == 7 and result["previous_generation"] == 7
    assert result["diff"]["before"]["volumes"] == {"vol1": VOL1}
    assert result["diff"]["after"]["volumes"] == wanted
    assert path.read_bytes() == before
    assert temp_files(tmp_path) == []


def test_module_check_mode_stale_plan_still_fails(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(9, {}), str(path))
    code, result = run(capsys, args(path, {"vol1": VOL1}, 8, 7), check_mode=True)
    assert code == 1 and "stale plan" in result["msg"]


def test_module_rejects_bad_volumes_before_touching_the_file(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    code, result = run(capsys, args(path, {"vol1": dict(VOL1, status="lost")}, 1, 0))
    assert code == 1
    assert result["msg"].startswith("volumes.volumes.vol1.status")
    assert not path.exists()
    assert locks[0] == []  # validated before taking the lock


def test_module_fails_on_an_unreadable_ledger_and_keeps_it(tmp_path, capsys, locks):
    path = tmp_path / "ledger.json"
    path.write_text("not json")
    code, result = run(capsys, args(path, {"vol1": VOL1}, 1, 0))
    assert code == 1
    assert str(path) in result["msg"]
    assert path.read_text() == "not json"


def test_module_waits_for_the_lock_then_fails_naming_the_holder(tmp_path, capsys, locks, holder):
    proc, lock_path = holder("volume module (4 items)")
    assert lock_path == locks[1]
    path = tmp_path / "ledger.json"
    code, result = run(capsys, args(path, {"vol1": VOL1}, 1, 0, lock_timeout=0))
    assert code == 1
    assert "volume module (4 items)" in result["msg"]
    assert "pid %d" % proc.pid in result["msg"]
    assert not path.exists()
    release(proc)
    code, result = run(capsys, args(path, {"vol1": VOL1}, 1, 0, lock_timeout=0))
    assert code == 0 and result["written"] is True


def test_module_reports_a_failed_write(tmp_path, capsys, locks, monkeypatch):
    path = tmp_path / "ledger.json"
    write_ledger(ledger(1, {}), str(path))

    def rename(src, dst):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(os, "rename", rename)
    code, result = run(capsys, args(path, {"vol1": VOL1}, 2, 1))
    assert code == 1
    assert str(path) in result["msg"] and "Read-only" in result["msg"]
    assert read_ledger(str(path))["generation"] == 1
    assert temp_files(tmp_path) == []

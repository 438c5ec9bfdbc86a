# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's ``main()`` over the recorded command lines and outputs of ``cases/<module>.yml``
(``uthelper``, after community.general's UTHelper): the commands it runs, in order, and the result it returns."""

from __future__ import annotations

import pytest
from uthelper import CASES_DIR, all_cases, run_case

MODULES = ["attachment", "attachment_info", "backend_info", "backup", "backup_info", "connection", "freeze", "image",
           "initiator_info", "ledger", "migration", "snapshot", "snapshot_info", "volume", "volume_info"]


def test_every_module_has_cases():
    assert sorted(p.stem for p in CASES_DIR.glob("*.yml")) == MODULES


@pytest.mark.parametrize(("name", "case"), all_cases())
def test_case(monkeypatch, capsys, tmp_path, name, case):
    run_case(monkeypatch, capsys, tmp_path, name, case)


# --- the runner itself ---------------------------------------------------------------------------------------------

def _volume_case(case_id):
    return next(p.values[1] for p in all_cases() if p.id == "volume:" + case_id)


def test_a_command_not_expected_next_fails_the_case(monkeypatch, capsys, tmp_path):
    case = _volume_case("check_mode_create_runs_only_reads")
    case = dict(case, commands=[case["commands"][1], case["commands"][0]] + case["commands"][2:])
    with pytest.raises(pytest.fail.Exception, match="command 1 is .'vgs'"):
        run_case(monkeypatch, capsys, tmp_path, "volume", case)


def test_a_command_beyond_the_expected_ones_fails_the_case(monkeypatch, capsys, tmp_path):
    case = _volume_case("check_mode_create_runs_only_reads")
    case = dict(case, commands=case["commands"][:2])
    with pytest.raises(pytest.fail.Exception, match="unexpected command"):
        run_case(monkeypatch, capsys, tmp_path, "volume", case)


def test_expected_commands_left_unrun_fail_the_case(monkeypatch, capsys, tmp_path):
    case = _volume_case("check_mode_create_runs_only_reads")
    case = dict(case, commands=case["commands"] + [{"cmd": ["udevadm", "settle"], "rc": 0, "out": "", "err": ""}])
    with pytest.raises(AssertionError, match="expected commands that did not run"):
        run_case(monkeypatch, capsys, tmp_path, "volume", case)

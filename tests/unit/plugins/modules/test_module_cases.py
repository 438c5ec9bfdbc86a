# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every module's ``main()`` over the recorded command lines and outputs of ``cases/<module>.yml``
(``uthelper``, after community.general's UTHelper): the commands it runs, in order, and the result it returns."""

from __future__ import annotations

import pytest
from uthelper import CASES_DIR, all_cases, run_case

MODULES = ["attachment", "backend_facts", "connection", "initiator_info", "ledger", "volume"]


def test_every_module_has_cases():
    assert sorted(p.stem for p in CASES_DIR.glob("*.yml")) == MODULES


@pytest.mark.parametrize(("name", "case"), all_cases())
def test_case(monkeypatch, capsys, tmp_path, name, case):
    run_case(monkeypatch, capsys, tmp_path, name, case)

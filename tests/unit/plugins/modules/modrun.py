# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's ``main()`` in-process, as Ansible would, with ``run_command`` answered from captured outputs.

The module's real ``exit_json``/``fail_json`` run (so Ansible's own masking of ``no_log`` values applies); the JSON
they print is returned with every command the module ran. ``answer(args)`` may be replaced per test.
"""

from __future__ import annotations

import functools
import json
import tempfile
from pathlib import Path

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common import arg_spec
from ansible.module_utils.testing import patch_module_args
from ansible_collections.ember.blockstore.plugins.module_utils import _ledger

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"


def fixture(name):
    return (FIXTURES / name).read_text()


def lab_answer(args):
    """Read-only answers of a converged storage node / consumer (captured in the lab)."""
    if args[0] == "vgs":
        return 0, fixture("lvm/vgs_converged_acl.json"), ""
    if args[0] == "lvs":
        return 0, fixture("lvm/lvs_converged_acl.json"), ""
    if args[0] == "pvs":
        return 0, '{"report": [{"pv": []}]}', ""
    if args[0] == "tgtadm" and args[-2:] == ["--op", "show"] and "target" in args:
        return 0, fixture("tgt/show_two_targets_acl_id.txt"), ""
    if args[0] == "tgtadm" and "sys" in args:
        return 0, "System:\n    State: ready\n", ""
    if args[0] == "iscsiadm" and args[1:3] in (["-m", "session"], ["-m", "node"]) and len(args) == 3:
        return 21, "", "iscsiadm: No active sessions.\n"
    return 0, "", ""


def is_read_only(args):
    """Whether a command only reads state (what a module may run before it refuses a bad input)."""
    if args[0] in ("vgs", "lvs", "pvs"):
        return True
    if args[0] == "tgtadm":
        return "show" in args
    if args[0] == "iscsiadm":
        return args[1:3] in (["-m", "session"], ["-m", "node"]) and len(args) == 3
    return False


class ModuleRun:
    def __init__(self, result, calls, warnings, deprecations=()):
        self.result = result
        self.calls = calls
        # module.warn() texts: in a test process that imported controller code, Ansible shows warnings on the
        # display instead of adding them to the result, so they are recorded here.
        self.warnings = warnings
        # The deprecations of the argument spec (deprecated options and aliases), recorded for the same reason:
        # [{msg, version, collection_name}].
        self.deprecations = list(deprecations)

    @property
    def failed(self):
        return bool(self.result.get("failed"))

    @property
    def msg(self):
        return self.result.get("msg", "")

    def changes(self):
        return [c for c in self.calls if not is_read_only(c)]


def run_module(monkeypatch, capsys, module, args, answer=lab_answer, check_mode=False):
    calls = []

    def run_command(self, cmd, check_rc=False, environ_update=None, data=None, **kwargs):
        cmd = [str(a) for a in cmd]
        calls.append(cmd)
        # An answer that checks what a command reads on stdin (the lvm shell's script) declares it.
        return answer(cmd, data=data) if getattr(answer, "takes_stdin", False) else answer(cmd)

    warnings = []
    # The host lock of modules that change a host goes to a temporary directory, not this machine's /run.
    lock = str(Path(tempfile.mkdtemp(prefix="ember-lock-")) / "lock")
    host_lock = functools.partial(_ledger.host_lock, path=lock)
    monkeypatch.setattr(_ledger, "host_lock", host_lock)
    if hasattr(module, "host_lock"):  # a module that imported it by name (ledger)
        monkeypatch.setattr(module, "host_lock", host_lock)
    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning, **kwargs: warnings.append(
        basic.remove_values(warning, self.no_log_values)))
    deprecations = []

    def deprecate(msg, version=None, date=None, collection_name=None, **kwargs):
        # ansible-core 2.19 passes a deprecator (its resolved_name is the collection) instead of collection_name.
        collection_name = collection_name or getattr(kwargs.get("deprecator"), "resolved_name", None)
        deprecations.append({"msg": msg, "version": version, "collection_name": collection_name})

    monkeypatch.setattr(arg_spec, "deprecate", deprecate)
    module_args = dict(args)
    if check_mode:
        module_args["_ansible_check_mode"] = True
    with patch_module_args(module_args), pytest.raises(SystemExit):
        module.main()
    out = capsys.readouterr().out
    return ModuleRun(json.loads(out[out.index("{"):]), calls, warnings, deprecations)

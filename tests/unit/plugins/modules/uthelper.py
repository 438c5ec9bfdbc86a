# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Module tests from YAML case files, after community.general's ``tests/unit/plugins/modules/helper.py``
(UTHelper): each case runs a module's real ``main()`` (through :func:`modrun.run_module`) and answers every
command from a list of expected command lines, in order, with their recorded rc/stdout/stderr.

A case file ``cases/<module>.yml``::

    commands:                 # named commands, used by name in the cases' lists
      vgs: {cmd: [vgs, ...], out_file: lvm/vgs_converged_acl.json}
    cases:
      - id: no_op
        args: {...}           # module arguments; "{tmp}" in a string is the case's temporary host root
        check_mode: false
        files: {conf.d/ember-volume-db01-data.conf: {fixture: tgt/conf_db01_acl.conf}}   # under {tmp}
                              # ({truncate: <bytes>}: a sparse file of that size)
        devices: {/dev/disk/by-path/...: /dev/sdb}      # consumer: by-path links that exist before the run
        devices_after: {...}  # ... and after a login or rescan (default: devices)
        in_use: {/dev/sdb: [/mnt/db]}                   # consumer: mount points and holders of a device
        device_numbers: {/dev/sdb: "8:16"}              # consumer: MAJ:MIN of a device (for io.max)
        missing_bins: [iscsiadm]                        # get_bin_path finds every other tool in /usr/bin
        mountinfo: "..."      # NFS: the mount table (/proc/self/mountinfo) the storage node has before the run
        statvfs: {f_frsize: 4096, f_blocks: 2621440, f_bavail: 1310720}   # NFS: what statvfs says of any share
        store_backups:        # backups made in {tmp}/store before the run (64 KiB chunks), before ``files``
          - {volume: a, name: nightly, data: "text of the volume", created_at: "2026-11-20T01:00:00Z"}
        commands:             # expected in this order; a name, or {cmd, rc, out | out_file, err | err_file, stdin}
          - vgs
          - {cmd: [lvcreate, ...], rc: 0}
          - {cmd: [truncate, --size, "1048576", "{tmp}/mnt/<hash>/.volume-x.tmp"], run: true}   # really run
          - {cmd: [timeout, ..., mount, ...], mountinfo: "..."}   # the mount table after this command
        expect:
          failed: false       # default false
          changed: false
          msg: "a substring of msg"
          result: {volumes: [{action: none}]}   # deep subset: dicts by key, lists item by item (same length)
          files: {conf.d/x.conf: null}          # after the run: null = absent, a string = a substring of it
          deprecations: [{msg: ..., version: 1.0.0}]   # of the argument spec (deprecated options, aliases)

``out_file``/``err_file`` name a capture under ``tests/unit/fixtures/`` (``tgt/show.txt:1-43`` takes those lines).
The run fails when the module runs a command that is not the next expected one, or leaves expected ones unrun.
``{tmp}`` in a command line is the case's temporary host root. A command with ``run: true`` really runs after it
matched (the NFS driver's truncate, fallocate, dd and cp on a share that is a directory under ``{tmp}``), and its
real rc and output are the module's; ``mountinfo`` replaces the mount table once the command ran (a mount).

Everything the modules read or write on the host besides commands is redirected under ``{tmp}``: tgt target files
(``conf.d/``), the open-iscsi node database (``nodes/``), tgt's targets.conf and systemd drop-in, LVM's metadata
backups (``lvm-backup/``), iscsid's pid file, the host lock, the consumer's cgroup v2 tree (``cgroup/``, e.g.
``cgroup/system.slice/io.max``; set up with ``files``) and the LV devices the backup module reads and writes
(``dev/<vg>/<lv>``, files set up with ``files``) and the storage node's ``/sys/class/block`` (``sys-class-block/``: the
holders of an LV that a manage request names).
"""

from __future__ import annotations

import functools
import os
import subprocess
from collections import namedtuple
from pathlib import Path

import pytest
import yaml
from ansible.module_utils import basic
from ansible_collections.ember.blockstore.plugins.module_utils import (
    _attachment,
    _backend_info,
    _backup,
    _connection,
    _freeze,
    _migration,
    _naming,
    _qos,
    _volume,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import iscsiadm, nfs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.backup_store import ChunkStore
from modrun import FIXTURES, run_module

CASES_DIR = Path(__file__).resolve().parent / "cases"
StatVfs = namedtuple("StatVfs", "f_frsize f_blocks f_bavail")
MODULE_PACKAGE = "ansible_collections.ember.blockstore.plugins.modules"


def fixture_text(ref):
    """A capture under tests/unit/fixtures; ``path:first-last`` takes those lines (1-based, inclusive)."""
    path, _sep, lines = ref.partition(":")
    text = (FIXTURES / path).read_text()
    if not lines:
        return text
    first, last = (int(n) for n in lines.split("-"))
    return "".join(text.splitlines(keepends=True)[first - 1:last])


def _command(entry, named):
    spec = named[entry] if isinstance(entry, str) else entry
    unknown = set(spec) - {"cmd", "rc", "out", "out_file", "err", "err_file", "stdin", "run", "mountinfo"}
    assert not unknown, "unknown command keys %s" % sorted(unknown)
    return {"cmd": [str(a) for a in spec["cmd"]], "rc": spec.get("rc", 0), "stdin": spec.get("stdin"),
            "out": fixture_text(spec["out_file"]) if "out_file" in spec else spec.get("out", ""),
            "err": fixture_text(spec["err_file"]) if "err_file" in spec else spec.get("err", ""),
            "run": bool(spec.get("run")), "mountinfo": spec.get("mountinfo")}


def load_cases(name):
    """``pytest.param(module name, case)`` for every case of ``cases/<name>.yml``."""
    doc = yaml.safe_load((CASES_DIR / ("%s.yml" % name)).read_text())
    named = doc.get("commands") or {}
    params = []
    for case in doc["cases"]:
        unknown = set(case) - {"id", "args", "check_mode", "files", "devices", "devices_after", "in_use",
                               "device_numbers", "missing_bins", "store_backups", "commands", "expect",
                               "mountinfo", "statvfs"}
        assert not unknown, "%s: unknown case keys %s" % (case.get("id"), sorted(unknown))
        case = dict(case, commands=[_command(entry, named) for entry in case.get("commands") or []])
        params.append(pytest.param(name, case, id="%s:%s" % (name, case["id"])))
    return params


def all_cases():
    return [param for path in sorted(CASES_DIR.glob("*.yml")) for param in load_cases(path.stem)]


class ExpectedCommands:
    """``run_command`` answered from the expected commands, in order."""

    takes_stdin = True

    def __init__(self, commands, mountinfo=None):
        self.commands = commands
        self.ran = 0
        self.mountinfo = mountinfo

    def __call__(self, args, data=None):
        if self.ran >= len(self.commands):
            pytest.fail("unexpected command %s: all %d expected commands ran" % (args, len(self.commands)))
        expected = self.commands[self.ran]
        if args != expected["cmd"]:
            pytest.fail("command %d is %s, expected %s" % (self.ran + 1, args, expected["cmd"]))
        if expected["stdin"] is not None and data != expected["stdin"]:
            pytest.fail("command %d (%s) read %r on stdin, expected %r"
                        % (self.ran + 1, args[0], data, expected["stdin"]))
        self.ran += 1
        answer = expected["rc"], expected["out"], expected["err"]
        if expected["run"]:
            proc = subprocess.run(args, capture_output=True, text=True, input=data, check=False)
            assert proc.returncode == expected["rc"], "command %d (%s) exited %d, expected %d: %s" % (
                self.ran, args[0], proc.returncode, expected["rc"], proc.stderr)
            answer = proc.returncode, proc.stdout, proc.stderr
        if expected["mountinfo"] is not None:
            Path(self.mountinfo).write_text(expected["mountinfo"])
        return answer

    def check_all_ran(self):
        left = [c["cmd"] for c in self.commands[self.ran:]]
        assert not left, "expected commands that did not run: %s" % left


def _substitute(value, tmp):
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp))
    if isinstance(value, list):
        return [_substitute(v, tmp) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, tmp) for k, v in value.items()}
    return value


def redirect_host(monkeypatch, root, case, module):
    """Point every host path the modules use under ``root`` and answer the consumer's device lookups from
    the case."""
    conf_dir = root / "conf.d"
    conf_dir.mkdir(exist_ok=True)
    conf_path = functools.partial(_naming.tgt_conf_path, conf_dir=str(conf_dir))
    for owner in (_attachment, _volume, _backend_info):
        monkeypatch.setattr(owner, "tgt_conf_path", conf_path)
    if hasattr(module, "tgt_conf_path"):  # the migration module removes a forced migration's export
        monkeypatch.setattr(module, "tgt_conf_path", conf_path)
    monkeypatch.setattr(_backend_info, "TGT_CONF_DIR", str(conf_dir))
    monkeypatch.setattr(_backend_info, "TARGETS_CONF", str(root / "targets.conf"))
    monkeypatch.setattr(_backend_info, "TGT_DROPIN", str(root / "tgt-dropin.conf"))
    monkeypatch.setattr(_backend_info, "LVM_BACKUP_DIR", str(root / "lvm-backup"))
    monkeypatch.setattr(_backend_info, "SYS_CLASS_BLOCK", str(root / "sys-class-block"))
    monkeypatch.setattr(iscsiadm, "NODE_DIRS", (str(root / "nodes"),))
    monkeypatch.setattr(_backup, "device_path", lambda vg, lv: str(root / "dev" / vg / lv))
    monkeypatch.setattr(_migration, "device_path", lambda vg, lv: str(root / "dev" / vg / lv))
    if hasattr(module, "PID_FILES"):
        monkeypatch.setattr(module, "PID_FILES", (str(root / "iscsid.pid"),))
    devices = case.get("devices") or {}
    after = case.get("devices_after") or devices
    in_use = case.get("in_use") or {}
    monkeypatch.setattr(_connection, "real_device", devices.get)
    monkeypatch.setattr(_connection, "device_in_use",
                        lambda real, ignore_holders=(), ignore_openers=(): list(in_use.get(real, [])))
    monkeypatch.setattr(iscsiadm.Iscsiadm, "wait_for_device", lambda self, path, timeout: after.get(path))
    monkeypatch.setattr(_qos, "CGROUP_ROOT", str(root / "cgroup"))
    # freeze: its state files, and the token of a new freeze (named in the watchdog's command line)
    monkeypatch.setattr(_freeze, "STATE_DIR", str(root / "freeze"))
    monkeypatch.setattr(_freeze, "new_token", lambda: "t0")
    # NFS: the mount table and statvfs of the shares (mount points under {tmp}, from the backends'
    # mount_point_base).
    (root / "mountinfo").write_text(case.get("mountinfo") or "")
    monkeypatch.setattr(nfs, "MOUNTINFO", str(root / "mountinfo"))
    if case.get("statvfs"):
        vfs = StatVfs(**case["statvfs"])
        monkeypatch.setattr(nfs, "statvfs", lambda path: vfs)
    monkeypatch.setattr(_qos, "SYS_DEV_BLOCK", str(root / "sys-dev-block"))
    numbers = case.get("device_numbers") or {}

    def device_number(path):
        if path not in numbers:
            raise FileNotFoundError(2, "No such file or directory", path)
        return numbers[path]
    monkeypatch.setattr(_qos, "device_number", device_number)
    missing = set(case.get("missing_bins") or [])
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path",
                        lambda self, name, *args, **kwargs: None if name in missing else "/usr/bin/%s" % name)
    monkeypatch.setattr("time.sleep", lambda seconds: None)


def assert_subset(expected, actual, where="result"):
    if isinstance(expected, dict):
        assert isinstance(actual, dict), "%s: %r is not a dict" % (where, actual)
        for key, value in expected.items():
            assert key in actual, "%s: no key %r in %r" % (where, key, sorted(actual))
            assert_subset(value, actual[key], "%s.%s" % (where, key))
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), \
            "%s: %r does not have %d items" % (where, actual, len(expected))
        for index, (one, other) in enumerate(zip(expected, actual)):
            assert_subset(one, other, "%s[%d]" % (where, index))
    else:
        assert actual == expected, "%s: %r != %r" % (where, actual, expected)


def make_backups(root, backups):
    """The case's ``store_backups`` in ``{tmp}/store``, each from a file holding its ``data``."""
    for number, spec in enumerate(backups):
        store = ChunkStore(str(root / "store"))
        store.create()
        source = root / ("backup-source-%d" % number)
        source.write_text(spec["data"])
        store.backup(str(source), spec["volume"], spec["name"], chunk_size=64 * 1024,
                     created_at=spec.get("created_at"), source=spec.get("source"))


def run_case(monkeypatch, capsys, tmp_path, name, case):
    module = __import__("%s.%s" % (MODULE_PACKAGE, name), fromlist=["main"])
    case = dict(case, mountinfo=_substitute(case.get("mountinfo"), tmp_path),
                commands=_substitute(case["commands"], tmp_path))
    redirect_host(monkeypatch, tmp_path, case, module)
    make_backups(tmp_path, case.get("store_backups") or [])
    for rel, content in (case.get("files") or {}).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, dict) and "truncate" in content:  # a sparse file of that size (an NFS volume)
            path.write_bytes(b"")
            os.truncate(path, content["truncate"])
            continue
        path.write_text(fixture_text(content["fixture"]) if isinstance(content, dict) else content)
    expected = ExpectedCommands(case["commands"], tmp_path / "mountinfo")
    run = run_module(monkeypatch, capsys, module, _substitute(case.get("args") or {}, tmp_path), answer=expected,
                     check_mode=bool(case.get("check_mode")))
    expect = case.get("expect") or {}
    assert run.failed == bool(expect.get("failed", False)), run.result
    expected.check_all_ran()
    if "changed" in expect:
        assert run.result.get("changed") == expect["changed"], run.result
    if "msg" in expect:
        assert expect["msg"] in run.msg, run.msg
    assert_subset(_substitute(expect.get("result") or {}, tmp_path), run.result)
    assert_subset(expect.get("deprecations") or [], run.deprecations, "deprecations")
    for rel, fragment in (expect.get("files") or {}).items():
        path = tmp_path / rel
        if fragment is None:
            assert not path.exists(), "%s is still there" % rel
        else:
            assert fragment in path.read_text(), "%s does not contain %r" % (rel, fragment)
    return run

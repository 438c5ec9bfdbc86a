# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration module's copy and verify steps over real files (the LUN and the LVs are files under the case's
root; O_DIRECT is used where the file system takes it), the commands around them replayed as in
cases/migration.yml, and the stream copy itself."""

from __future__ import annotations

import hashlib
import os

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils import _migration
from modrun import FIXTURES
from uthelper import _command, run_case

LVS = {"cmd": ["lvs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
               "lv_name,vg_name,lv_size,lv_attr,lv_tags,pool_lv,origin,data_percent,metadata_percent,lv_path,segtype"]}
VGS = {"cmd": ["vgs", "--reportformat", "json", "--units", "b", "--nosuffix", "-o",
               "vg_name,vg_size,vg_free,vg_extent_size,vg_tags,pv_count,vg_missing_pv_count,vg_attr"],
       "out_file": "lvm/vgs_converged_acl.json"}
IQN = "iqn.2026-11.io.ember.blockstore:migrate-scratch01"
PORTAL = "198.18.0.11:3260"
SECRET = "Xq7wLm2Pz9Rt4Kd8Vn3Bc6Hy1Js5Gf0A"
BY_PATH = "/dev/disk/by-path/ip-%s-iscsi-%s-lun-1" % (PORTAL, IQN)
MiB = 2**20


def data(size):
    """Bytes with a pattern, zero blocks and a partial block: what the copy must keep exactly."""
    block = bytes(range(256)) * (_migration.BLOCK // 256)
    out = bytearray()
    while len(out) < size:
        out += block if (len(out) // _migration.BLOCK) % 2 == 0 else bytes(_migration.BLOCK)
    return bytes(out[:size])


def node(*args):
    return ["iscsiadm", "-m", "node", "-T", IQN, "-p", PORTAL, *args]


def copy_case(tmp_path, payload, lvs_file):
    lun = tmp_path / "lun"
    lun.write_bytes(payload)
    dest = tmp_path / "dev" / "ember-thin" / "migrate-scratch01"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"")
    record = "nodes/%s/198.18.0.11,3260" % IQN
    commands = [VGS, dict(LVS, out_file=lvs_file),
                {"cmd": node("--logout"), "rc": 21}, {"cmd": node("-o", "delete"), "rc": 21},
                {"cmd": node("-o", "new")},
                {"cmd": node("-o", "update", "-n", "node.startup", "-v", "automatic", "-n",
                             "node.session.auth.authmethod", "-v", "CHAP", "-n", "node.session.auth.username", "-v",
                             "migrate-scratch01", "-n", "node.startup", "-v", "manual")},
                {"cmd": node("-o", "show"), "out": "node.session.auth.password = ********\n"},
                {"cmd": node("--login")},
                {"cmd": node("--logout")}, {"cmd": node("-o", "delete")},
                {"cmd": ["lvchange", "--addtag",
                         "ember.migration_sha256=" + hashlib.sha256(payload).hexdigest(),
                         "ember-thin/migrate-scratch01"]}]
    case = {"id": "copy", "args": {"step": "copy", "migrations": [{
        "name": "scratch01", "vg": "ember-thin", "size_bytes": len(payload), "portal": PORTAL, "target_iqn": IQN,
        "chap_username": "migrate-scratch01", "chap_password": SECRET}]},
        "files": {record: "node.name = %s\nnode.session.auth.password = \n# END RECORD\n" % IQN},
        "devices_after": {BY_PATH: str(lun)},
        "commands": [_command(c, {}) for c in commands]}
    return case, dest


def test_copy_writes_the_lun_onto_the_destination_and_records_its_digest(monkeypatch, capsys, tmp_path):
    payload = data(3 * _migration.BLOCK + 4096)
    case, dest = copy_case(tmp_path, payload, "migration/lvs_dest_target.json")
    blocks = [payload[i:i + _migration.BLOCK] for i in range(0, len(payload), _migration.BLOCK)]
    zeros = sum(len(b) for b in blocks if not b.strip(b"\0"))
    assert zeros  # the payload has zero blocks: a thin destination does not get them written
    case["expect"] = {"changed": True, "result": {"migrations": [{
        "done": "copied", "sha256": hashlib.sha256(payload).hexdigest(),
        "skipped_zero_bytes": zeros, "written_bytes": len(payload) - zeros}]}}
    run_case(monkeypatch, capsys, tmp_path, "migration", case)
    written = dest.read_bytes()
    assert written[:_migration.BLOCK] == payload[:_migration.BLOCK]
    assert written[2 * _migration.BLOCK:3 * _migration.BLOCK] == payload[2 * _migration.BLOCK:3 * _migration.BLOCK]
    # the secret reached the node record file, never a command line
    record = (tmp_path / "nodes" / IQN / "198.18.0.11,3260").read_text()
    assert SECRET in record
    assert not any(SECRET in " ".join(c["cmd"]) for c in case["commands"])


def test_verify_compares_the_source_with_the_copy(monkeypatch, capsys, tmp_path):
    payload = data(2 * MiB)
    src = tmp_path / "dev" / "ember-thick" / "volume-scratch01"
    src.parent.mkdir(parents=True)
    src.write_bytes(payload)
    item = {"name": "scratch01", "vg": "ember-thick", "size_bytes": len(payload)}
    commands = [_command(c, {}) for c in (VGS, dict(LVS, out_file="migration/lvs_src.json"))]
    good = {"id": "verify", "args": {"step": "verify", "migrations": [dict(item, sha256=hashlib.sha256(payload)
                                                                           .hexdigest())]},
            "commands": commands,
            "expect": {"changed": False, "result": {"migrations": [{"done": "verified"}]}}}
    run_case(monkeypatch, capsys, tmp_path, "migration", good)
    other = hashlib.sha256(payload[:-1] + b"x").hexdigest()
    bad = dict(good, args={"step": "verify", "migrations": [dict(item, sha256=other)]},
               expect={"failed": True, "changed": False, "msg": "the copy differs from the source"})
    run_case(monkeypatch, capsys, tmp_path, "migration", bad)
    assert src.read_bytes() == payload  # the source is never written


@pytest.mark.parametrize("skip_zero", [False, True])
def test_stream_copy_keeps_every_byte(tmp_path, skip_zero):
    payload = data(2 * _migration.BLOCK + 512)
    (tmp_path / "src").write_bytes(payload)
    # a destination with old data: a thick one must get every byte, zeros too
    (tmp_path / "dst").write_bytes(b"\xff" * len(payload))
    result = _migration.stream_copy(str(tmp_path / "src"), str(tmp_path / "dst"), len(payload), skip_zero=skip_zero)
    assert result["sha256"] == hashlib.sha256(payload).hexdigest()
    got = (tmp_path / "dst").read_bytes()
    if skip_zero:
        assert got[_migration.BLOCK:2 * _migration.BLOCK] == b"\xff" * _migration.BLOCK
        assert result["skipped_zero_bytes"] == _migration.BLOCK
    else:
        assert got == payload and result["written_bytes"] == len(payload)
    assert _migration.digest(str(tmp_path / "src"), len(payload)) == result["sha256"]


def test_short_source_fails(tmp_path):
    (tmp_path / "src").write_bytes(b"a" * 4096)
    (tmp_path / "dst").write_bytes(b"")
    with pytest.raises(_migration.MigrationError, match="short read"):
        _migration.stream_copy(str(tmp_path / "src"), str(tmp_path / "dst"), 8192)


def test_fixtures_exist():
    assert os.path.isfile(FIXTURES / "migration" / "lvs_dest_target.json")

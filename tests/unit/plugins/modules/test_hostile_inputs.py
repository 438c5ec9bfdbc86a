# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 7: every field that reaches a command line or a configuration file refuses hostile values (newline,
``;``, ``$()``, backticks, a leading ``-``, NUL, over-long, non-ASCII) before any change, with a message that names
the field. Each module's real ``main()`` runs (``modrun.run_module``) over the lab's captured state; the only
commands it may have run when it fails are reads (``vgs``, ``lvs``, ``tgtadm ... show``, ``iscsiadm -m session``).
"""

from __future__ import annotations

import copy

import pytest
from ansible_collections.ember.blockstore.plugins.modules import attachment, backend_info, connection, snapshot, volume
from modrun import run_module

CLIENT1 = "iqn.1993-08.org.debian:01:ed703fed4dfd"

HOSTILE = {
    "newline": "db\ninitiator-address ALL",
    "semicolon": "db;touch /tmp/x",
    "subst": "$(touch /tmp/x)",
    "backtick": "`touch /tmp/x`",
    "dash": "-rf",
    "nul": "db\x00x",
    "long": "a" * 5000,
    "non_ascii": "dé",
}

VALID = {
    volume: {"volumes": [{"name": "web02", "size": "256MiB", "vg": "ember-thick", "volume_type": "bulk",
                          "backend": "lvm-thick", "volume_clear_size": "1MiB"}],
             "target_prefix": "iqn.2026-11.io.ember.blockstore:"},
    attachment: {"attachments": [{"volume": "archive01", "vg": "ember-thin", "initiators": [CLIENT1],
                                  "initiator_addresses": ["198.18.0.21"], "chap_username": "ember_archive01",
                                  "chap_password": "Secret_for_archive01"}],
                 "portal": "198.18.0.11", "target_prefix": "iqn.2026-11.io.ember.blockstore:"},
    connection: {"connections": [{"target_iqn": "iqn.2026-11.io.ember.blockstore:volume-db01-data",
                                  "target_portal": "198.18.0.11:3260", "auth_username": "ember_db01_data_c6f08c3f",
                                  "auth_password": "Secret_for_db01data", "volume": "db01-data"}]},
    snapshot: {"snapshots": [{"name": "nightly", "volume": "scratch01", "vg": "ember-thick", "cow_size": "64MiB",
                              "description": "before the upgrade"}],
               "target_prefix": "iqn.2026-11.io.ember.blockstore:"},
    backend_info: {"backends": [{"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", "pvs": ["/dev/vdc"],
                                 "thin_pool": "thinpool", "thin_pool_size": "95%VG", "availability_zone": "az1",
                                 "volume_backend_name": "lvm-thin", "volume_clear_size": "0"}],
                   "host": "stor1", "target_prefix": "iqn.2026-11.io.ember.blockstore:"},
}

# (module, path to the value in the module's arguments, the field the message must name)
FIELDS = [
    (volume, ("volumes", 0, "name"), "volumes[0].name"),
    (volume, ("volumes", 0, "size"), "volumes[0].size"),
    (volume, ("volumes", 0, "vg"), "volumes[0].vg"),
    (volume, ("volumes", 0, "thin_pool"), "volumes[0].thin_pool"),
    (volume, ("volumes", 0, "volume_type"), "volumes[0].volume_type"),
    (volume, ("volumes", 0, "backend"), "volumes[0].backend"),
    (volume, ("volumes", 0, "volume_clear_size"), "volumes[0].volume_clear_size"),
    (volume, ("target_prefix",), "target_prefix"),
    (attachment, ("attachments", 0, "volume"), "attachments[0].volume"),
    (attachment, ("attachments", 0, "vg"), "attachments[0].vg"),
    (attachment, ("attachments", 0, "initiators", 0), "attachments[0].initiators[0]"),
    (attachment, ("attachments", 0, "initiator_addresses", 0), "attachments[0].initiator_addresses[0]"),
    (attachment, ("attachments", 0, "chap_username"), "attachments[0].chap_username"),
    (attachment, ("attachments", 0, "chap_password"), "attachments[0].chap_password"),
    (attachment, ("attachments", 0, "target_chap_username"), "attachments[0].target_chap_username"),
    (attachment, ("attachments", 0, "target_chap_password"), "attachments[0].target_chap_password"),
    (attachment, ("portal",), "portal"),
    (attachment, ("target_prefix",), "target_prefix"),
    (connection, ("connections", 0, "target_iqn"), "connections[0].target_iqn"),
    (connection, ("connections", 0, "target_portal"), "connections[0].target_portal"),
    (connection, ("connections", 0, "auth_username"), "connections[0].auth_username"),
    (connection, ("connections", 0, "auth_password"), "connections[0].auth_password"),
    (connection, ("connections", 0, "target_auth_username"), "connections[0].target_auth_username"),
    (connection, ("connections", 0, "target_auth_password"), "connections[0].target_auth_password"),
    (connection, ("connections", 0, "volume"), "connections[0].volume"),
    (snapshot, ("snapshots", 0, "name"), "snapshots[0].name"),
    (snapshot, ("snapshots", 0, "volume"), "snapshots[0].volume"),
    (snapshot, ("snapshots", 0, "vg"), "snapshots[0].vg"),
    (snapshot, ("snapshots", 0, "cow_size"), "snapshots[0].cow_size"),
    (snapshot, ("target_prefix",), "target_prefix"),
    (backend_info, ("backends", 0, "name"), "backends[0].name"),
    (backend_info, ("backends", 0, "vg"), "backends[0].vg"),
    (backend_info, ("backends", 0, "pvs", 0), "backends[0].pvs[0]"),
    (backend_info, ("backends", 0, "thin_pool"), "backends[0].thin_pool"),
    (backend_info, ("backends", 0, "thin_pool_size"), "backends[0].thin_pool_size"),
    (backend_info, ("backends", 0, "volume_clear_size"), "backends[0].volume_clear_size"),
    (backend_info, ("target_prefix",), "target_prefix"),
]
# Labels that reach no command line and no file (the scheduler's facts, pool ids): control characters, non-ASCII
# and over-long values are refused; shell characters are harmless there.
LABELS = [
    (backend_info, ("backends", 0, "availability_zone"), "backends[0].availability_zone"),
    (backend_info, ("backends", 0, "volume_backend_name"), "backends[0].volume_backend_name"),
    (backend_info, ("host",), "host"),
    # Kept in an LV tag with every character a tag cannot hold escaped as #XX.
    (snapshot, ("snapshots", 0, "description"), "snapshots[0].description"),
]


def with_value(module, path, value):
    args = copy.deepcopy(VALID[module])
    node = args
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return args


@pytest.mark.parametrize("module", list(VALID), ids=lambda m: m.__name__.rsplit(".", 1)[-1])
def test_the_valid_arguments_pass(monkeypatch, capsys, module):
    # The baseline each hostile case changes one field of: it passes (in check mode, nothing is applied).
    run = run_module(monkeypatch, capsys, module, VALID[module], check_mode=True)
    assert not run.failed, run.msg
    assert run.changes() == []


@pytest.mark.parametrize("kind", list(HOSTILE))
@pytest.mark.parametrize(("module", "path", "field"), FIELDS,
                         ids=["%s:%s" % (m.__name__.rsplit(".", 1)[-1], f) for m, _p, f in FIELDS])
def test_hostile_value_is_refused_before_any_change_naming_the_field(monkeypatch, capsys, module, path, field, kind):
    value = HOSTILE[kind]
    run = run_module(monkeypatch, capsys, module, with_value(module, path, value))
    assert run.failed, "%s=%r was accepted" % (field, value)
    assert field in run.msg, run.msg
    assert run.changes() == [], run.changes()
    if field.endswith(("chap_password", "auth_password")):
        assert value not in str(run.result)  # a refused secret is not repeated either


@pytest.mark.parametrize("kind", ["newline", "nul", "long", "non_ascii"])
@pytest.mark.parametrize(("module", "path", "field"), LABELS,
                         ids=["%s:%s" % (m.__name__.rsplit(".", 1)[-1], f) for m, _p, f in LABELS])
def test_hostile_label_is_refused_naming_the_field(monkeypatch, capsys, module, path, field, kind):
    run = run_module(monkeypatch, capsys, module, with_value(module, path, HOSTILE[kind]))
    assert run.failed
    assert field in run.msg, run.msg
    assert run.changes() == []


@pytest.mark.parametrize(("value", "why"), [
    ("198.18.0.21/0", "host bits are set"), ("0.0.0.0/0", "is a network"), ("::/0", "is a network"),
    ("198.18.0.0/24", "is a network"), ("fe80::1%a;touch${IFS}x;#", "zone id"),
])
def test_acl_typos_do_not_open_the_target(monkeypatch, capsys, value, why):
    run = run_module(monkeypatch, capsys, attachment,
                     with_value(attachment, ("attachments", 0, "initiator_addresses", 0), value))
    assert run.failed and why in run.msg
    assert run.changes() == []


def test_a_network_is_bound_only_with_the_opt_in_and_never_wider_than_the_floor(monkeypatch, capsys):
    args = with_value(attachment, ("attachments", 0, "initiator_addresses", 0), "198.18.0.0/24")
    args["allow_networks"] = True
    run = run_module(monkeypatch, capsys, attachment, args, check_mode=True)
    assert not run.failed, run.msg
    args["acl_min_prefix_ipv4"] = 25
    run = run_module(monkeypatch, capsys, attachment, args, check_mode=True)
    assert run.failed and "is wider than /25" in run.msg
    args["acl_min_prefix_ipv4"] = 0  # /0 never: the floor itself is bounded
    run = run_module(monkeypatch, capsys, attachment, args, check_mode=True)
    assert run.failed and "acl_min_prefix.ipv4" in run.msg


@pytest.mark.parametrize(("size", "fragment"), [
    ("9" * 5000, "too long to be a size"), (10**30, "is more than 8 EiB"), ("1" * 30, "is more than 8 EiB"),
])
def test_a_size_of_thousands_of_digits_fails_cleanly(monkeypatch, capsys, size, fragment):
    run = run_module(monkeypatch, capsys, volume, with_value(volume, ("volumes", 0, "size"), size))
    assert run.failed
    assert run.msg.startswith("volumes[0].size: ") and fragment in run.msg
    assert "Traceback" not in str(run.result)


@pytest.mark.parametrize("timeout", [-1, 3601, 10**12])
def test_wait_timeout_is_bounded(monkeypatch, capsys, timeout):
    args = dict(VALID[connection], wait_timeout=timeout)
    run = run_module(monkeypatch, capsys, connection, args)
    assert run.failed and "wait_timeout: " in run.msg
    assert run.calls == []

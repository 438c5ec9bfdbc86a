# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 7: every configuration file the project writes, rendered from fuzzed input and parsed back (hypothesis).

Files: the tgt target file (``/etc/tgt/conf.d/ember-volume-<name>.conf``, read by tgt-admin, which passes its
values to ``/bin/sh``), the open-iscsi node record the connection module puts the CHAP secret in, the tgt unit's
systemd drop-in (role tgt_target) and ``/etc/iscsi/initiatorname.iscsi`` (role iscsi_initiator).

Two kinds of input: values generated valid (so the rendering of every shape of valid input is checked), and
arbitrary text pushed through the same validators the modules apply (whatever a validator lets through must not
be able to add a line, a directive, a block, a continuation or a shell word). Each rendered file is parsed back
with a strict grammar of what the file may contain and must give back exactly the values put in.
"""

from __future__ import annotations

import re
import string

from ansible_collections.ember.blockstore.plugins.module_utils._address import acl_entry, listen_portal, portal
from ansible_collections.ember.blockstore.plugins.module_utils._attachment import ITEM_OPTIONS, decide
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    chap_username,
    validate_chap_secret,
    validate_chap_username,
    validate_iqn,
    validate_target_prefix,
    validate_vg_name,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._portals import render_dropin, tgt_portals
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import (
    SECRET_KEY,
    parse_record,
    record_with_secret,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import (
    HEADER,
    generate_secret,
    lun_identity,
    parse_conf,
    render_conf,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies of valid values ---------------------------------------------------------------------------------

volume_names = st.from_regex(r"\A[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?\Z", fullmatch=True)
_label = r"[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?"
prefixes = st.from_regex(r"\Aiqn\.[0-9]{4}-(?:0[1-9]|1[0-2])\.%s(?:\.%s){0,3}:[a-z0-9.:-]{0,20}\Z" % (_label, _label),
                         fullmatch=True)
vg_names = st.from_regex(r"\A[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,40}\Z", fullmatch=True).filter(
    lambda v: v not in (".", ".."))
initiator_iqns = st.from_regex(r"\Aiqn\.[0-9]{4}-[0-9]{2}\.[a-z0-9][a-z0-9.-]{0,20}:[a-z0-9.:_-]{1,40}\Z",
                               fullmatch=True)
zones = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.-]{0,14}\Z", fullmatch=True)
host_addresses = st.one_of(
    st.ip_addresses().map(str),
    st.tuples(st.ip_addresses(v=6, network="fe80::/64").map(str), zones).map(lambda t: "%s%%%s" % t),
)
words = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=64)
secrets_ = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=12, max_size=255)
# Arbitrary text, with the characters that matter over-represented.
hostile = st.text(alphabet=st.one_of(st.characters(), st.sampled_from(list("\n\r\t\x00\x0b\x0c;$`()<>#\\\"' -%/[]:="))),
                  max_size=80)


def accepted(validator, value, *args):
    """The value a validator returns, or None when it refuses it."""
    try:
        return validator(value, *args)
    except (NameError_, ValueError):
        return None


# --- tgt target file -------------------------------------------------------------------------------------------

SAFE_WORD = re.compile(r"^[A-Za-z0-9_.:/%\[\]+=@-]+$")


def strict_tgt_parse(text):
    """Parse a target file with the grammar the project writes, failing on anything else. Returns
    ``{iqn, backing, scsi_id, scsi_sn, addresses, initiators, user, secret, volume}``."""
    assert text.endswith("\n") and "\r" not in text and "\x00" not in text
    lines = text.split("\n")[:-1]
    assert all(line.isascii() and line.isprintable() for line in lines), lines
    assert all(not line.rstrip().endswith("\\") for line in lines)  # no Config::General continuation
    assert all("<<" not in line and '"' not in line and "'" not in line and "`" not in line and "$" not in line
               for line in lines)
    assert lines[0] + "\n" == HEADER
    out = {"addresses": [], "initiators": [], "volume": None}
    rest = lines[1:]
    if rest[0].startswith("# volume: "):
        out["volume"] = rest[0][len("# volume: "):]
        assert SAFE_WORD.match(out["volume"])
        rest = rest[1:]
    opening = re.fullmatch(r"<target (\S+)>", rest[0])
    assert opening, rest[0]
    out["iqn"] = opening.group(1)
    assert rest[-1] == "</target>"
    body = rest[1:-1]
    backing = re.fullmatch(r"    backing-store (\S+)", body[0])
    assert backing, body[0]
    out["backing"] = backing.group(1)
    # The LUN's SCSI identity (lun_identity): 32 hex digits each, right after the backing store.
    scsi_id = re.fullmatch(r"    scsi_id ([0-9a-f]{32})", body[1])
    scsi_sn = re.fullmatch(r"    scsi_sn ([0-9a-f]{32})", body[2])
    assert scsi_id and scsi_sn, body[1:3]
    out["scsi_id"], out["scsi_sn"] = scsi_id.group(1), scsi_sn.group(1)
    body = body[:1] + body[3:]
    for line in body[1:-1]:
        address = re.fullmatch(r"    initiator-address (\S+)", line)
        name = re.fullmatch(r"    # initiator-name (\S+)", line)
        assert address or name, line
        (out["addresses"] if address else out["initiators"]).append((address or name).group(1))
    user = re.fullmatch(r"    incominguser (\S+) (\S+)", body[-1])
    assert user, body[-1]
    out["user"], out["secret"] = user.groups()
    for value in [out["iqn"], out["backing"], out["user"], out["secret"]] + out["addresses"] + out["initiators"]:
        assert SAFE_WORD.match(value), value
    return out


class _NoLv(LvmState):
    def __init__(self):
        super().__init__({}, [])


def _item(**values):
    out = {key: spec.get("default") for key, spec in ITEM_OPTIONS.items()}
    out.update(values)
    return out


@SETTINGS
@given(name=volume_names, prefix=prefixes, vg=vg_names, initiators=st.lists(initiator_iqns, min_size=1, max_size=4),
       addresses=st.lists(host_addresses, min_size=1, max_size=4), user=st.one_of(st.none(), words),
       secret=st.one_of(st.none(), secrets_))
def test_target_file_from_valid_input_parses_back(name, prefix, vg, initiators, addresses, user, secret):
    assume(accepted(validate_target_prefix, prefix) is not None)
    assume(all(accepted(acl_entry, a, "f") is not None for a in addresses))
    item = _item(volume=name, vg=vg, initiators=initiators, initiator_addresses=addresses, chap_username=user,
                 chap_password=secret)
    (act,), errors = decide([item], _NoLv(), {}, prefix, read=lambda path: None, predict_missing=True)
    assert errors == []
    text = act["desired"].replace("(generated when applied)", secret or generate_secret())
    parsed = strict_tgt_parse(text)
    assert parsed["iqn"] == prefix + "volume-" + name
    assert parsed["backing"] == "/dev/%s/volume-%s" % (vg, name)
    assert parsed["volume"] == name
    assert parsed["addresses"] == sorted({acl_entry(a, "f") for a in addresses})
    assert parsed["initiators"] == sorted(set(initiators))
    assert parsed["user"] == (user or chap_username(name))
    if secret:
        assert parsed["secret"] == secret
    # The project's own parser reads the same.
    conf = parse_conf(text)
    assert (conf["iqn"], conf["backing_store"], conf["addresses"], conf["initiators"], conf["chap_username"],
            conf["chap_password"]) == (parsed["iqn"], parsed["backing"], parsed["addresses"],
                                       parsed["initiators"], parsed["user"], parsed["secret"])
    assert (parsed["scsi_id"], parsed["scsi_sn"]) == lun_identity(name)
    # Exactly one line per value: nothing was added.
    assert len(text.splitlines()) == 8 + len(parsed["addresses"]) + len(parsed["initiators"])


@SETTINGS
@given(volume=hostile, prefix=hostile, vg=hostile, initiator=hostile, address=hostile, user=hostile, secret=hostile)
def test_whatever_the_validators_accept_cannot_add_a_line(volume, prefix, vg, initiator, address, user, secret):
    # Arbitrary text in every field: anything a validator lets through still renders one value per line.
    volume = accepted(validate_volume_name, volume) or "db01"
    prefix = accepted(validate_target_prefix, prefix) or "iqn.2026-11.io.ember.blockstore:"
    vg = accepted(validate_vg_name, vg) or "ember-vg"
    initiator = accepted(validate_iqn, initiator) or "iqn.1993-08.org.debian:01:abc"
    address = accepted(acl_entry, address, "f") or "198.18.0.21"
    user = accepted(validate_chap_username, user) or "ember_user"
    secret = accepted(validate_chap_secret, secret) or "Secret_123456"
    scsi_id, scsi_sn = lun_identity(volume)
    text = render_conf(prefix + "volume-" + volume, "/dev/%s/volume-%s" % (vg, volume), [initiator], user, secret,
                       volume=volume, addresses=[address], scsi_id=scsi_id, scsi_sn=scsi_sn)
    parsed = strict_tgt_parse(text)
    assert (parsed["addresses"], parsed["initiators"], parsed["user"], parsed["secret"]) == (
        [address], [initiator], user, secret)
    assert len(text.splitlines()) == 10


@SETTINGS
@given(value=hostile)
def test_render_conf_itself_refuses_any_unsafe_value(value):
    # Defence in depth: even a caller that skipped validation cannot write a blank, a control character or a
    # shell character into a target file.
    assume(not SAFE_WORD.match(value))
    for position in range(5):
        args = ["iqn.2026-11.x:volume-a", "/dev/vg/volume-a", ["iqn.1993-08.x:y"], "user", "Secret_123456"]
        if position == 2:
            args[2] = [value]
        else:
            args[position] = value
        try:
            render_conf(*args, volume="a", addresses=["198.18.0.21"])
        except ValueError:
            continue
        raise AssertionError("render_conf wrote %r" % value)


# --- open-iscsi node record -------------------------------------------------------------------------------------

RECORD = ("# BEGIN RECORD 2.1.8\nnode.name = iqn.2026-11.io.ember.blockstore:volume-db01\nnode.tpgt = -1\n"
          "node.startup = automatic\nnode.session.auth.authmethod = CHAP\n"
          "node.session.auth.username = ember_db01_1234abcd\nnode.session.auth.password_in = Other_secret_1\n"
          "node.conn[0].address = 198.18.0.11\nnode.conn[0].port = 3260\n# END RECORD\n")


@SETTINGS
@given(secret=secrets_, previous=st.one_of(st.none(), secrets_))
def test_node_record_with_the_secret_parses_back(secret, previous):
    text = RECORD if previous is None else RECORD.replace("# END", "%s = %s\n# END" % (SECRET_KEY, previous))
    out = record_with_secret(text, secret)
    values = parse_record(out)
    assert values[SECRET_KEY] == secret
    assert values["node.session.auth.password_in"] == "Other_secret_1"  # a key that only starts the same
    # Every other line is kept as it was, and exactly one line carries the secret.
    before = [line for line in text.splitlines() if not line.startswith(SECRET_KEY + " ")]
    after = out.splitlines()
    assert [line for line in after if not line.startswith(SECRET_KEY + " ")] == before
    assert sum(1 for line in after if line.startswith(SECRET_KEY + " ")) == 1
    assert after[-1] == "# END RECORD" and after[0].startswith("# BEGIN RECORD")


@SETTINGS
@given(value=hostile)
def test_node_record_refuses_whatever_the_validator_refuses(value):
    secret = accepted(validate_chap_secret, value)
    try:
        out = record_with_secret(RECORD, value)
    except ValueError:
        out = None
    if secret is None:
        # A value the module refuses may still be one word (e.g. too short); never more than one line.
        assert out is None or (len(out.splitlines()) == len(RECORD.splitlines()) + 1
                               and parse_record(out)[SECRET_KEY] == value)
    else:
        assert parse_record(out)[SECRET_KEY] == secret


# --- tgt unit drop-in --------------------------------------------------------------------------------------------

def strict_unit_parse(text):
    """Directives of a systemd unit file as the drop-in may contain them: ``[Section]`` and ``Key=value``."""
    sections, current = {}, None
    for line in text.splitlines():
        assert line.isascii() and line.isprintable() and not line.endswith("\\"), line
        if not line or line.startswith("#"):
            continue
        header = re.fullmatch(r"\[(\w+)\]", line)
        if header:
            current = sections.setdefault(header.group(1), [])
            continue
        key, sep, value = line.partition("=")
        assert sep and re.fullmatch(r"[A-Za-z]+", key), line
        assert current is not None
        current.append((key, value))
    return sections


def _unescape(value):
    return value.replace("%%", "%")


@SETTINGS
@given(addresses=st.lists(st.one_of(host_addresses, st.sampled_from(["0.0.0.0", "::"])), min_size=1, max_size=4),
       port=st.integers(min_value=1, max_value=65535))
def test_dropin_from_valid_addresses_parses_back(addresses, port):
    assume(all(accepted(listen_portal, a) is not None for a in addresses))  # not multicast or broadcast
    portals = tgt_portals(addresses, port)
    sections = strict_unit_parse(render_dropin(portals))
    assert set(sections) == {"Unit", "Service"}
    opened = [_unescape(v.rsplit("portal=", 1)[1]) for k, v in sections["Service"]
              if k == "ExecStartPost" and "--op new --mode portal" in v]
    assert opened == portals
    assert len(sections["Service"]) == 9 + len(portals)
    for value in opened:
        assert value == listen_portal(value)  # canonical: parses back to itself
    # A % is doubled in the unit (systemd specifiers) and nowhere single.
    for _key, value in sections["Service"]:
        assert "%" not in value.replace("%%", "")


@SETTINGS
@given(address=hostile)
def test_whatever_tgt_portals_accepts_is_one_directive(address):
    try:
        portals = tgt_portals([address])
    except NameError_:
        return
    sections = strict_unit_parse(render_dropin(portals))
    assert len(sections["Service"]) == 10


# --- initiator name file, and the portal a consumer logs in to -------------------------------------------------

@SETTINGS
@given(value=st.one_of(hostile, initiator_iqns))
def test_initiatorname_file_is_one_line(value):
    iqn = accepted(validate_iqn, value)
    if iqn is None:
        return
    text = "InitiatorName=%s\n" % iqn  # roles/iscsi_initiator/tasks/main.yml writes exactly this
    assert text.splitlines() == ["InitiatorName=" + iqn]
    assert re.fullmatch(r"[a-z0-9.:_-]+", iqn)


@SETTINGS
@given(value=st.one_of(hostile, host_addresses))
def test_a_portal_is_one_shell_safe_word(value):
    normal = accepted(portal, value)
    if normal is not None:
        assert re.fullmatch(r"[0-9a-fA-F.:\[\]%A-Za-z_-]+", normal)
        assert portal(normal) == normal


def test_test_module_names_are_unique():
    # pytest imports test files by basename (rootdir mode, no __init__.py): two test_x.py in different
    # directories stop the whole session at collection ("import file mismatch").
    import collections
    import pathlib

    tests = pathlib.Path(__file__).resolve().parents[1]
    names = collections.Counter(p.name for p in tests.rglob("test_*.py") if "output" not in p.parts)
    assert [name for name, count in names.items() if count > 1] == []

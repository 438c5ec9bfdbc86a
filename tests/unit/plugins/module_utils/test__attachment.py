# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_attachment.decide`` (the attachment module's pure decision) over state captured on the lab's stor1 after
the converge run: LVM (``lvs_converged.json``), live targets (``show_two_targets.txt``: db01-data and logs01
exported to client1) and db01-data's target file (``conf_db01.conf``). Target files are injected through
``read``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._attachment import (
    ITEM_OPTIONS,
    PENDING_SECRET,
    connection_info,
    decide,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import chap_username
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import LvmState, parse_lvs, parse_vgs
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import parse_conf, parse_show, render_conf

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
PREFIX = "iqn.2026-11.io.ember.blockstore:"
CLIENT1 = "iqn.1993-08.org.debian:01:d53fc39a07f1"
CLIENT2 = "iqn.1993-08.org.debian:01:9263f289471f"
DB01_IQN = PREFIX + "volume-db01-data"
DB01_CONF = "/etc/tgt/conf.d/ember-volume-db01-data.conf"
DB01_BACKING = "/dev/ember-thin/volume-db01-data"
DB01_SECRET = "olg9DP2N9vXrCp3z"  # incominguser in conf_db01.conf
DB01_USER = "ember_db01_data"


def text(name):
    return (FIXTURES / name).read_text()


def lvm_state(edit=None):
    data = json.loads(text("lvm/lvs_converged.json"))
    if edit:
        edit(data["report"][0]["lv"])
    return LvmState(parse_vgs(text("lvm/vgs_converged.json")), parse_lvs(json.dumps(data)))


def files(mapping):
    """A ``read`` function over ``{path: text}``; None (no such file) for any other path."""
    return mapping.get


def item(**kwargs):
    out = {key: spec.get("default") for key, spec in ITEM_OPTIONS.items()}
    out.update(kwargs)
    return out


@pytest.fixture(scope="module")
def state():
    return lvm_state()


@pytest.fixture()
def live():
    return parse_show(text("tgt/show_two_targets.txt"))


@pytest.fixture(scope="module")
def db01_conf():
    return text("tgt/conf_db01.conf")


def db01(**kwargs):
    return item(**dict({"volume": "db01-data", "vg": "ember-thin", "initiators": [CLIENT1]}, **kwargs))


NO_FILES = files({})


def decide_one(it, state, live, read=NO_FILES, **kwargs):
    return decide([it], state, live, PREFIX, read=read, **kwargs)


# --- present -----------------------------------------------------------------------------------------------------

def test_unchanged_export_is_none(state, live, db01_conf):
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert act["action"] == "none"
    assert act["write_file"] is False
    assert act["desired"] == db01_conf
    assert act["target_iqn"] == DB01_IQN
    assert act["conf_path"] == DB01_CONF
    assert act["backing_store"] == DB01_BACKING
    assert act["chap_username"] == DB01_USER
    assert act["chap_password"] == DB01_SECRET
    assert act["generated"] is False
    assert act["initiators"] == [CLIENT1]
    assert act["sessions"] == [CLIENT1]  # client1 is logged in (I_T nexus)


def test_new_export(state):
    (act,), errors = decide_one(db01(), state, {})
    assert errors == []
    assert act["action"] == "export"
    assert act["write_file"] is True
    assert act["generated"] is True
    assert act["chap_password"] is None
    assert act["chap_username"] == chap_username("db01-data")
    assert act["sessions"] == []
    conf = parse_conf(act["desired"])
    assert (conf["iqn"], conf["backing_store"], conf["initiators"]) == (DB01_IQN, DB01_BACKING, [CLIENT1])
    # The secret is a placeholder until apply() generates it; the placeholder is never a valid credential.
    assert "    incominguser %s %s\n" % (chap_username("db01-data"), PENDING_SECRET) in act["desired"]
    assert (conf["chap_username"], conf["chap_password"]) == (None, None)


def test_file_differs_is_update(state, live, db01_conf):
    # A hand-edited file (comment removed) while the live target is right: rewrite the file.
    edited = db01_conf.replace("# volume: db01-data\n", "")
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: edited}))
    assert errors == []
    assert act["action"] == "update"
    assert act["write_file"] is True
    assert act["desired"] == db01_conf


def test_new_initiator_is_update_and_reuses_the_secret(state, live, db01_conf):
    (act,), errors = decide_one(db01(initiators=[CLIENT2, CLIENT1]), state, live, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert act["action"] == "update"
    assert act["write_file"] is True
    assert act["initiators"] == sorted([CLIENT1, CLIENT2])
    assert act["chap_password"] == DB01_SECRET  # read back from the root-only file
    assert act["chap_username"] == DB01_USER
    assert act["generated"] is False
    assert parse_conf(act["desired"])["initiators"] == sorted([CLIENT1, CLIENT2])
    assert parse_conf(act["desired"])["chap_password"] == DB01_SECRET


def test_live_target_missing_after_tgt_restart_is_update(state, db01_conf):
    # The file is right but tgtd has no such target (e.g. it was restarted before the LV was active): reload it.
    (act,), errors = decide_one(db01(), state, {}, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert act["action"] == "update"
    assert act["write_file"] is False
    assert act["chap_password"] == DB01_SECRET
    assert act["sessions"] == []


def test_live_target_without_file_is_update(state, live):
    (act,), errors = decide_one(db01(), state, live)
    assert errors == []
    assert act["action"] == "update"
    assert act["write_file"] is True
    assert act["generated"] is True


def test_live_account_differs_is_update(state, live):
    # A file written with the hashed CHAP user while tgtd still has the old account ember_db01_data.
    user = chap_username("db01-data")
    conf = render_conf(DB01_IQN, DB01_BACKING, [CLIENT1], user, DB01_SECRET, volume="db01-data")
    (act,), errors = decide_one(db01(), state, live, files({DB01_CONF: conf}))
    assert errors == []
    assert act["chap_username"] == user
    assert act["action"] == "update"
    assert act["write_file"] is False


def test_live_acl_differs_is_update(state, live, db01_conf):
    live[DB01_IQN]["acl"] = ["ALL", CLIENT1, CLIENT2]  # someone bound another initiator with tgtadm
    (act,), _ = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["write_file"]) == ("update", False)


def test_live_backing_store_differs_is_update(state, live, db01_conf):
    live[DB01_IQN]["luns"][1]["backing_store"] = "/dev/ember-thin/volume-other"
    (act,), _ = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert (act["action"], act["write_file"]) == ("update", False)


def test_live_target_without_lun1_is_update(state, live, db01_conf):
    del live[DB01_IQN]["luns"][1]
    (act,), _ = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert act["action"] == "update"


def test_given_chap_password_wins_over_the_file(state, live, db01_conf):
    (act,), errors = decide_one(db01(chap_password="NewSecret_1234"), state, live, files({DB01_CONF: db01_conf}))
    assert errors == []
    assert act["chap_password"] == "NewSecret_1234"
    assert act["generated"] is False
    assert act["action"] == "update"
    assert act["write_file"] is True
    assert "    incominguser %s NewSecret_1234\n" % DB01_USER in act["desired"]


def test_given_chap_username_wins_over_the_file(state, live, db01_conf):
    (act,), _ = decide_one(db01(chap_username="db_user"), state, live, files({DB01_CONF: db01_conf}))
    assert act["chap_username"] == "db_user"
    assert act["chap_password"] == DB01_SECRET
    assert act["action"] == "update"


def test_given_credentials_equal_to_the_file_are_none(state, live, db01_conf):
    (act,), _ = decide_one(db01(chap_username=DB01_USER, chap_password=DB01_SECRET), state, live,
                           files({DB01_CONF: db01_conf}))
    assert act["action"] == "none"


def test_duplicate_initiators_are_collapsed(state, live, db01_conf):
    (act,), _ = decide_one(db01(initiators=[CLIENT1, CLIENT1]), state, live, files({DB01_CONF: db01_conf}))
    assert act["initiators"] == [CLIENT1]
    assert act["action"] == "none"


def test_read_is_asked_for_the_volume_conf_path(state):
    asked = []
    decide_one(db01(), state, {}, read=lambda path: asked.append(path))
    assert asked == [DB01_CONF]


def test_thick_volume_backing_store(state, live):
    (act,), errors = decide_one(item(volume="logs01", vg="ember-thick", initiators=[CLIENT1]), state, live)
    assert errors == []
    assert act["backing_store"] == "/dev/ember-thick/volume-logs01"
    assert act["action"] == "update"  # live (show_two_targets) but no file given


# --- absent ------------------------------------------------------------------------------------------------------

def test_absent_unexports_a_live_target(state, live):
    (act,), errors = decide_one(item(volume="logs01", vg="ember-thick", state="absent"), state, live)
    assert errors == []
    assert act["action"] == "unexport"
    assert act["target_iqn"] == PREFIX + "volume-logs01"
    assert act["sessions"] == [CLIENT1]
    assert act["initiators"] == []


def test_absent_unexports_a_file_only(state, db01_conf):
    (act,), _ = decide_one(db01(state="absent"), state, {}, files({DB01_CONF: db01_conf}))
    assert act["action"] == "unexport"


def test_absent_nothing_to_do(state):
    (act,), errors = decide_one(item(volume="scratch01", vg="ember-thick", state="absent"), state, {})
    assert errors == []
    assert act["action"] == "none"
    assert act["sessions"] == []


def test_absent_needs_neither_initiators_nor_the_volume(state, live):
    (act,), errors = decide_one(item(volume="gone", vg="nope", state="absent"), state, live)
    assert errors == []
    assert act["action"] == "none"


# --- errors ------------------------------------------------------------------------------------------------------

def test_missing_initiators(state):
    actions, errors = decide_one(db01(initiators=[]), state, {})
    assert actions == []
    assert errors == ["attachments[0].initiators: at least one initiator IQN is needed to export volume db01-data "
                      "(the ACL)"]


@pytest.mark.parametrize(("initiators", "field", "bad"), [
    (["not-an-iqn"], "attachments[0].initiators[0]", "not-an-iqn"),
    ([CLIENT1, "iqn.1993-08.org.Debian:01:x"], "attachments[0].initiators[1]", "iqn.1993-08.org.Debian:01:x"),
    ([CLIENT1, "iqn.1993-08.org.debian:01:x\n"], "attachments[0].initiators[1]", "iqn.1993-08.org.debian:01:x\n"),
])
def test_bad_iqn(state, initiators, field, bad):
    actions, errors = decide_one(db01(initiators=initiators), state, {})
    assert actions == []
    assert errors == ["%s: %r is not an iSCSI name; expected e.g. iqn.2004-10.com.example:host1" % (field, bad)]


@pytest.mark.parametrize(("key", "value"), [
    ("chap_username", "ember-db01"),
    ("chap_username", "ember db01"),
    ("chap_password", "pass word12345"),
    ("chap_password", "p@ssw0rd12345"),
])
def test_non_word_chap(state, key, value):
    actions, errors = decide_one(db01(**{key: value}), state, {})
    assert actions == []
    assert errors == ["attachments[0].%s: must be letters, digits or '_' (tgt's config parser expects word "
                      "characters)" % key]


def test_volume_must_exist(state):
    actions, errors = decide_one(item(volume="db02-data", vg="ember-thin", initiators=[CLIENT1]), state, {})
    assert actions == []
    assert errors == ["attachments[0].volume: volume db02-data does not exist in VG ember-thin"]
    # db01-data exists, but in ember-thin, not ember-thick.
    _, errors = decide_one(db01(vg="ember-thick"), state, {})
    assert errors == ["attachments[0].volume: volume db01-data does not exist in VG ember-thick"]


def test_missing_volume_is_predicted_in_check_mode(state):
    (act,), errors = decide_one(item(volume="db02-data", vg="ember-thin", initiators=[CLIENT1]), state, {},
                                predict_missing=True)
    assert errors == []
    assert act["action"] == "export"
    assert act["backing_store"] == "/dev/ember-thin/volume-db02-data"


def test_unmanaged_lv_is_refused_even_in_check_mode():
    def edit(rows):
        for row in rows:
            if row["lv_name"] == "volume-db01-data":
                row["lv_tags"] = ""
    st = lvm_state(edit)
    for predict in (False, True):
        actions, errors = decide_one(db01(), st, {}, predict_missing=predict)
        assert actions == []
        assert errors == ["attachments[0].volume: volume db01-data does not exist in VG ember-thin as a managed LV"]


def test_bad_volume_name_uses_the_field(state):
    _, errors = decide([db01(volume="DB01")], state, {}, PREFIX, read=files({}), field="attachment")
    assert errors == ["attachment[0].volume: 'DB01' is not a valid volume name; use 1-63 lowercase letters, "
                      "digits, '.' or '-', starting and ending with a letter or digit"]


def test_duplicate_volumes(state, live, db01_conf):
    actions, errors = decide([db01(), db01(initiators=[CLIENT2])], state, live, PREFIX,
                             read=files({DB01_CONF: db01_conf}))
    assert errors == ["attachments[1].volume: 'db01-data' is listed twice"]
    assert len(actions) == 1


def test_all_errors_are_collected(state):
    _, errors = decide([db01(initiators=[]), db01(volume="x", initiators=["bad"]), db01(chap_password="a-b")],
                       state, {}, PREFIX, read=files({}))
    assert [e.split(":")[0] for e in errors] == [
        "attachments[0].initiators", "attachments[1].initiators[0]", "attachments[2].chap_password"]


# --- connection_info ---------------------------------------------------------------------------------------------

def test_connection_info(state, live, db01_conf):
    (act,), _ = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert connection_info(act, "198.18.0.11") == {
        "driver_volume_type": "iscsi",
        "target_iqn": DB01_IQN,
        "target_portal": "198.18.0.11:3260",
        "target_lun": 1,
        "auth_method": "CHAP",
        "auth_username": DB01_USER,
        "auth_password": DB01_SECRET,
        "volume": "db01-data",
        "initiators": [CLIENT1],
    }


def test_connection_info_keeps_an_explicit_port(state, live, db01_conf):
    (act,), _ = decide_one(db01(), state, live, files({DB01_CONF: db01_conf}))
    assert connection_info(act, "198.18.0.11:3261")["target_portal"] == "198.18.0.11:3261"


def test_connection_info_before_the_secret_is_generated(state):
    (act,), _ = decide_one(db01(), state, {})
    assert connection_info(act, "198.18.0.11")["auth_password"] == PENDING_SECRET


def test_connection_info_absent_is_none(state, live):
    (act,), _ = decide_one(db01(state="absent"), state, live)
    assert connection_info(act, "198.18.0.11") is None

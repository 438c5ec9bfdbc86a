# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""``_nfs``: exports(5) lines, NFS shares and mount options, checked before the roles write them (issues 13, 14)."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_
from ansible_collections.ember.blockstore.plugins.module_utils._nfs import export_lines, mount_options, parse_share

OPTS = "rw,sync,no_subtree_check"


def test_an_export_lists_each_client_with_root_squashed():
    lines = export_lines([{"path": "/srv/ember-backups", "clients": ["198.18.0.12", "198.18.0.11", "198.18.0.11/32"]}])
    assert lines == ["/srv/ember-backups 198.18.0.11(%s,root_squash) 198.18.0.12(%s,root_squash)" % (OPTS, OPTS)]


def test_root_squash_per_export_and_default():
    exports = [{"path": "/srv/a", "clients": ["198.18.1.0/24"]},
               {"path": "/srv/b", "clients": ["2001:DB8::15"], "root_squash": True}]
    assert export_lines(exports, root_squash=False) == [
        "/srv/a 198.18.1.0/24(%s,no_root_squash)" % OPTS, "/srv/b 2001:db8::15(%s,root_squash)" % OPTS]


def test_options_are_added_once_and_ro_replaces_rw():
    lines = export_lines([{"path": "/srv/a", "clients": ["198.18.0.11"],
                           "options": ["ro", "sync", "anonuid=1000", "anongid=1000"], "owner": "x", "mode": "0750"}])
    assert lines == ["/srv/a 198.18.0.11(sync,no_subtree_check,ro,anonuid=1000,anongid=1000,root_squash)"]


@pytest.mark.parametrize(("exports", "message"), [
    ("/srv/a", "blockstore_nfs_exports: '/srv/a' is not a list of exports"),
    ([{"path": "/srv/a", "clients": ["*"]}], "blockstore_nfs_exports[0].clients[0]: '*' is not an IP address"),
    ([{"path": "/srv/a", "clients": ["backup.example"]}], "clients[0]: 'backup.example' is not an IP address"),
    ([{"path": "/srv/a", "clients": []}], "blockstore_nfs_exports[0].clients: [] is not a non-empty list"),
    ([{"path": "/srv/a"}], "blockstore_nfs_exports[0].clients: None is not a non-empty list"),
    ([{"path": "/srv/a", "clients": ["10.0.0.0/8"]}], "is wider than /16"),
    ([{"path": "/srv/a", "clients": ["198.18.0.21/24"]}], "host bits are set"),
    ([{"path": "srv/a", "clients": ["198.18.0.11"]}], "blockstore_nfs_exports[0].path: 'srv/a' is not an absolute"),
    ([{"path": "/srv/../etc", "clients": ["198.18.0.11"]}], "is not a normalized path"),
    ([{"path": "/srv/a/", "clients": ["198.18.0.11"]}], "is not a normalized path"),
    ([{"path": "/", "clients": ["198.18.0.11"]}], "is not a normalized path"),
    ([{"path": "/srv/a b", "clients": ["198.18.0.11"]}], "is not an absolute path"),
    ([{"path": "/srv/a", "clients": ["198.18.0.11"]}, {"path": "/srv/a", "clients": ["198.18.0.12"]}],
     "blockstore_nfs_exports[1].path: '/srv/a' is exported twice"),
    ([{"path": "/srv/a", "clients": ["198.18.0.11"], "options": ["insecure"]}],
     "options[0]: 'insecure' is not accepted here (clients must use privileged ports)"),
    ([{"path": "/srv/a", "clients": ["198.18.0.11"], "options": ["no_root_squash"]}],
     "options[0]: 'no_root_squash' is not accepted here (use root_squash: false)"),
    ([{"path": "/srv/a", "clients": ["198.18.0.11"], "options": ["rw) 0.0.0.0/0(rw"]}], "is not an exports(5) option"),
    ([{"path": "/srv/a", "clients": ["198.18.0.11"], "options": ["anonuid=0 *"]}], "has a value that is not"),
    ([{"path": "/srv/a", "clients": ["198.18.0.11"], "root_squash": "no"}], "root_squash: 'no' is not a boolean"),
    ([{"path": "/srv/a", "clients": ["198.18.0.11"], "client": ["x"]}], "unknown key(s) client"),
])
def test_bad_exports_are_refused_naming_the_field(exports, message):
    with pytest.raises(NameError_) as info:
        export_lines(exports)
    assert message in str(info.value)


@pytest.mark.parametrize(("share", "expected"), [
    ("198.18.0.21:/srv/ember-backups", {"server": "198.18.0.21", "export": "/srv/ember-backups"}),
    ("[FD00::21]:/srv/x", {"server": "fd00::21", "export": "/srv/x"}),
])
def test_shares(share, expected):
    assert parse_share(share) == expected


@pytest.mark.parametrize(("share", "message"), [
    ("nas.example:/srv/x", "store (server): 'nas.example' is not an IP address"),
    ("198.18.0.21", "store: '198.18.0.21' is not an NFS share written server:/export"),
    ("198.18.0.21:/srv/../x", "store (export): '/srv/../x' is not a normalized path"),
    (5, "store: 5 is not an NFS share"),
])
def test_bad_shares(share, message):
    with pytest.raises(NameError_) as info:
        parse_share(share, "store")
    assert message in str(info.value)


def test_mount_options():
    assert mount_options(["rw", "hard", "vers=4.2"]) == "rw,hard,vers=4.2"
    for bad, message in (([], "is not a non-empty list"), (["rw,nosuid"], "opts[0]: 'rw,nosuid' is not a mount"),
                         (["a b"], "opts[0]: 'a b'"), ("rw", "opts: 'rw' is not a non-empty list")):
        with pytest.raises(NameError_) as info:
            mount_options(bad, "opts")
        assert message in str(info.value)

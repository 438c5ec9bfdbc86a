# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backend configs of driver ``nfs`` (issue 14) as the storage-node modules take them (``node_backend_options``,
``node_backends``): each error names the field and the value; the LVM drivers keep their checks and messages, and
the inventory schema (``backend_options``, ``validate_backends`` without options) still takes the LVM drivers only."""

from __future__ import annotations

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import (
    DEFAULT_MOUNT_OPTIONS,
    DRIVERS,
    LVM_DRIVERS,
    NFS_KEYS,
    NODE_BACKEND_REQUIRED_IF,
    backend_config,
    backend_options,
    node_backend_options,
    node_backends,
    validate_backends,
)

NFS = {"name": "nfs1", "driver": "nfs", "shares": ["198.18.0.5:/srv/ember"]}


def error(backend):
    try:
        node_backends([backend])
    except ValueError as exc:
        return str(exc)
    return None


def test_an_nfs_backend_with_its_defaults():
    (cfg,) = node_backends([NFS])
    assert cfg["driver"] == "nfs" and cfg["shares"] == ["198.18.0.5:/srv/ember"]
    assert cfg["mount_options"] == ["rw", "hard", "noatime", "vers=4.2"] == list(DEFAULT_MOUNT_OPTIONS)
    assert cfg["mount_point_base"] == "/var/lib/ember-blockstore/mnt"
    assert cfg["sparse"] is True
    assert cfg["vg"] is None and cfg["thin_pool"] is None and cfg["volume_backend_name"] == "nfs1"


def test_shares_are_kept_in_canonical_form():
    (cfg,) = node_backends([dict(NFS, shares=["[FD00:0::5]:/srv/a", "198.18.0.6:/srv/b"], sparse=False,
                                 mount_options=["rw", "hard", "vers=4.1", "timeo=600"],
                                 mount_point_base="/srv/mnt")])
    assert cfg["shares"] == ["[fd00::5]:/srv/a", "198.18.0.6:/srv/b"]
    assert cfg["sparse"] is False and cfg["mount_options"] == ["rw", "hard", "vers=4.1", "timeo=600"]


@pytest.mark.parametrize("backend, message", [
    ({"name": "nfs1", "driver": "nfs"},
     "backends[0].shares: None is not a list of 1-64 NFS shares written server:/export (required for driver nfs)"),
    (dict(NFS, shares=[]), "backends[0].shares: [] is not a list of 1-64 NFS shares"),
    (dict(NFS, shares="198.18.0.5:/srv/ember"), "backends[0].shares: '198.18.0.5:/srv/ember' is not a list"),
    (dict(NFS, shares=["nfs.example:/srv/x"]), "backends[0].shares[0] (server): 'nfs.example' is not an IP address"),
    (dict(NFS, shares=["198.18.0.5/srv/x"]), "backends[0].shares[0]: '198.18.0.5/srv/x' is not an NFS share written "
                                             "server:/export"),
    (dict(NFS, shares=["198.18.0.5:/srv/../etc"]), "backends[0].shares[0] (export): '/srv/../etc' is not a "
                                                   "normalized path"),
    (dict(NFS, shares=["198.18.0.5:/a", "198.18.0.5:/b", "198.18.0.5:/a"]),
     "backends[0].shares[2]: '198.18.0.5:/a' is listed twice"),
    (dict(NFS, vg="ember-thick"), "backends[0].vg: 'ember-thick' is a key of the LVM drivers; an nfs backend has "
                                  "shares instead: remove it"),
    (dict(NFS, thin_pool="tp"), "backends[0].thin_pool: 'tp' is a key of the LVM drivers"),
    (dict(NFS, pvs=["/dev/vdb"]), "backends[0].pvs: ['/dev/vdb'] is a key of the LVM drivers"),
    (dict(NFS, mount_options=["rw", "hard;reboot"]), "backends[0].mount_options[1]: 'hard;reboot' is not a mount "
                                                     "option"),
    (dict(NFS, mount_options=[]), "backends[0].mount_options: [] is not a non-empty list of mount options"),
    (dict(NFS, mount_options=["ro"]), "backends[0].mount_options: 'ro' is listed, but the volumes on the shares are "
                                      "written"),
    (dict(NFS, mount_point_base="var/mnt"), "backends[0].mount_point_base: 'var/mnt' is not an absolute path"),
    (dict(NFS, mount_point_base="/var/../mnt"), "backends[0].mount_point_base: '/var/../mnt' is not a normalized"),
    (dict(NFS, sparse="yes"), "backends[0].sparse: 'yes' is not a boolean"),
    (dict(NFS, driver="zfs"), "backends[0].driver: 'zfs' is not one of lvm, lvm_thin, nfs"),
    ({"name": "thick", "vg": "ember-thick", "shares": ["198.18.0.5:/srv/ember"]},
     "backends[0].shares: ['198.18.0.5:/srv/ember'] is a key of driver nfs; backend 'thick' has driver lvm"),
    ({"name": "thin", "driver": "lvm_thin", "vg": "ember-thin", "sparse": True},
     "backends[0].sparse: True is a key of driver nfs; backend 'thin' has driver lvm_thin"),
    ({"name": "thick"}, "backends[0].vg: required"),
    (dict(NFS, zz_unknown=1), "backends[0]: unknown keys zz_unknown"),
])
def test_errors_name_the_field_and_the_value(backend, message):
    assert message in (error(backend) or "no error")


def test_a_backend_name_used_twice_is_refused():
    with pytest.raises(ValueError, match=r"backends\[1\].name: 'nfs1' is used twice \(also backends\[0\]\)"):
        node_backends([NFS, dict(NFS)])


def test_backend_config_after_the_module_defaults():
    """As backend_info gets it from AnsibleModule (every key present, defaults applied)."""
    raw = {key: spec.get("default") for key, spec in node_backend_options().items()}
    cfg = backend_config(dict(raw, **NFS))
    assert cfg["shares"] == NFS["shares"] and cfg["vg"] is None
    with pytest.raises(ValueError, match=r"backends\[nfs1\].vg: 'v' is given, but an nfs backend has no volume group"):
        backend_config(dict(raw, vg="v", **NFS))
    with pytest.raises(ValueError, match=r"backends\[thick\].shares: \['198.18.0.5:/srv/ember'\] is given, but only a "
                                         r"backend with driver nfs has shares \(driver is lvm\)"):
        backend_config(dict(raw, name="thick", vg="v", shares=NFS["shares"]))


def test_the_lvm_checks_and_messages_are_unchanged():
    raw = {key: spec.get("default") for key, spec in node_backend_options().items()}
    lvm = {key: spec.get("default") for key, spec in backend_options().items()}
    for bad, message in (({"vg": "-x"}, "backends[b].vg: '-x' is not a valid volume group name"),
                         ({"vg": "v", "thin_pool": "x_tmeta"}, "backends[b].thin_pool: 'x_tmeta' is a name LVM "
                                                               "reserves"),
                         ({"vg": "v", "thin_pool_size": "200%VG"}, "thin_pool_size: '200%VG' is not a percentage")):
        for defaults in (raw, lvm):
            with pytest.raises(ValueError) as info:
                backend_config(dict(defaults, name="b", **bad))
            assert message in str(info.value)


def test_the_inventory_schema_takes_nfs_backends():
    assert DRIVERS == ("lvm", "lvm_thin", "nfs") and LVM_DRIVERS == ("lvm", "lvm_thin")
    assert backend_options()["driver"]["choices"] == ["lvm", "lvm_thin", "nfs"]
    assert set(NFS_KEYS) <= set(backend_options())
    assert validate_backends([NFS]) == [NFS]
    with pytest.raises(ValueError, match=r"blockstore_backends\[0\].vg: 'v' is a key of the LVM drivers"):
        validate_backends([{"name": "n", "vg": "v", "driver": "nfs", "shares": ["198.18.0.5:/srv/x"]}])
    with pytest.raises(ValueError, match=r"blockstore_backends\[0\].vg: required"):
        validate_backends([{"name": "thick", "driver": "lvm"}])


def test_node_backend_options_are_the_schema():
    assert node_backend_options() == backend_options()
    assert backend_options()["vg"] == {"type": "str"}


@pytest.mark.parametrize("backend, errors", [
    (NFS, []),
    ({"name": "thick", "vg": "ember-thick"}, []),
    ({"name": "thick"}, ["driver is lvm but all of the following are missing: vg found in backends"]),
    ({"name": "thin", "driver": "lvm_thin"}, ["driver is lvm_thin but all of the following are missing: vg found in "
                                              "backends"]),
])
def test_ansible_requires_vg_for_the_lvm_drivers_only(backend, errors):
    spec = {"backends": dict(type="list", elements="dict", options=node_backend_options(),
                             required_if=NODE_BACKEND_REQUIRED_IF)}
    assert ArgumentSpecValidator(spec).validate({"backends": [backend]}).error_messages == errors

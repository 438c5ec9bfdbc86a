#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: backup_info
short_description: List the backups of a backup store
version_added: 0.3.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - Reads the manifests of a backup store that M(ember.blockstore.backup) writes (C(backups/<volume>/<name>.json)
    under O(store)) and reports each backup with its size, parent, creation time, statistics and digest.
  - "Reads only the manifests (no chunk, no lock: manifests are written atomically); a manifest that cannot be read
    is reported in RV(unreadable) with a warning. A store that does not exist has no backups."
  - Read-only; never reports C(changed).
extends_documentation_fragment:
  - ember.blockstore.attributes
  - ember.blockstore.attributes.info_module
options:
  store:
    description: Path of the backup store directory.
    type: path
    required: true
  volume:
    description: Report only the backups of this volume.
    type: str
  name:
    description: Report only the backup of this name (of O(volume) when given, else of every volume).
    type: str
seealso:
  - module: ember.blockstore.backup
"""

EXAMPLES = r"""
- name: List the backups of a volume
  ember.blockstore.backup_info:
    store: /srv/ember-backups
    volume: db01-data
  register: info

- name: Show the latest one
  ansible.builtin.debug:
    msg: "{{ info.backups | last }}"
"""

RETURN = r"""
backups:
  description: The backups, oldest first (by creation time, then volume and name).
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Backup name., type: str, sample: nightly-20261120}
    volume: {description: Volume name., type: str, sample: db01-data}
    size_bytes: {description: Size of the backed-up volume., type: int, sample: 1073741824}
    chunk_size: {description: Chunk size in bytes., type: int, sample: 4194304}
    chunks: {description: Number of chunks (zero chunks included)., type: int, sample: 256}
    parent: {description: "The backup an incremental one was based on, or null (informational: each backup
                           restores on its own).", type: str, sample: nightly-20261119}
    incremental: {description: Whether the backup is incremental., type: bool, sample: true}
    method: {description: "V(full) or V(thin_delta).", type: str, sample: thin_delta}
    created_at: {description: When the backup was taken (UTC)., type: str, sample: "2026-11-20T01:00:12Z"}
    digest: {description: "sha256 over the chunks' sha256 digests in order (see M(ember.blockstore.backup)).",
             type: str, sample: 9f2c7c0d6b1b8a1e0e5c1d3b6a1f2e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f}
    sha256: {description: "sha256 of the whole volume when the backup read every byte, else null.", type: str,
             sample: null}
    stats:
      description: "V(bytes_read), V(bytes_written), V(chunks_new), V(chunks_reused), V(chunks_zero) of the
        backup run."
      type: dict
      sample: {bytes_read: 8388608, bytes_written: 1204, chunks_new: 1, chunks_reused: 254, chunks_zero: 1}
    codec: {description: "Codec of the backup's new chunks.", type: str, sample: zstd}
    description: {description: The backup's description or null., type: str, sample: null}
    metadata: {description: The backup's metadata., type: dict, sample: {}}
    snapshot: {description: "The LV that was read (C(<vg>/<lv>)).", type: str,
               sample: ember-thin/bkbase-db01-data+nightly-20261120}
unreadable:
  description: Manifests that could not be read, each C({path, error}).
  returned: always
  type: list
  elements: dict
  sample: []
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._backup import validate_backup_name
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, validate_volume_name
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.backup_store import ChunkStore, StoreError

KEYS = ("name", "volume", "size_bytes", "chunk_size", "parent", "incremental", "method", "created_at", "digest",
        "sha256", "stats", "codec", "description", "metadata")


def backup_info(manifest):
    """One reported backup of a manifest."""
    out = {key: manifest.get(key) for key in KEYS}
    out["chunks"] = len(manifest["chunks"])
    out["snapshot"] = manifest.get("source")
    return out


def main():
    module = AnsibleModule(argument_spec=dict(store=dict(type="path", required=True), volume=dict(type="str"),
                                              name=dict(type="str")),
                           supports_check_mode=True)
    params = module.params
    try:
        if params["volume"] is not None:
            validate_volume_name(params["volume"], "volume")
        if params["name"] is not None:
            validate_backup_name(params["name"], "name")
    except NameError_ as exc:
        module.fail_json(msg=str(exc))
    store = ChunkStore(params["store"])
    unreadable = []
    try:
        manifests = store.manifests(params["volume"], errors=unreadable) if store.exists() else []
    except (StoreError, OSError) as exc:
        module.fail_json(msg="backup store %s cannot be read: %s" % (store.path, exc))
    for problem in unreadable:
        module.warn(problem["error"])
    backups = [backup_info(m) for m in manifests if params["name"] in (None, m["name"])]
    module.exit_json(changed=False, backups=backups, unreadable=unreadable)


if __name__ == "__main__":
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: ledger
short_description: Write the placement ledger on a storage node (compare-and-swap on its generation)
version_added: 0.2.0
author: ember.blockstore contributors (@ember-blockstore)
description:
  - Every storage node keeps a copy of the placement ledger, a JSON file recording on which host and pool each
    managed volume lives, so that a plan knows about the volumes of a node that does not answer and never
    re-creates them elsewhere. See C(docs/design.md) of the collection for the design and its failure cases.
  - The file is replaced atomically (temporary file, fsync, rename, fsync of the directory) under the host lock
    that the C(volume), C(attachment) and C(connection) modules also hold.
  - Compare-and-swap on the generation. When the placements on the node differ from O(volumes) and the node's
    generation is not O(expected_generation) (another run wrote the ledger after this run's plan was made), the
    module fails and changes nothing (a stale plan). When the placements are already the same, nothing is written.
  - The C(blockstore) role computes the arguments with the P(ember.blockstore.ledger_intent_args#filter) and
    P(ember.blockstore.ledger_final_args#filter) filters; an
    operator does not normally call this module by hand.
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows the node's generation and placements before and after.
options:
  volumes:
    description:
      - The placements to record, volume name to a dict with C(host) (inventory host name of the storage node),
        C(pool_id) (C(host@backend)) and C(status) (V(creating), V(available) or V(deleting)).
    type: dict
    required: true
  generation:
    description: Generation number to write (one more than the highest generation the plan read).
    type: int
    required: true
  expected_generation:
    description: Generation this node's ledger had when the plan read it.
    type: int
    required: true
  written_by:
    description: Who writes (recorded in the file, for the operator).
    type: str
    default: ember.blockstore
  path:
    description: Path of the ledger file.
    type: path
    default: /var/lib/ember-blockstore/ledger.json
  on_conflict:
    description:
      - What to do when the node's generation is not O(expected_generation). V(fail) (before any change, the
        intent of a plan) refuses the stale plan. V(keep) (after the changes, the final placements) keeps the
        newer copy another run wrote and reports no change.
    type: str
    choices: [fail, keep]
    default: fail
  lock_timeout:
    description: Seconds to wait for the host lock held by another run before failing.
    type: int
    default: 1800
"""

EXAMPLES = r"""
- name: Record that vol1 is being created on stor1's thin pool
  ember.blockstore.ledger:
    volumes:
      vol1: {host: stor1, pool_id: stor1@thin, status: creating}
    generation: 8
    expected_generation: 7
"""

RETURN = r"""
msg:
  description: Why nothing was written although the placements differ (O(on_conflict=keep) and a newer copy).
  type: str
  returned: when a newer copy was kept
  sample: "kept generation 9 written by ember.blockstore run 2026-11-30T05:40:06Z: newer than this run's plan"
generation:
  description: The ledger's generation on this node after the run (unchanged in check mode).
  type: int
  returned: always
  sample: 8
previous_generation:
  description: The ledger's generation on this node before the run (0 when there was no file).
  type: int
  returned: always
  sample: 7
written:
  description: Whether the file was written (always false in check mode, where C(changed) says it would be).
  type: bool
  returned: always
volumes:
  description: The placements recorded on this node after the run.
  type: dict
  returned: always
  sample: {vol1: {host: stor1, pool_id: stor1@thin, status: available}}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._ledger import (
    LEDGER_FORMAT,
    LedgerError,
    LockTimeout,
    host_lock,
    read_ledger,
    same_content,
    validate_ledger,
    write_ledger,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            volumes=dict(type="dict", required=True),
            generation=dict(type="int", required=True),
            expected_generation=dict(type="int", required=True),
            written_by=dict(type="str", default="ember.blockstore"),
            path=dict(type="path", default="/var/lib/ember-blockstore/ledger.json"),
            lock_timeout=dict(type="int", default=1800),
            on_conflict=dict(type="str", choices=["fail", "keep"], default="fail"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        desired = validate_ledger({"generation": params["generation"], "volumes": params["volumes"]}, "volumes")
    except LedgerError as exc:
        module.fail_json(msg=str(exc))
    try:
        with host_lock("ledger module", params["lock_timeout"]):
            try:
                current = read_ledger(params["path"])
            except LedgerError as exc:
                module.fail_json(msg=str(exc))
            result = dict(written=False, previous_generation=current["generation"],
                          generation=current["generation"], volumes=current["volumes"])
            if same_content(current, desired):
                module.exit_json(changed=False, written=False, previous_generation=current["generation"],
                                 generation=current["generation"], volumes=current["volumes"])
            if current["generation"] != params["expected_generation"] and params["on_conflict"] == "keep":
                # The final write of a run whose changes are made: a newer copy from another run stays.
                module.exit_json(changed=False, written=False, previous_generation=current["generation"],
                                 generation=current["generation"], volumes=current["volumes"],
                                 msg="kept generation %d written by %s: newer than this run's plan"
                                     % (current["generation"], current.get("written_by") or "?"))
            if current["generation"] != params["expected_generation"]:
                module.fail_json(
                    msg="stale plan: the placement ledger on this node is at generation %d (written by %s at %s), "
                        "this run planned from generation %d; another run changed the storage nodes since this "
                        "plan was made. Nothing was changed; run again to plan from the current state"
                        % (current["generation"], current.get("written_by") or "?", current.get("written_at") or "?",
                           params["expected_generation"]), **result)
            if params["generation"] <= current["generation"]:
                module.fail_json(msg="generation: %d is not above the node's generation %d"
                                 % (params["generation"], current["generation"]), **result)
            new = {"format": LEDGER_FORMAT, "generation": params["generation"], "volumes": desired["volumes"],
                   "written_by": params["written_by"],
                   "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
            if module.check_mode:
                # Nothing is written: the node keeps its generation, and a later task of the same check run
                # compares against that (not against the generation this run would have written).
                module.exit_json(changed=True, written=False, previous_generation=current["generation"],
                                 generation=current["generation"], volumes=current["volumes"],
                                 diff={"before": {"generation": current["generation"], "volumes": current["volumes"]},
                                       "after": {"generation": new["generation"], "volumes": new["volumes"]}})
            write_ledger(new, params["path"])
            module.exit_json(changed=True, written=True, previous_generation=current["generation"],
                             generation=new["generation"], volumes=new["volumes"],
                             diff={"before": {"generation": current["generation"], "volumes": current["volumes"]},
                                   "after": {"generation": new["generation"], "volumes": new["volumes"]}})
    except LockTimeout as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg="ledger %s: %s" % (params["path"], exc))


if __name__ == "__main__":
    main()

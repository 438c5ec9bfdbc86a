# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that split a plan into the batch items of each converge phase (used by the blockstore role)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.module_utils import _backup_policy, _converge


def _wrap(func):
    def run(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (KeyError, ValueError, TypeError) as exc:
            raise AnsibleFilterError("%s: %s" % (func.__name__, exc)) from exc
    run.__name__ = func.__name__
    run.__doc__ = func.__doc__
    return run


class FilterModule:
    """volume_items, manage_lvs, image_uploads, snapshot_items, group_snapshot_items, freeze_items,
    group_snapshots_pending, attachment_items, connect_items, disconnect_items, report_table, backup_items,
    migration_items."""

    def filters(self):
        return {
            "volume_items": _wrap(_converge.volume_items),
            "manage_lvs": _wrap(_converge.manage_lvs),
            "image_uploads": _wrap(_converge.image_uploads),
            "snapshot_items": _wrap(_converge.snapshot_items),
            "group_snapshot_items": _wrap(_converge.group_snapshot_items),
            "freeze_items": _wrap(_converge.freeze_items),
            "group_snapshots_pending": _wrap(_converge.group_snapshots_pending),
            "attachment_items": _wrap(_converge.attachment_items),
            "connect_items": _wrap(_converge.connect_items),
            "disconnect_items": _wrap(_converge.disconnect_items),
            "report_table": _wrap(_converge.format_table),
            "backup_items": _wrap(_backup_policy.backup_items),
            "migration_items": _wrap(_converge.migration_items),
        }

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Size filters: ``'10GiB' | ember.blockstore.to_bytes`` -> 10737418240 (``1G`` = 10**9, ``1GiB`` = 2**30);
``10737418240 | ember.blockstore.human_size`` -> ``'10 GiB'``."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, format_size, parse_size


def to_bytes(value, field="size"):
    try:
        return parse_size(value, field)
    except SizeError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    """to_bytes, human_size."""

    def filters(self):
        return {"to_bytes": to_bytes, "human_size": format_size}

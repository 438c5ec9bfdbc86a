# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private files (they hold CHAP secrets): written atomically, mode 0600 from the first byte."""

from __future__ import annotations

import os
import tempfile

__all__ = ["write_private"]


def write_private(path, content):
    """Write ``content`` to ``path`` atomically (temp file + fsync + rename), mode 0600."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ember-", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

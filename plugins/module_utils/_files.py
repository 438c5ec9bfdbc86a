# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Files written atomically (temp file, fsync, rename, fsync of the directory): a crash leaves the old or the new
content, never a mix. Private files (they hold CHAP secrets) are mode 0600 from the first byte."""

from __future__ import annotations

import os
import tempfile

__all__ = ["write_atomic", "write_private"]


def write_atomic(path, content, mode):
    """Write ``content`` to ``path`` atomically with ``mode`` from the first byte: temp file in the same
    directory, fsync, rename, then fsync of the directory so the rename itself survives a crash."""
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".ember-", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    dir_fd = os.open(directory or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_private(path, content):
    """:func:`write_atomic` with mode 0600 (CHAP secrets)."""
    write_atomic(path, content, 0o600)

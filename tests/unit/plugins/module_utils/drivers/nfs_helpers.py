# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A module stand-in for the NFS driver tests: its ``run_command`` really runs the commands (truncate, fallocate,
dd, cp, stat, timeout) on a temporary directory that stands in for a mounted share, except those a test answers
itself (``hooks``: the mount command, a simulated full share or an old server without fallocate)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from collections import namedtuple

StatVfs = namedtuple("StatVfs", "f_frsize f_blocks f_bavail")


class LocalModule:
    """``run_command`` runs ``args`` for real unless a hook answers: each hook is ``hook(args) -> (rc, out, err)``
    or None (not this command). Every command is recorded in ``calls``."""

    def __init__(self):
        self.params = {}
        self.no_log_values = set()
        self.hooks = []
        self.calls = []

    def run_command(self, args, check_rc=False, environ_update=None, data=None):
        args = [str(a) for a in args]
        self.calls.append(args)
        for hook in self.hooks:
            answer = hook(args)
            if answer is not None:
                return answer
        proc = subprocess.run(args, capture_output=True, text=True, input=data, check=False,
                              env=dict(os.environ, **(environ_update or {})))
        return proc.returncode, proc.stdout, proc.stderr

    def get_bin_path(self, name, *args, **kwargs):
        return shutil.which(name)

    def ran(self, name):
        """The commands run whose program (after a ``timeout`` prefix) is ``name``."""
        return [c for c in self.calls if _program(c) == name]


def _program(args):
    if args and args[0] == "timeout":
        rest = [a for a in args[1:] if not a.startswith("--")]
        return rest[1] if len(rest) > 1 else None
    return args[0] if args else None


def command_hook(name, answer):
    """A hook for the commands whose program is ``name``: ``answer(args)`` gives (rc, out, err)."""
    def hook(args):
        return answer(args) if _program(args) == name else None
    return hook


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_pattern(path, size, seed=1, offset=0):
    """Write ``size`` bytes of a deterministic, non-repeating pattern at ``offset`` of ``path``."""
    block = hashlib.sha256(str(seed).encode()).digest() * 2048  # 64 KiB
    with open(path, "r+b") as handle:
        handle.seek(offset)
        left = size
        while left > 0:
            chunk = block[:min(left, len(block))]
            handle.write(chunk)
            left -= len(chunk)


def mountinfo_line(share, path, fstype="nfs4"):
    return "701 27 0:64 / %s rw,relatime shared:400 - %s %s rw,vers=4.2,hard,proto=tcp\n" % (path, fstype, share)

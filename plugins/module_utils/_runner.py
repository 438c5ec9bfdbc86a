# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run storage commands through ``AnsibleModule.run_command`` with a stable locale.

Commands are argument lists (never shell strings). Output is parsed from machine-readable forms, so the
environment is pinned to ``LC_ALL=C LANGUAGE=C`` as community.general's ``_lvm`` CmdRunner does.
"""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils import _ledger

__all__ = ["CommandError", "Runner", "mask"]

MASK = "********"

_ENV = {"LC_ALL": "C", "LANGUAGE": "C", "LANG": "C"}


def mask(text, secrets):
    """``text`` with every secret (longest first) replaced by ``********``; non-strings are returned as they are."""
    if not isinstance(text, str) or not secrets:
        return text
    for secret in sorted((s for s in secrets if isinstance(s, str) and s), key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


class CommandError(Exception):
    """A command exited non-zero. Carries the argument list, rc, stdout and stderr for ``fail_json``, with every
    value of ``secrets`` masked (tgt-admin prints the tgtadm line it ran, password included, when one fails)."""

    def __init__(self, args, rc, out, err, msg=None, secrets=()):
        secrets = set(secrets or ())
        self.args_list = [mask(str(a), secrets) for a in args]
        self.rc = rc
        self.out = mask(out, secrets)
        self.err = mask(err, secrets)
        text = msg or "%s failed (rc=%s): %s" % (" ".join(self.args_list), rc, (self.err or self.out or "").strip())
        super().__init__(mask(text, secrets))

    def context(self):
        """Keyword arguments for ``module.fail_json``."""
        return {"cmd": self.args_list, "rc": self.rc, "stdout": self.out, "stderr": self.err}


class Runner:
    """Thin wrapper over ``module.run_command`` that records each command it ran.

    ``run(args, check=True)`` returns ``(rc, out, err)`` and raises :class:`CommandError` when ``check`` is true
    and rc != 0. ``ok_rcs`` lists extra exit codes that are not errors (iscsiadm's 21 = "no records").

    ``lock=True`` (modules that change a host) takes the host lock (:func:`_ledger.host_lock`) before the first
    command and holds it until the module process exits, so the state a module reads is the state it changes and
    two runs never interleave on one host. ``lock_timeout`` comes from the module's option of that name when it
    has one (default 1800 s); a timeout fails the module naming the holder.

    The module's ``no_log_values`` (the secrets it knows) are masked in every :class:`CommandError`.
    """

    def __init__(self, module, lock=False):
        self.module = module
        self.commands = []
        self._lock = None
        if lock:
            self._take_lock()

    def _take_lock(self):
        timeout = (self.module.params or {}).get("lock_timeout") or 1800
        name = getattr(self.module, "_name", None) or "ember.blockstore module"
        self._lock = _ledger.host_lock(name, timeout)  # looked up at call time (tests redirect the lock)
        try:
            self._lock.__enter__()
        except _ledger.LockTimeout as exc:
            self._lock = None
            self.module.fail_json(msg=str(exc))

    def run(self, args, check=True, ok_rcs=(0,), data=None):
        args = [str(a) for a in args]
        self.commands.append(args)
        rc, out, err = self.module.run_command(args, check_rc=False, environ_update=_ENV, data=data)
        if check and rc not in ok_rcs:
            raise CommandError(args, rc, out, err, secrets=self.secrets())
        return rc, out, err

    def secrets(self):
        return set(getattr(self.module, "no_log_values", None) or ())

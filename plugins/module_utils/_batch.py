# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The steps every batch module (``volume``, ``attachment``, ``connection``) takes, in this order:

1. ``AnsibleModule(..., supports_check_mode=True, **batch_form(...))``, then ``Batch(module, ...)``: the items
   (the batch list, or the single form's options as a one-item list) and the field that names them in messages
   (``volumes[0].size``);
2. ``read_state(module, read)``: read the host's state through drivers; a failing command fails the module with
   its context (``cmd``, ``rc``, ``stdout``, ``stderr``);
3. ``Batch.decided(actions, errors)``: the module's ``decide()`` is pure; any error fails the module before the
   first change, naming the item (``msg`` joins them, ``errors`` lists them, the result list is empty);
4. ``Batch.apply_each(actions, apply)``: each action in request order through a driver; in check mode nothing is
   applied and the decided results are returned. An error fails the module with the results so far, the failing
   item marked ``failed: true``, the message naming the item and, for a command, its context.
   ``Batch.apply_batched(actions, apply_batch)`` instead, for a module that applies its actions together: every
   item's outcome is returned, each failed one marked and named;
5. the module's own ``exit_json`` (``changed=Batch.changed(results)``, the result list, its diff).

Plain functions and one small class: each module's ``main()`` calls these steps itself, so what it does between
them (masking secrets, a check that only a real run needs) stays visible there.
"""

from __future__ import annotations

from ansible_collections.ember.blockstore.plugins.module_utils._argspec import batch_items
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError

__all__ = ["Batch", "batch_form", "read_state"]


def batch_form(list_key, single_key, required_by=None):
    """``AnsibleModule`` keyword arguments of a module with a batch list (``volumes``) and a single form
    (``name``): they exclude each other and one of them is required; ``required_by`` as AnsibleModule takes it."""
    return dict(mutually_exclusive=[(list_key, single_key)], required_one_of=[(list_key, single_key)],
                required_by=required_by or {})


def read_state(module, read):
    """``read()`` (which reads the host through drivers); a :class:`CommandError` fails the module with the
    command's context."""
    try:
        return read()
    except CommandError as exc:
        module.fail_json(msg=str(exc), **exc.context())


class Batch:
    """One run of a batch module over its items.

    ``list_key``: the option and the result key of the batch (``volumes``). ``item_options`` and ``single_field``
    (``volume``) for a module with a single form. ``result_of(act)``: the returned item of a decided (or applied)
    action. ``describe(act)``: how a failure names the item (``volume db01``). ``failed_changed``: what
    ``changed`` says on the failing item (False: the module's apply changes nothing when it fails; None: keep the
    decided value). ``catch``: the exceptions of ``apply`` that fail the item (anything else is a bug).
    """

    def __init__(self, module, list_key, result_of, describe, item_options=None, single_field=None,
                 failed_changed=False, catch=(CommandError, RuntimeError)):
        self.module = module
        self.list_key = list_key
        self.result_of = result_of
        self.describe = describe
        self.failed_changed = failed_changed
        self.catch = catch
        if item_options is not None:
            self.items, self.field = batch_items(module.params, list_key, item_options, single_field)
        else:
            self.items, self.field = module.params[list_key], list_key

    def fail(self, msg, **extra):
        self.module.fail_json(msg=msg, **dict({self.list_key: []}, **extra))

    def decided(self, actions, errors):
        """``actions`` when ``errors`` is empty; otherwise the module fails before any change."""
        if errors:
            self.fail("; ".join(errors), errors=errors)
        return actions

    def failed_result(self, act):
        out = dict(self.result_of(act))
        if self.failed_changed is not None:
            out["changed"] = self.failed_changed
        out["failed"] = True
        return out

    def apply_each(self, actions, apply):
        """Apply ``actions`` in order with ``apply(act)`` (not in check mode) and return their results.

        An action that carries ``refused`` (a reason its decide found that fails this item at its turn, after the
        items before it, in check mode too) fails there without being applied."""
        results = []
        for act in actions:
            try:
                if act.get("refused"):
                    raise RuntimeError(act["refused"])
                if not self.module.check_mode:
                    apply(act)
            except self.catch as exc:
                results.append(self.failed_result(act))
                extra = exc.context() if isinstance(exc, CommandError) else {}
                extra[self.list_key] = results
                self.module.fail_json(msg="%s: %s" % (self.describe(act), exc), **extra)
            results.append(self.result_of(act))
        return results

    def apply_batched(self, actions, apply_batch):
        """Like :meth:`apply_each` for a module that applies its actions together (``volume``: one ``lvm`` shell
        for every create and extend): ``apply_batch(actions)`` returns ``[(act, error or None)]`` for the items it
        attempted. Every item's outcome is returned; when any failed, the module fails naming each (the first
        command's context is added)."""
        if self.module.check_mode:
            return [self.result_of(act) for act in actions]
        results, failures, extra = [], [], {}
        for act, exc in apply_batch(actions):
            if exc is None:
                results.append(self.result_of(act))
                continue
            results.append(self.failed_result(act))
            failures.append("%s: %s" % (self.describe(act), exc))
            if isinstance(exc, CommandError) and not extra:
                extra = exc.context()
        if failures:
            self.module.fail_json(msg="; ".join(failures), **dict({self.list_key: results}, **extra))
        return results

    @staticmethod
    def changed(results):
        return any(r["changed"] for r in results)

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cinder's extra spec operators (cinder/scheduler/filters/extra_specs_ops.py ``_op_methods`` l. 25-38 and
``match`` l. 41-77 at Cinder master ab09bc39)."""

from __future__ import annotations

import operator

__all__ = ["OPS", "bool_from_string", "match"]

_TRUE_STRINGS = ("1", "t", "true", "on", "y", "yes")


def bool_from_string(subject):
    """Interpret a value as a boolean like ``oslo_utils.strutils.bool_from_string`` (non-strict): a bool is
    returned as is; anything else is turned into a string and is true only for 1/t/true/on/y/yes (any case)."""
    if isinstance(subject, bool):
        return subject
    if not isinstance(subject, str):
        subject = str(subject)
    return subject.strip().lower() in _TRUE_STRINGS


def _num_op(compare):
    return lambda x, y: compare(float(x), float(y))


# extra_specs_ops.py ``_op_methods``
OPS = {
    "=": _num_op(operator.ge),  # sic: Cinder's ``=`` means "at least"
    "<in>": lambda x, y: y in x,
    "<is>": lambda x, y: bool_from_string(x) is bool_from_string(y),
    "==": _num_op(operator.eq),
    "!=": _num_op(operator.ne),
    ">=": _num_op(operator.ge),
    "<=": _num_op(operator.le),
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
}


def match(value, req):
    """Whether capability ``value`` satisfies extra spec ``req``, as Cinder's ``extra_specs_ops.match``.

    ``req`` starts with an operator: ``=`` (numeric >=), ``==`` ``!=`` ``>=`` ``<=`` (numeric), ``s==`` ``s!=``
    ``s<`` ``s<=`` ``s>`` ``s>=`` (string), ``<in>`` (substring), ``<is>`` (boolean) or ``<or> a <or> b`` (any of);
    without an operator it is compared for equality with the capability as reported. Only the first word after
    an operator counts. Deviations, each where Cinder would raise instead of answering: a comparison that raises
    ``TypeError`` (``s<`` against a number) does not match, and ``<or>`` with nothing after it does not match.
    """
    if req is None:
        return value is None
    words = req.split()
    op = words.pop(0) if words else None
    method = OPS.get(op)
    if op != "<or>" and method is None:
        return value == req
    if value is None:
        return False
    if op == "<or>":  # <or> v1 <or> v2 <or> v3
        while words:
            if words.pop(0) == value:
                return True
            if not words:
                break
            words.pop(0)  # the next <or>
        return False
    try:
        return bool(words) and bool(method(value, words[0]))
    except (ValueError, TypeError):
        return False

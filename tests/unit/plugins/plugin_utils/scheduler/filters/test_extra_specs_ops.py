# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""extra_specs_ops.py: Cinder's own cases (cinder/tests/unit/scheduler/test_host_filters.py,
``ExtraSpecsOpsTestCase``), then this project's."""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.extra_specs_ops import (
    bool_from_string,
    match,
)

# ExtraSpecsOpsTestCase, every ddt case: (test name, value, req, matches). Identical results.
CINDER_CASES = [
    ("test_extra_specs_fails_with_bogus_ops", "4", "> 2", False),
    ("test_extra_specs_matches_simple", "1", "1", True),
    ("test_extra_specs_matches_simple", "", "1", False),
    ("test_extra_specs_matches_simple", "3", "1", False),
    ("test_extra_specs_matches_simple", "222", "2", False),
    ("test_extra_specs_matches_with_op_eq", "123", "= 123", True),
    ("test_extra_specs_matches_with_op_eq", "124", "= 123", True),
    ("test_extra_specs_matches_with_op_eq", "34", "= 234", False),
    ("test_extra_specs_matches_with_op_eq", "34", "=", False),
    ("test_extra_specs_matches_with_op_not_eq", "2", "<= 10", True),
    ("test_extra_specs_matches_with_op_not_eq", "3", "<= 2", False),
    ("test_extra_specs_matches_with_op_not_eq", "3", ">= 1", True),
    ("test_extra_specs_matches_with_op_not_eq", "2", ">= 3", False),
    ("test_extra_specs_matches_with_op_seq", "123", "s== 123", True),
    ("test_extra_specs_matches_with_op_seq", "1234", "s== 123", False),
    ("test_extra_specs_matches_with_op_seq", "1234", "s!= 123", True),
    ("test_extra_specs_matches_with_op_seq", "123", "s!= 123", False),
    ("test_extra_specs_fails_with_op_not_seq", "1000", "s>= 234", False),
    ("test_extra_specs_fails_with_op_not_seq", "1234", "s<= 1000", False),
    ("test_extra_specs_fails_with_op_not_seq", "2", "s< 12", False),
    ("test_extra_specs_fails_with_op_not_seq", "12", "s> 2", False),
    ("test_extra_specs_matches_with_op_in", "12311321", "<in> 11", True),
    ("test_extra_specs_matches_with_op_in", "12311321", "<in> 12311321", True),
    ("test_extra_specs_matches_with_op_in", "12311321", "<in> 12311321 <in>", True),
    ("test_extra_specs_matches_with_op_in", "12310321", "<in> 11", False),
    ("test_extra_specs_matches_with_op_in", "12310321", "<in> 11 <in>", False),
    ("test_extra_specs_matches_with_op_is", True, "<is> True", True),
    ("test_extra_specs_matches_with_op_is", False, "<is> False", True),
    ("test_extra_specs_matches_with_op_is", False, "<is> Nonsense", True),
    ("test_extra_specs_matches_with_op_is", True, "<is> False", False),
    ("test_extra_specs_matches_with_op_is", False, "<is> True", False),
    ("test_extra_specs_matches_with_op_or", "12", "<or> 11 <or> 12", True),
    ("test_extra_specs_matches_with_op_or", "12", "<or> 11 <or> 12 <or>", True),
    ("test_extra_specs_matches_with_op_or", "13", "<or> 11 <or> 12", False),
    ("test_extra_specs_matches_with_op_or", "13", "<or> 11 <or> 12 <or>", False),
    ("test_extra_specs_matches_none_req", None, None, True),
    ("test_extra_specs_matches_none_req", "foo", None, False),
]


@pytest.mark.parametrize(("name", "value", "req", "matches"), CINDER_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CINDER_CASES)])
def test_cinder_extra_specs_ops_cases(name, value, req, matches):
    assert match(value, req) is matches


@pytest.mark.parametrize(("value", "req", "matches"), [
    # '=' is numeric "at least", as in Cinder
    (10, "= 5", True),
    (5, "= 5", True),
    (4, "= 5", False),
    ("10", "= 5", True),
    ("5.0", "== 5", True),
    (5, "== 6", False),
    (5, "!= 6", True),
    (5, "!= 5", False),
    (5, ">= 5", True),
    (4, ">= 5", False),
    (5, "<= 5", True),
    (6, "<= 5", False),
    (True, ">= 1", True),
    ("abc", "== 5", False),  # not a number: no match, no error
    # string comparisons
    ("abc", "s== abc", True),
    ("abc", "s== abd", False),
    ("abc", "s!= abd", True),
    ("abc", "s!= abc", False),
    ("abc", "s< abd", True),
    ("abd", "s< abc", False),
    ("abc", "s<= abc", True),
    ("abd", "s> abc", True),
    ("abc", "s> abc", False),
    ("abc", "s>= abc", True),
    ("abb", "s>= abc", False),
    (5, "s< 6", False),  # TypeError in Cinder; no match here
    # substring
    ("lvm-thin", "<in> thin", True),
    ("lvm", "<in> thin", False),
    (5, "<in> 5", False),
    # booleans
    (True, "<is> True", True),
    (True, "<is> true", True),
    ("True", "<is> True", True),
    ("yes", "<is> True", True),
    ("1", "<is> True", True),
    (False, "<is> True", False),
    (False, "<is> False", True),
    ("off", "<is> False", True),
    # any of
    ("b", "<or> a <or> b", True),
    ("a", "<or> a <or> b <or> c", True),
    ("c", "<or> a <or> b <or> c", True),
    ("d", "<or> a <or> b <or> c", False),
    ("a", "<or> a", True),
    ("b", "<or> a", False),
    (True, "<or> True <or> False", False),  # compared as reported, like Cinder
    # no operator: plain equality with the capability as reported
    ("lvm-thin", "lvm-thin", True),
    ("lvm", "lvm-thin", False),
    ("two words", "two words", True),
    (True, "True", False),
    (10, "10", False),
    # only the first word after an operator counts
    ("5", "== 5 6", True),
    # None
    (None, "<is> True", False),
    (None, "s== x", False),
    (None, None, True),
    ("x", None, False),
    ("", "", True),
])
def test_match(value, req, matches):
    assert match(value, req) is matches


@pytest.mark.parametrize(("value", "expected"), [
    (True, True), (False, False), ("t", True), ("TRUE", True), (" on ", True), ("y", True), (1, True),
    ("false", False), ("no", False), ("", False), ("maybe", False), (0, False), (None, False),
])
def test_bool_from_string(value, expected):
    assert bool_from_string(value) is expected


def test_or_without_values_does_not_match():
    # Cinder raises IndexError here (words.pop(0) on an empty list); the project answers "no match".
    assert match("a", "<or>") is False

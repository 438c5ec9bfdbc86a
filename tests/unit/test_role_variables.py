"""Every role of the collection shares one variable namespace: public ``blockstore_*`` and internal
``__blockstore_*`` (the convention .ansible-lint documents in place of ``var-naming[no-role-prefix]``)."""

import glob
import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ROLES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(ROOT, "roles", "*")) if os.path.isdir(p))
PREFIX = re.compile(r"^(__)?blockstore_[a-z0-9_]+$")


def load(path):
    with open(path) as handle:
        return yaml.safe_load(handle) or {}


def defined_names(role):
    """(file, name) of every variable the role defines: defaults, vars, argument specs, set_fact, register."""
    base = os.path.join(ROOT, "roles", role)
    for sub in ("defaults", "vars"):
        for path in glob.glob(os.path.join(base, sub, "*.yml")):
            for name in load(path):
                yield path, name
    specs = os.path.join(base, "meta", "argument_specs.yml")
    if os.path.exists(specs):
        for entry in load(specs).get("argument_specs", {}).values():
            for name in entry.get("options") or {}:
                yield specs, name
    for path in glob.glob(os.path.join(base, "tasks", "*.yml")) + glob.glob(os.path.join(base, "handlers", "*.yml")):
        for task in walk_tasks(load(path) or []):
            for name in (task.get("ansible.builtin.set_fact") or task.get("set_fact") or {}):
                if name != "cacheable":
                    yield path, name
            if task.get("register"):
                yield path, task["register"]


def walk_tasks(tasks):
    for task in tasks:
        if not isinstance(task, dict):
            continue
        yield task
        for key in ("block", "rescue", "always"):
            yield from walk_tasks(task.get(key) or [])


@pytest.mark.parametrize("role", ROLES)
def test_role_variables_share_the_blockstore_prefix(role):
    wrong = sorted({"%s: %s" % (os.path.relpath(path, ROOT), name)
                    for path, name in defined_names(role) if not PREFIX.match(str(name))})
    assert not wrong, "variables outside the blockstore_/__blockstore_ namespace:\n" + "\n".join(wrong)

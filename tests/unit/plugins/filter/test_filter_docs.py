"""Every filter name has its own documentation (a plugins/filter/<name>.yml, or DOCUMENTATION in a file that
holds only that filter), so ansible-doc and Galaxy list them all, and the docs name the filter's real options."""

import ast
import inspect
import os

import pytest
import yaml
from ansible_collections.ember.blockstore.plugins.filter import converge, schedule, size

FILTER_DIR = os.path.dirname(os.path.abspath(schedule.__file__))
FILTERS = {}
for _module in (converge, schedule, size):
    FILTERS.update(_module.FilterModule().filters())


def documentation(name):
    path = os.path.join(FILTER_DIR, name + ".yml")
    if os.path.exists(path):
        with open(path) as handle:
            return yaml.safe_load(handle)["DOCUMENTATION"]
    path = os.path.join(FILTER_DIR, name + ".py")
    if os.path.exists(path):
        with open(path) as handle:
            for node in ast.parse(handle.read()).body:
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "DOCUMENTATION":
                    return yaml.safe_load(node.value.value)
    return None


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_every_filter_is_documented_with_its_options(name):
    doc = documentation(name)
    assert doc, "filter %s has no plugins/filter/%s.yml" % (name, name)
    assert doc["name"] == name
    func = FILTERS[name]
    # The converge filters are wrapped (to turn errors into AnsibleFilterError): document the wrapped function.
    while func.__closure__ and callable(func.__closure__[0].cell_contents):
        func = func.__closure__[0].cell_contents
    params = list(inspect.signature(func).parameters)
    options = set(doc.get("options", {})) - {"_input"}
    assert options <= set(params[1:]), "documented options %s are not parameters of %s%s" % (
        sorted(options - set(params[1:])), name, params)

"""Every filter name has its own documentation (a plugins/filter/<name>.yml, or DOCUMENTATION in a file that
holds only that filter), so ansible-doc and Galaxy list them all, and the docs name the filter's real options."""

import ast
import glob
import importlib
import inspect
import os

import pytest
import yaml

FILTER_DIR = os.path.join(os.path.dirname(os.path.abspath(importlib.import_module(
    "ansible_collections.ember.blockstore.plugins.filter").__path__[0])), "filter")
FILTERS = {}
for _path in sorted(glob.glob(os.path.join(FILTER_DIR, "*.py"))):
    _module = importlib.import_module("ansible_collections.ember.blockstore.plugins.filter."
                                      + os.path.basename(_path)[:-3])
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
    signature = inspect.signature(func)
    if any(p.kind == p.VAR_KEYWORD for p in signature.parameters.values()):
        return  # keyword arguments passed on: nothing to compare here
    params = list(signature.parameters)
    options = set(doc.get("options", {})) - {"_input"}
    assert options <= set(params[1:]), "documented options %s are not parameters of %s%s" % (
        sorted(options - set(params[1:])), name, params)


def test_every_filter_doc_names_a_filter():
    orphans = sorted(os.path.basename(path)[:-4] for path in glob.glob(os.path.join(FILTER_DIR, "*.yml"))
                     if os.path.basename(path)[:-4] not in FILTERS)
    assert not orphans, "plugins/filter/*.yml without a filter of that name: %s" % orphans

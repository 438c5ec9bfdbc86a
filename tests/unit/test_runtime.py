"""meta/runtime.yml: every redirected (renamed) module points at a module of this collection, is deprecated with a
removal version after the current one, and is no longer used by the collection's own content."""

import os
import re

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(path):
    with open(os.path.join(ROOT, path)) as handle:
        return yaml.safe_load(handle)


RUNTIME = load("meta/runtime.yml")
MODULE_ROUTES = RUNTIME.get("plugin_routing", {}).get("modules", {})


def version(text):
    return tuple(int(part) for part in str(text).split("."))


def test_backend_facts_redirects_to_backend_info():
    route = MODULE_ROUTES["backend_facts"]
    assert route["redirect"] == "ember.blockstore.backend_info"
    assert route["deprecation"]["removal_version"] == "1.0.0"
    assert "ember.blockstore.backend_info" in route["deprecation"]["warning_text"]


@pytest.mark.parametrize("old", sorted(MODULE_ROUTES))
def test_redirects_are_deprecated_and_lead_to_a_module(old):
    route = MODULE_ROUTES[old]
    namespace, name, target = route["redirect"].split(".")
    assert (namespace, name) == ("ember", "blockstore")
    assert os.path.isfile(os.path.join(ROOT, "plugins", "modules", target + ".py")), route["redirect"]
    assert not os.path.exists(os.path.join(ROOT, "plugins", "modules", old + ".py")), old
    deprecation = route["deprecation"]
    assert version(deprecation["removal_version"]) > version(load("galaxy.yml")["version"])
    assert deprecation["warning_text"].strip()


@pytest.mark.parametrize("old", sorted(MODULE_ROUTES))
def test_the_collection_does_not_use_a_redirected_name(old):
    """Roles, playbooks and plugin documentation use the new name (a redirect warns on every use): no task runs the
    old one (``ember.blockstore.<old>:``) and no documentation links to it (``M(...)``, ``O(...#module:...)``)."""
    fqcn = re.escape("ember.blockstore." + old)
    pattern = re.compile(r"%s:|M\(%s\)|\(%s#" % (fqcn, fqcn, fqcn))
    found = []
    for top in ("roles", "playbooks", "plugins", "inventories", "docs"):
        for base, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith((".yml", ".yaml", ".py", ".md", ".j2")):
                    path = os.path.join(base, name)
                    with open(path, encoding="utf-8") as handle:
                        if pattern.search(handle.read()):
                            found.append(os.path.relpath(path, ROOT))
    assert found == []

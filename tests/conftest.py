"""Make the repository importable as ``ansible_collections.ember.blockstore`` for the tests.

The collection lives at the repository root; ``.collections/ansible_collections/ember/blockstore`` is a
relative symlink to it (also used by ansible.cfg's ``collections_path``). ``ansible_collections`` is a PEP 420
namespace package, so this path merges with the collections the ``ansible`` package installs.
"""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "ember", "blockstore")

# EMBER_COLLECTIONS_PATH: test an installed copy instead (make build-test installs the built tarball there).
if os.environ.get("EMBER_COLLECTIONS_PATH"):
    COLLECTIONS = os.environ["EMBER_COLLECTIONS_PATH"]
elif not os.path.islink(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    os.symlink(os.path.join("..", "..", ".."), LINK)
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


def pytest_report_header(config):
    import ansible_collections.ember.blockstore as collection

    return "ember.blockstore under test: %s" % os.path.realpath(list(collection.__path__)[0])

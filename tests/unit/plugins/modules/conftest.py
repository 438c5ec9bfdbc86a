# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures shared by the module tests."""

import pytest


@pytest.fixture()
def node_dir(tmp_path, monkeypatch):
    """An empty open-iscsi node directory the iscsiadm driver looks in, and a device that appears at once."""
    # Imported here: the collection loader is not set up yet when pytest imports this conftest.
    from ansible_collections.ember.blockstore.plugins.module_utils.drivers import iscsiadm
    directory = tmp_path / "nodes"
    directory.mkdir()
    monkeypatch.setattr(iscsiadm, "NODE_DIRS", (str(directory),))
    monkeypatch.setattr(iscsiadm.Iscsiadm, "wait_for_device", lambda self, path, timeout: "/dev/sdx")
    return directory

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``valid_backends`` filter as the lvm_backend role runs it: errors are filter errors naming the field, and the
thin pool keys before 0.2.0 (``pool``, ``pool_size``) come back under their new names with a deprecation warning."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible.utils.display import Display
from ansible_collections.ember.blockstore.plugins.filter.validate import FilterModule

valid_backends = FilterModule().filters()["valid_backends"]


@pytest.fixture
def deprecations(monkeypatch):
    seen = []
    monkeypatch.setattr(Display, "deprecated", lambda self, msg, version=None, collection_name=None, **kwargs:
                        seen.append((msg, version, collection_name)))
    return seen


def test_current_keys_pass_unchanged_without_a_warning(deprecations):
    backends = [{"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", "thin_pool": "tp",
                 "thin_pool_size": "95%VG"}]
    assert valid_backends(backends) is backends
    assert deprecations == []


def test_old_keys_are_renamed_with_a_deprecation(deprecations):
    backends = [{"name": "lvm-thick", "vg": "ember-thick"},
                {"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", "pool": "tp", "pool_size": "3GiB"}]
    assert valid_backends(backends, "backends") == [
        {"name": "lvm-thick", "vg": "ember-thick"},
        {"name": "lvm-thin", "driver": "lvm_thin", "vg": "ember-thin", "thin_pool": "tp", "thin_pool_size": "3GiB"}]
    assert deprecations == [
        ("backends[1].pool: the key is called thin_pool since release 0.2.0", "1.0.0", "ember.blockstore"),
        ("backends[1].pool_size: the key is called thin_pool_size since release 0.2.0", "1.0.0", "ember.blockstore")]


def test_both_names_are_a_filter_error_naming_both(deprecations):
    with pytest.raises(AnsibleFilterError, match=r"^blockstore_backends\[0\]: both thin_pool and pool are given"):
        valid_backends([{"name": "b", "vg": "vg0", "pool": "tp", "thin_pool": "tp"}])
    assert deprecations == []


def test_a_bad_field_is_a_filter_error_naming_it():
    with pytest.raises(AnsibleFilterError, match=r"^blockstore_backends\[0\]\.thin_pool_size: "):
        valid_backends([{"name": "b", "vg": "vg0", "thin_pool_size": "101%VG"}])

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.ember.blockstore.plugins.filter.size import FilterModule


def test_to_bytes_and_human_size():
    filters = FilterModule().filters()
    assert filters["to_bytes"]("3GiB") == 3 * 2**30
    assert filters["to_bytes"]("3G") == 3 * 10**9
    assert filters["human_size"](1610612736) == "1.5 GiB"


def test_to_bytes_names_the_field():
    with pytest.raises(AnsibleFilterError, match=r"^thin_pool_size: '3 parsecs'"):
        FilterModule().filters()["to_bytes"]("3 parsecs", "thin_pool_size")

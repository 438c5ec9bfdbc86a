# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""thin_delta output parsing and the metadata-snapshot sequence.

The XML below follows the shapes thin_delta 0.9.0 prints (``thin-provisioning/thin_delta.cc``: ``begin_superblock``,
``begin_diff``, the simple emitter's ``<left_only|right_only|different|same begin= length=/>`` and the verbose
emitter's nested ``<range .../>``); it is WRITTEN FROM THE SOURCE, not captured: real output must still be captured on
the lab (a thin pool with a base snapshot, writes, a discard) and kept as a fixture.
"""

from __future__ import annotations

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._runner import CommandError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.dmthin import (
    ThinDelta,
    ThinDeltaError,
    dm_name,
    parse_thin_delta,
    tmeta_device,
    tpool_name,
)

BLOCK = 128 * 512  # data_block_size 128 sectors = 64 KiB, LVM's default for small pools

SIMPLE = """<superblock uuid="" time="3" transaction="7" data_block_size="128" nr_data_blocks="62144">
  <diff left="1" right="3">
    <same begin="0" length="16"/>
    <different begin="16" length="2"/>
    <same begin="18" length="10"/>
    <left_only begin="28" length="1"/>
    <right_only begin="29" length="3"/>
    <right_only begin="100" length="4"/>
  </diff>
</superblock>
"""

VERBOSE = """<superblock uuid="" time="3" transaction="7" data_block_size="256" nr_data_blocks="310" metadata_snap="9">
  <diff left="1" right="3">
    <same>
      <range begin="0" data_begin="0" length="16"/>
    </same>
    <different>
      <range begin="16" left_data_begin="16" right_data_begin="500" length="2"/>
      <range begin="20" left_data_begin="20" right_data_begin="502" length="1"/>
    </different>
    <right_only>
      <range begin="40" data_begin="600" length="4"/>
    </right_only>
  </diff>
</superblock>
"""


def test_simple_output_gives_merged_byte_ranges():
    out = parse_thin_delta(SIMPLE)
    assert out["data_block_size"] == 128 and out["block_bytes"] == BLOCK
    assert out["left"] == "1" and out["right"] == "3"
    # different 16+2, left_only 28+1 and right_only 29+3 (adjacent: one range), right_only 100+4; same ignored
    assert out["ranges"] == [(16 * BLOCK, 2 * BLOCK), (28 * BLOCK, 4 * BLOCK), (100 * BLOCK, 4 * BLOCK)]
    assert out["blocks_changed"] == 10


def test_verbose_output_with_nested_ranges():
    out = parse_thin_delta(VERBOSE)
    block = 256 * 512
    assert out["ranges"] == [(16 * block, 2 * block), (20 * block, block), (40 * block, 4 * block)]


def test_ranges_are_clipped_to_the_volume_size():
    out = parse_thin_delta(SIMPLE, size_bytes=30 * BLOCK + 100)
    assert out["ranges"] == [(16 * BLOCK, 2 * BLOCK), (28 * BLOCK, 2 * BLOCK + 100)]


def test_no_difference():
    text = ('<superblock uuid="" time="1" transaction="2" data_block_size="128" nr_data_blocks="10">\n'
            '  <diff left="1" right="2">\n    <same begin="0" length="10"/>\n  </diff>\n</superblock>\n')
    assert parse_thin_delta(text)["ranges"] == []
    empty = ('<superblock uuid="" time="1" transaction="2" data_block_size="128" nr_data_blocks="10">\n'
             '  <diff left="1" right="2">\n  </diff>\n</superblock>\n')
    assert parse_thin_delta(empty)["ranges"] == []


@pytest.mark.parametrize(("text", "message"), [
    ("", "no valid XML"),
    ("Unable to find mapping tree for snap1 (4)", "no valid XML"),
    ("<diff/>", "expected <superblock>"),
    ('<superblock data_block_size="x"><diff/></superblock>', "data_block_size"),
    ('<superblock data_block_size="128"></superblock>', "no <diff>"),
    ('<superblock data_block_size="128"><diff><moved begin="1" length="1"/></diff></superblock>', "unknown element"),
    ('<superblock data_block_size="128"><diff><different begin="-1" length="1"/></diff></superblock>', "begin"),
])
def test_output_that_is_not_thin_deltas_is_refused(text, message):
    with pytest.raises(ThinDeltaError, match=message):
        parse_thin_delta(text)


def test_device_mapper_names_double_dashes():
    assert dm_name("ember-thin", "bkbase-b+first") == "ember--thin-bkbase--b+first"
    assert tpool_name("ember-thin", "thinpool") == "ember--thin-thinpool-tpool"
    assert tmeta_device("ember-thin", "thin-pool") == "/dev/mapper/ember--thin-thin--pool_tmeta"


class Runner:
    """Answers commands from a list of ``(args, rc, out)``, in order."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.commands = []

    def run(self, args, check=True, ok_rcs=(0,), data=None):
        self.commands.append(list(args))
        expected, rc, out = self.answers.pop(0)
        assert list(args) == expected
        if check and rc not in ok_rcs:
            raise CommandError(args, rc, out, "failed")
        return rc, out, ""


LVS = ["lvs", "--reportformat", "json", "-o", "lv_name,thin_id", "ember-thin/bkbase-b+first",
       "ember-thin/bkbase-b+second"]
LVS_OUT = ('{"report": [{"lv": [{"lv_name":"bkbase-b+first", "thin_id":"1"}, '
           '{"lv_name":"bkbase-b+second", "thin_id":"3"}]}]}')
RESERVE = ["dmsetup", "message", "ember--thin-thinpool-tpool", "0", "reserve_metadata_snap"]
RELEASE = ["dmsetup", "message", "ember--thin-thinpool-tpool", "0", "release_metadata_snap"]
DELTA = ["thin_delta", "--metadata-snap", "--thin1", "1", "--thin2", "3", "/dev/mapper/ember--thin-thinpool_tmeta"]


def test_changed_ranges_reserves_runs_and_releases():
    runner = Runner([(LVS, 0, LVS_OUT), (RESERVE, 0, ""), (DELTA, 0, SIMPLE), (RELEASE, 0, "")])
    out = ThinDelta(runner).changed_ranges("ember-thin", "thinpool", "bkbase-b+first", "bkbase-b+second", 2 ** 30)
    assert out["thin_ids"] == [1, 3] and len(out["ranges"]) == 3
    assert runner.answers == []


def test_a_stale_metadata_snapshot_is_released_first():
    runner = Runner([(LVS, 0, LVS_OUT), (RESERVE, 1, ""), (RELEASE, 0, ""), (RESERVE, 0, ""), (DELTA, 0, SIMPLE),
                     (RELEASE, 0, "")])
    ThinDelta(runner).changed_ranges("ember-thin", "thinpool", "bkbase-b+first", "bkbase-b+second", 2 ** 30)
    assert runner.answers == []


def test_the_metadata_snapshot_is_released_when_thin_delta_fails():
    runner = Runner([(LVS, 0, LVS_OUT), (RESERVE, 0, ""), (DELTA, 1, ""), (RELEASE, 0, "")])
    with pytest.raises(CommandError, match="thin_delta"):
        ThinDelta(runner).changed_ranges("ember-thin", "thinpool", "bkbase-b+first", "bkbase-b+second", 2 ** 30)
    assert runner.commands[-1] == RELEASE


def test_a_missing_thin_id_is_named():
    runner = Runner([(LVS, 0, '{"report": [{"lv": [{"lv_name":"bkbase-b+first", "thin_id":"1"}]}]}')])
    with pytest.raises(CommandError, match="no thin_id for bkbase-b\\+second"):
        ThinDelta(runner).thin_ids("ember-thin", ["bkbase-b+first", "bkbase-b+second"])

# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    """Options the schedule filter and lookup share."""

    DOCUMENTATION = r"""
options:
  weight_multiplier:
    description: Cinder's C(capacity_weight_multiplier); positive spreads volumes, negative stacks them.
    type: float
    default: 1.0
  default_volume_type:
    description: Volume type of new volumes that do not name one.
    type: str
  consumers:
    description: When given, the only host names attachments may use.
    type: list
    elements: str
  default_availability_zone:
    description:
      - Zone of new volumes that name none (C(blockstore_default_availability_zone), Cinder's
        C(default_availability_zone)); not applied when the volume type restricts zones with the extra spec
        C(RESKEY:availability_zones).
      - Unset, such a volume may be placed in any zone (or in any zone its type allows).
    type: str
"""

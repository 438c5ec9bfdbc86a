# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names of managed objects on the hosts, derived deterministically from inventory names.

A volume's inventory name is its identity. It must fit both an LVM LV name and the last part of an iSCSI IQN,
so it is lowercase letters, digits, ``.`` and ``-``, starting and ending with a letter or digit, at most 63
characters. On a storage node it becomes the LV ``volume-<name>`` tagged ``ember.blockstore`` and
``ember.volume=<name>``; its export is the target ``<target_prefix>volume-<name>``.
"""

from __future__ import annotations

import hashlib
import re

__all__ = [
    "NameError_", "MANAGED_TAG", "VOLUME_TAG", "TYPE_TAG", "BACKEND_TAG", "LV_PREFIX", "DEFAULT_TARGET_PREFIX",
    "validate_volume_name", "lv_name", "volume_name_from_lv", "target_iqn", "chap_username", "validate_iqn",
    "validate_type_name", "tgt_conf_path",
]

MANAGED_TAG = "ember.blockstore"
VOLUME_TAG = "ember.volume="
TYPE_TAG = "ember.type="
BACKEND_TAG = "ember.backend="
LV_PREFIX = "volume-"
DEFAULT_TARGET_PREFIX = "iqn.2026-11.io.ember.blockstore:"
TGT_CONF_DIR = "/etc/tgt/conf.d"

_VOLUME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$")
_TYPE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,62}$")
# RFC 3720 iqn. form (the eui./naa. forms are accepted too); lowercase is what initiators normalise to.
_IQN_RE = re.compile(r"^(iqn\.\d{4}-\d{2}\.[a-z0-9][a-z0-9.-]*(:[a-z0-9.:_-]+)?"
                     r"|eui\.[0-9a-f]{16}|naa\.[0-9a-f]{16,32})$")


class NameError_(ValueError):  # noqa: N801 - avoid shadowing the builtin NameError
    """An inventory name that cannot be used on the hosts."""


def validate_volume_name(name, field="name"):
    """Return ``name`` if it is a valid volume name, else raise :class:`NameError_` naming ``field``."""
    if not isinstance(name, str) or not _VOLUME_RE.fullmatch(name):
        raise NameError_(
            "%s: %r is not a valid volume name; use 1-63 lowercase letters, digits, '.' or '-', "
            "starting and ending with a letter or digit" % (field, name))
    return name


def validate_type_name(name, field="volume_type"):
    """Return a volume type name if it fits an LVM tag, else raise :class:`NameError_`."""
    if not isinstance(name, str) or not _TYPE_RE.fullmatch(name):
        raise NameError_("%s: %r is not a valid volume type name; use letters, digits, '_', '.', '+' or '-'"
                         % (field, name))
    return name


def validate_iqn(iqn, field="initiator"):
    """Return ``iqn`` if it looks like an iSCSI qualified name (iqn./eui./naa.), else raise."""
    if not isinstance(iqn, str) or not _IQN_RE.fullmatch(iqn):
        raise NameError_("%s: %r is not an iSCSI name; expected e.g. iqn.2004-10.com.example:host1" % (field, iqn))
    return iqn


def lv_name(volume):
    """LV name of a volume: ``volume-<name>`` (Cinder's ``volume-<id>`` convention)."""
    return LV_PREFIX + volume


def volume_name_from_lv(lv):
    """Inverse of :func:`lv_name`; ``None`` for an LV that does not follow the convention."""
    if lv.startswith(LV_PREFIX):
        return lv[len(LV_PREFIX):]
    return None


def target_iqn(volume, prefix=DEFAULT_TARGET_PREFIX):
    """Target IQN that exports ``volume``: ``<prefix>volume-<name>``."""
    return prefix + lv_name(volume)


def chap_username(volume):
    """Per-volume CHAP user: word characters only, as tgt's config parser expects. tgt accounts are global, so
    a short hash of the exact name keeps ``a.b`` and ``a-b`` apart."""
    digest = hashlib.sha256(volume.encode("utf-8")).hexdigest()[:8]
    return "ember_%s_%s" % (re.sub(r"[^A-Za-z0-9]", "_", volume), digest)


def tgt_conf_path(volume, conf_dir=TGT_CONF_DIR):
    """Persistent tgt config file of a volume's target."""
    return "%s/ember-%s.conf" % (conf_dir, lv_name(volume))

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
    "type_name",
    "NameError_", "MANAGED_TAG", "VOLUME_TAG", "TYPE_TAG", "BACKEND_TAG", "SNAPSHOT_TAG", "SOURCE_TAG", "CREATING_TAG",
    "CLONE_TAG", "CLONE_SNAPSHOT_PREFIX", "LV_PREFIX", "TGT_CONF_DIR",
    "DEFAULT_TARGET_PREFIX", "MAX_IQN_BYTES", "MAX_TARGET_PREFIX_BYTES", "CHAP_MAX_LENGTH", "CHAP_MIN_SECRET",
    "validate_volume_name", "is_volume_name",
    "lv_name", "volume_name_from_lv", "target_iqn", "chap_username", "target_chap_username", "validate_iqn",
    "validate_type_name", "tgt_conf_path", "validate_target_prefix", "validate_vg_name", "validate_lv_name",
    "validate_backend_name", "validate_text", "validate_chap_username", "validate_chap_secret", "show_value",
    "is_managed_lv", "is_managed_snapshot", "validate_device_path", "encode_tag_text", "decode_tag_text",
    "BACKUP_TAG", "BUSY_STATUS_TAGS", "is_backup_base", "OWN_NAME_TAG", "EMBER_TAG_PREFIX", "managed_volume_name",
    "unknown_keys", "IMAGE_TAG", "IMAGE_SNAPSHOT_PREFIX", "is_image_snapshot", "GROUP_TAG",
]

MANAGED_TAG = "ember.blockstore"
VOLUME_TAG = "ember.volume="
TYPE_TAG = "ember.type="
BACKEND_TAG = "ember.backend="
# A snapshot is the project's when it carries MANAGED_TAG, VOLUME_TAG + <its volume> and SNAPSHOT_TAG + <name>.
SNAPSHOT_TAG = "ember.snapshot="
# A snapshot taken as part of a group snapshot (``blockstore_groups``) also carries ``ember.group=<group>``.
GROUP_TAG = "ember.group="
# A volume made from a source records it: ``ember.source=<volume>`` (a clone) or ``<volume>+<snapshot>``; while its
# data is being written it also carries CREATING_TAG (a run that finds it finishes the volume).
SOURCE_TAG = "ember.source="
CREATING_TAG = "ember.creating"
# The backup module's snapshots (the kept thin base of the next incremental backup, the temporary thick one) carry
# MANAGED_TAG, VOLUME_TAG + <volume> and BACKUP_TAG + <backup> (no SNAPSHOT_TAG). While a backup or a restore runs
# the volume carries one of BUSY_STATUS_TAGS.
BACKUP_TAG = "ember.backup="
BUSY_STATUS_TAGS = ("ember.status=backing-up", "ember.status=restoring-backup")
# The temporary COW snapshot of a thick clone's source: LV ``clone-snap-<new volume>`` tagged MANAGED_TAG and
# ``ember.clone=<new volume>`` (no SNAPSHOT_TAG: it is not a snapshot of the snapshot module).
CLONE_TAG = "ember.clone="
# The image module's temporary snapshot of a volume it writes to an image: LV ``imgtmp-<volume>+<image>`` tagged
# MANAGED_TAG, VOLUME_TAG + <volume> and IMAGE_TAG + <image>; a leftover one goes with its volume's delete.
IMAGE_TAG = "ember.image="
IMAGE_SNAPSHOT_PREFIX = "imgtmp-"
CLONE_SNAPSHOT_PREFIX = "clone-snap-"
# A volume managed from an existing LV that keeps its own name (manage without rename; Cinder's manage_existing
# always renames): MANAGED_TAG, exactly one VOLUME_TAG + <volume> and OWN_NAME_TAG, on an LV not named volume-*.
OWN_NAME_TAG = "ember.own_name"
# Every tag of the project starts with this (unmanage removes each such tag of the volume's LV).
EMBER_TAG_PREFIX = "ember."
LV_PREFIX = "volume-"
DEFAULT_TARGET_PREFIX = "iqn.2026-11.io.ember.blockstore:"
TGT_CONF_DIR = "/etc/tgt/conf.d"

# RFC 3720 section 3.2.6.1: an iSCSI name is at most 223 bytes.
MAX_IQN_BYTES = 223
# The longest volume name (63) as ``volume-<name>`` must still fit behind the prefix.
MAX_TARGET_PREFIX_BYTES = MAX_IQN_BYTES - len(LV_PREFIX) - 63
# CHAP user and secret: tgt copies the secret into ``char pass[ISCSI_NAME_LEN]`` (256, usr/iscsi/chap.c,
# usr/iscsi/iscsid.h) and open-iscsi keeps both in ``AUTH_STR_MAX_LEN`` (256) buffers (usr/auth.h,
# usr/config.h) and reads node-record values into ``VALUE_MAXVAL`` (256, usr/idbm.h): 255 characters each.
CHAP_MAX_LENGTH = 255
# RFC 3720 section 8.2.1 asks initiators and targets to refuse secrets shorter than 12 bytes.
CHAP_MIN_SECRET = 12
# LVM's NAME_LEN is 128 (lib/metadata/metadata-exported.h): names of VGs and LVs are at most 127 characters.
_LVM_NAME_MAX = 127

_VOLUME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9.-]{0,61}[a-z0-9])?$")
_TYPE_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,62}$")
# RFC 3720 iqn. form (the eui./naa. forms are accepted too); lowercase is what initiators normalise to.
_IQN_RE = re.compile(r"^(iqn\.\d{4}-\d{2}\.[a-z0-9][a-z0-9.-]*(:[a-z0-9.:_-]+)?"
                     r"|eui\.[0-9a-f]{16}|naa\.[0-9a-f]{16,32})$")
# RFC 3720 section 3.2.6.3.1 (iqn. type designator, yyyy-mm date, reversed domain name of the naming authority),
# then ":" and an optional start of the unique part; ``volume-<name>`` is appended to it.
_LABEL = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?"
_TARGET_PREFIX_RE = re.compile(r"^iqn\.[0-9]{4}-(?:0[1-9]|1[0-2])\.%s(?:\.%s)*:[a-z0-9.:-]*$" % (_LABEL, _LABEL))
# LVM names (lvm2 lib/misc/lvm-string.c validate_name): letters, digits and ``+_.-``, not starting with ``-``.
_LVM_NAME_RE = re.compile(r"^[A-Za-z0-9+_.][A-Za-z0-9+_.-]*$")
# Suffixes LVM reserves for the hidden LVs of thin pools, caches, mirrors and RAID (lvm2 apply_lvname_restrictions)
_LV_RESERVED = ("_cdata", "_cmeta", "_corig", "_iorig", "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta",
                "_tdata", "_tmeta", "_vdata", "_vorigin", "_wcorig")
_WORD_RE = re.compile(r"^[A-Za-z0-9_]+$")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_DEVICE_RE = re.compile(r"^/[A-Za-z0-9_.+:@=-][A-Za-z0-9_.+:@=/-]*$")
# Characters kept as they are when text is written into an LVM tag (a subset of what lvm2 validate_tag allows);
# every other character becomes its UTF-8 bytes as #XX.
_TAG_KEEP = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-/:")
_TAG_ESCAPE = re.compile(r"#([0-9A-F]{2})")


class NameError_(ValueError):  # noqa: N801 - avoid shadowing the builtin NameError
    """An inventory name that cannot be used on the hosts."""


def show_value(value, limit=60):
    """``repr`` of a value for an error message, shortened when it is long (a 5,000-character value is named by
    its start and its length)."""
    text = repr(value)
    if len(text) > limit:
        return "%s... (%d characters)" % (text[:limit], len(value) if hasattr(value, "__len__") else len(text))
    return text


def type_name(value):
    """The plain type name of a value for an error message: ``str`` for Ansible's tagged strings
    (``_AnsibleTaggedStr``) and the like, which are subclasses of the built-in types."""
    for base in (bool, int, float, str, bytes, dict, list, tuple, set):
        if isinstance(value, base):
            return base.__name__
    return type(value).__name__


def validate_text(value, field, max_length=255, what="value"):
    """Return ``value`` if it is a non-empty ASCII string of at most ``max_length`` characters without control
    characters (newline, NUL, ...), else raise :class:`NameError_` naming ``field``. For free-form labels that
    reach no command line (availability zones, host names)."""
    if not isinstance(value, str) or not value:
        raise NameError_("%s: %s is not a non-empty string" % (field, show_value(value)))
    if len(value) > max_length:
        raise NameError_("%s: %s is longer than %d characters" % (field, show_value(value), max_length))
    if not value.isascii():
        raise NameError_("%s: %s is not ASCII" % (field, show_value(value)))
    if _CONTROL_RE.search(value):
        raise NameError_("%s: %s contains a control character (newline, NUL, ...); a %s is one line of text"
                         % (field, show_value(value), what))
    return value


def encode_tag_text(text, keep=""):
    """Free text as (part of) an LVM tag: letters, digits, ``_ + . - / :`` and the characters of ``keep`` as they
    are, every other character as its UTF-8 bytes, each written ``#XX`` (``#`` itself included). The result holds
    only characters lvm2's ``validate_tag`` allows, no white space, quote or backslash; it is empty only for
    ``""``."""
    out = []
    for char in text:
        if char in _TAG_KEEP or char in keep:
            out.append(char)
        else:
            out.extend("#%02X" % byte for byte in char.encode("utf-8", "surrogatepass"))
    return "".join(out)


def decode_tag_text(value):
    """Inverse of :func:`encode_tag_text` (bytes that are not UTF-8, from a tag written by hand, are shown as
    U+FFFD)."""
    data = bytearray()
    pos = 0
    for match in _TAG_ESCAPE.finditer(value):
        data += value[pos:match.start()].encode("utf-8", "surrogatepass")
        data.append(int(match.group(1), 16))
        pos = match.end()
    data += value[pos:].encode("utf-8", "surrogatepass")
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def is_volume_name(name):
    """Whether ``name`` is a valid volume name (for lookups that skip an invalid name; decide() reports it)."""
    try:
        validate_volume_name(name)
    except NameError_:
        return False
    return True


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
    """Return ``iqn`` if it looks like an iSCSI qualified name (iqn./eui./naa.) of at most 223 bytes, else raise."""
    if not isinstance(iqn, str) or not _IQN_RE.fullmatch(iqn) or len(iqn) > MAX_IQN_BYTES:
        raise NameError_("%s: %s is not an iSCSI name; expected e.g. iqn.2004-10.com.example:host1 (at most %d "
                         "bytes)" % (field, show_value(iqn), MAX_IQN_BYTES))
    return iqn


def validate_target_prefix(prefix, field="target_prefix"):
    """Return ``prefix`` if ``<prefix>volume-<name>`` is an iqn.-form iSCSI name (RFC 3720 section 3.2.6) of at most
    223 bytes for every volume name: ``iqn.yyyy-mm.<reversed domain>:`` and optionally the start of the unique
    part (lowercase letters, digits, ``.``, ``-``, ``:``), at most 153 bytes. The ``eui.``/``naa.`` forms are
    fixed-length hexadecimal names: nothing can be appended to them, so they are no prefix."""
    if not isinstance(prefix, str) or not _TARGET_PREFIX_RE.fullmatch(prefix) \
            or len(prefix) > MAX_TARGET_PREFIX_BYTES:
        raise NameError_("%s: %s is not an IQN prefix; use iqn.yyyy-mm.<reversed domain name>: (RFC 3720 3.2.6; "
                         "lowercase letters, digits, '.', '-', ':'; at most %d bytes so that every "
                         "<prefix>volume-<name> fits in %d), e.g. %s"
                         % (field, show_value(prefix), MAX_TARGET_PREFIX_BYTES, MAX_IQN_BYTES,
                            DEFAULT_TARGET_PREFIX))
    return prefix


def _lvm_name(value, field, what):
    if not isinstance(value, str) or not _LVM_NAME_RE.fullmatch(value) or value in (".", "..") \
            or len(value) > _LVM_NAME_MAX:
        raise NameError_("%s: %s is not a valid %s name; use 1-%d letters, digits, '+', '_', '.' or '-', not "
                         "starting with '-'" % (field, show_value(value), what, _LVM_NAME_MAX))
    return value


def validate_vg_name(value, field="vg"):
    """Return a volume group name that LVM accepts (and that no command reads as an option), else raise."""
    return _lvm_name(value, field, "volume group")


def validate_lv_name(value, field="thin_pool"):
    """Return a logical volume name that LVM accepts (no reserved prefix or suffix), else raise."""
    _lvm_name(value, field, "logical volume")
    if value.startswith(("snapshot", "pvmove")) or any(part in value for part in _LV_RESERVED):
        raise NameError_("%s: %s is a name LVM reserves (prefixes snapshot/pvmove, suffixes such as _tdata, "
                         "_tmeta)" % (field, show_value(value)))
    return value


def validate_backend_name(value, field="backend"):
    """Return a backend name that fits an LVM tag and a pool id ``<host>@<backend>``, else raise."""
    if not isinstance(value, str) or not _TYPE_RE.fullmatch(value):
        raise NameError_("%s: %s is not a valid backend name; use 1-63 letters, digits, '_', '.', '+' or '-', "
                         "starting with a letter, digit or '_'" % (field, show_value(value)))
    return value


def validate_device_path(value, field="pvs"):
    """Return an absolute block device path (normally under /dev; no ``..`` or ``.`` component, no blank, control
    or shell character; starting with ``/`` it cannot be read as an option), else raise."""
    if not isinstance(value, str) or not _DEVICE_RE.fullmatch(value) or len(value) > 255 \
            or "/../" in value + "/" or "/./" in value + "/":
        raise NameError_("%s: %s is not an absolute device path such as /dev/vdb" % (field, show_value(value)))
    return value


def validate_chap_username(value, field="chap_username"):
    """A CHAP user: word characters (tgt's config parser and ``tgt-admin`` split on spaces), 1-255 characters."""
    if not isinstance(value, str) or not _WORD_RE.fullmatch(value) or len(value) > CHAP_MAX_LENGTH:
        raise NameError_("%s: must be 1-%d letters, digits or '_' (tgt's config parser expects word characters)"
                         % (field, CHAP_MAX_LENGTH))
    return value


def validate_chap_secret(value, field="chap_password"):
    """A CHAP secret: 12-255 word characters. The value is never shown in the message."""
    if not isinstance(value, str) or not _WORD_RE.fullmatch(value) or len(value) > CHAP_MAX_LENGTH:
        raise NameError_("%s: must be letters, digits or '_' (tgt's config parser expects word characters), at "
                         "most %d" % (field, CHAP_MAX_LENGTH))
    if len(value) < CHAP_MIN_SECRET:
        raise NameError_("%s: is %d characters; a CHAP secret needs at least %d (RFC 3720 8.2.1), better 22 or "
                         "more random ones (128 bits)" % (field, len(value), CHAP_MIN_SECRET))
    return value


def unknown_keys(field, given, allowed):
    """``"<field>: unknown key(s) <k, ...>; allowed: <a, ...>"`` (both sorted) for the keys of the mapping ``given``
    that are not in ``allowed``, or None when there is none: the one message of every inventory dict's key check."""
    unknown = sorted(str(k) for k in given if k not in allowed)
    if not unknown:
        return None
    return "%s: unknown key(s) %s; allowed: %s" % (field, ", ".join(unknown), ", ".join(sorted(allowed)))


def is_managed_lv(lv):
    """Whether an LV (``drivers.lvm.parse_lvs`` row) is a volume of this project: it carries both tags,
    ``ember.blockstore`` and ``ember.volume=<name>``, and is named ``volume-<name>`` for that same name; or it is
    a volume managed under its own name (:func:`managed_volume_name`)."""
    tags = lv.get("tags") or []
    name = volume_name_from_lv(lv.get("name") or "")
    if name:
        return MANAGED_TAG in tags and VOLUME_TAG + name in tags
    return managed_volume_name(lv) is not None


def managed_volume_name(lv):
    """The volume an LV that kept its own name when it was managed holds (tags ``ember.blockstore``,
    ``ember.own_name`` and exactly one ``ember.volume=<name>``, the LV not named ``volume-*``), else None."""
    tags = lv.get("tags") or []
    if (lv.get("name") or "").startswith(LV_PREFIX) or MANAGED_TAG not in tags or OWN_NAME_TAG not in tags:
        return None
    names = [t[len(VOLUME_TAG):] for t in tags if t.startswith(VOLUME_TAG)]
    return names[0] if len(names) == 1 and is_volume_name(names[0]) else None


def is_managed_snapshot(lv, volume):
    """Whether an LV is a snapshot this project made of ``volume``: ``ember.blockstore``,
    ``ember.volume=<volume>`` and an ``ember.snapshot=<name>`` tag. ``cascade`` deletes only these."""
    tags = lv.get("tags") or []
    return MANAGED_TAG in tags and VOLUME_TAG + volume in tags and any(
        t.startswith(SNAPSHOT_TAG) and len(t) > len(SNAPSHOT_TAG) for t in tags)


def is_backup_base(lv, volume):
    """Whether an LV is a snapshot the backup module made of ``volume`` (MANAGED_TAG, VOLUME_TAG + ``volume``,
    BACKUP_TAG + a backup name): the volume's delete removes it with the volume (its backups stay in the store)."""
    tags = lv.get("tags") or []
    return MANAGED_TAG in tags and VOLUME_TAG + volume in tags and any(
        t.startswith(BACKUP_TAG) and len(t) > len(BACKUP_TAG) for t in tags)


def is_image_snapshot(lv, volume):
    """Whether an LV is the image module's temporary snapshot of ``volume`` (MANAGED_TAG, VOLUME_TAG + ``volume``,
    IMAGE_TAG + an image name): the volume's delete removes a leftover one with the volume."""
    tags = lv.get("tags") or []
    return MANAGED_TAG in tags and VOLUME_TAG + volume in tags and any(
        t.startswith(IMAGE_TAG) and len(t) > len(IMAGE_TAG) for t in tags)


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


def target_chap_username(volume):
    """The target's own CHAP user for mutual CHAP (tgt's ``outgoinguser``): :func:`chap_username` with
    ``_target``. It never equals any volume's incoming user (those end in 8 hex digits), and tgt accounts are
    global, so it is per volume as well."""
    return chap_username(volume) + "_target"


def tgt_conf_path(volume, conf_dir=TGT_CONF_DIR):
    """Persistent tgt config file of a volume's target."""
    return "%s/ember-%s.conf" % (conf_dir, lv_name(volume))

# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A volume's description and metadata (Cinder's volume ``description`` and ``metadata``), kept in its LV's tags.

Tags (on the volume LV only; the snapshot module's ``ember.description=`` is a snapshot's and a revert strips it from
a volume, so the volume's description has its own name):

- ``ember.vdesc=<encoded description>``: at most one;
- ``ember.meta=<encoded key>=<encoded value>``: one per metadata key. ``=`` is encoded in both parts, so the first
  ``=`` after the prefix separates key and value.

Encoding (:func:`_naming.encode_tag_text`): letters, digits and ``_ + . - / :`` are kept, every other character is
written as its UTF-8 bytes, each ``#XX`` (upper-case hexadecimal), ``#`` itself included. The result has only
characters LVM allows in a tag (lvm2 ``validate_tag``: letters, digits and ``_ + . - / = ! : # &``) and no white
space or quote; each tag starts with ``ember.``, so it also passes the ``lvm`` shell, which ends a line at a word
that starts with ``#``.

Limits. Cinder's (``cinder/api/validation/parameter_types.py``): a description of at most 255 printable characters
(no control characters, no line or paragraph separators); metadata keys of 1-255 characters from
``[a-zA-Z0-9-_:. ]``, values strings of 0-255 characters. LVM has no tag length limit since 2.02.77 (WHATS_NEW:
"Remove tag length restriction", before it NAME_LEN, 128), but each tag is stored in the VG's metadata, which LVM
rewrites on every change and keeps within the metadata area (1 MiB by default, half of it for a new copy), for
every LV of the VG. So a volume has at most :data:`MAX_KEYS` keys and its description and metadata tags together
at most :data:`MAX_TAG_CHARS` encoded characters.
"""

from __future__ import annotations

import re
import unicodedata

from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    NameError_,
    decode_tag_text,
    encode_tag_text,
    show_value,
)

__all__ = ["DESCRIPTION_TAG", "METADATA_TAG", "MAX_DESCRIPTION", "MAX_KEY", "MAX_VALUE", "MAX_KEYS", "MAX_TAG_CHARS",
           "MetadataError", "validate_description", "validate_metadata", "description_tags", "metadata_tags",
           "is_meta_tag", "read_meta", "tags_size"]

DESCRIPTION_TAG = "ember.vdesc="
METADATA_TAG = "ember.meta="
MAX_DESCRIPTION = 255
MAX_KEY = 255
MAX_VALUE = 255
MAX_KEYS = 64
MAX_TAG_CHARS = 4096
# Cinder's metadata key pattern (its ``metadata_allows_null``, ``patternProperties``).
_KEY_RE = re.compile(r"^[a-zA-Z0-9\-_:. ]{1,255}$")


class MetadataError(NameError_):
    """A description or metadata that cannot be stored with a volume."""


def _printable(char):
    """Cinder's ``_is_printable``: not a control/format/unassigned character, and a separator only when it is a
    space (``Zs``)."""
    category = unicodedata.category(char)
    return not category.startswith("C") and (not category.startswith("Z") or category == "Zs")


def _kind(value):
    """A value's kind in YAML terms (Ansible hands over tagged subclasses, so never ``type(value).__name__``)."""
    for kind, name in ((bool, "boolean"), ((int, float), "number"), (dict, "dict"), ((list, tuple), "list"),
                       (str, "string")):
        if isinstance(value, kind):
            return name
    return type(value).__name__


def _type_hint(value):
    return ("%s; quote it in YAML ('%s') to make it a string" % (_kind(value), value)
            if isinstance(value, (bool, int, float)) else _kind(value))


def validate_description(value, field="description"):
    """The description when it is a string of at most 255 printable characters, else raise :class:`MetadataError`
    naming ``field``; None stays None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise MetadataError("%s: %s is a %s, not a string" % (field, show_value(value), _type_hint(value)))
    if len(value) > MAX_DESCRIPTION:
        raise MetadataError("%s: %s is longer than %d characters (Cinder's limit)"
                            % (field, show_value(value), MAX_DESCRIPTION))
    bad = next((ch for ch in value if not _printable(ch)), None)
    if bad is not None:
        raise MetadataError("%s: %s contains the non-printable character %r (U+%04X); a description is one line of "
                            "printable text, as Cinder's API takes it" % (field, show_value(value), bad, ord(bad)))
    return value


def validate_metadata(value, field="metadata"):
    """The metadata when it is a dict of at most :data:`MAX_KEYS` string keys (Cinder's key characters, 1-255) and
    string values (0-255 characters), else raise :class:`MetadataError` naming ``field`` and the key; None stays
    None."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise MetadataError("%s: %s is a %s, not a dict of strings"
                            % (field, show_value(value), _kind(value)))
    if len(value) > MAX_KEYS:
        raise MetadataError("%s: %d keys; a volume holds at most %d (its metadata lives in LVM's VG metadata, "
                            "which must stay small)" % (field, len(value), MAX_KEYS))
    for key, item in value.items():
        if not isinstance(key, str):
            raise MetadataError("%s: the key %s is a %s, not a string" % (field, show_value(key), _type_hint(key)))
        if not _KEY_RE.fullmatch(key):
            raise MetadataError("%s: the key %s is not 1-%d letters, digits, '-', '_', ':', '.' or spaces (Cinder's "
                                "metadata keys)" % (field, show_value(key), MAX_KEY))
        where = "%s[%s]" % (field, show_value(key))
        if not isinstance(item, str):
            raise MetadataError("%s: %s is a %s, not a string (metadata values are strings, as in Cinder)"
                                % (where, show_value(item), _type_hint(item)))
        if len(item) > MAX_VALUE:
            raise MetadataError("%s: %s is longer than %d characters (Cinder's limit)"
                                % (where, show_value(item), MAX_VALUE))
    return value


def description_tags(description):
    """The tags of a description: none for None or ``""``."""
    return [DESCRIPTION_TAG + encode_tag_text(description)] if description else []


def metadata_tags(metadata):
    """The tags of a metadata dict, sorted by key."""
    return [METADATA_TAG + encode_tag_text(key) + "=" + encode_tag_text(metadata[key])
            for key in sorted(metadata or {})]


def tags_size(tags):
    """Characters of ``tags`` as the VG metadata stores them (what :data:`MAX_TAG_CHARS` bounds)."""
    return sum(len(tag) for tag in tags)


def is_meta_tag(tag):
    return tag.startswith((DESCRIPTION_TAG, METADATA_TAG))


def read_meta(tags):
    """``(description or None, {key: value})`` of an LV's tags (the first description tag; a metadata tag without
    ``=`` after its key is not one and is skipped)."""
    description, metadata = None, {}
    for tag in tags or []:
        if tag.startswith(DESCRIPTION_TAG) and description is None:
            description = decode_tag_text(tag[len(DESCRIPTION_TAG):])
        elif tag.startswith(METADATA_TAG):
            key, sep, value = tag[len(METADATA_TAG):].partition("=")
            if sep and key:
                metadata.setdefault(decode_tag_text(key), decode_tag_text(value))
    return description, metadata

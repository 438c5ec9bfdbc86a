# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation of the inventory and the request the filters see.

Cinder validates a request in its API (``cinder/api/v3/volumes.py`` and the create flow
``cinder/volume/flows/api/create_volume.py``) and hands the scheduler a ``RequestSpec``
(``cinder/objects/request_spec.py``). Here the whole ``blockstore_volumes`` list is validated at once, every
problem collected with the field named (``blockstore_volumes[2].size``), before anything is placed.

Sizes: a bare number is GiB, as in Cinder's API (``size`` is an integer number of GiB) and openstack.cloud's
``volume`` module; units are accepted (``10GiB``, ``512MiB``, ``1G`` = 10**9 bytes); see module_utils/_size.py.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ansible_collections.ember.blockstore.plugins.module_utils._backup_policy import validate_policy
from ansible_collections.ember.blockstore.plugins.module_utils._metadata import (
    MAX_TAG_CHARS,
    MetadataError,
    description_tags,
    metadata_tags,
    tags_size,
    validate_description,
    validate_metadata,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    LV_PREFIX,
    NameError_,
    type_name,
    unknown_keys,
    validate_backend_name,
    validate_lv_name,
    validate_text,
    validate_type_name,
    validate_volume_name,
)
from ansible_collections.ember.blockstore.plugins.module_utils._qos import validate_cgroup_unit, validate_qos_specs
from ansible_collections.ember.blockstore.plugins.module_utils._size import SizeError, parse_volume_size
from ansible_collections.ember.blockstore.plugins.module_utils._snapshot import validate_snapshot_name
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.image import (
    validate_checksum,
    validate_format,
    validate_location,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError, shorten
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.filters.extra_specs_ops import match

__all__ = [
    "TYPE_AZ_KEY",
    "RequestSpec",
    "VolumeRequest",
    "check_options",
    "multiattach_error",
    "resolve_zones",
    "type_availability_zones",
    "validate_requests",
    "validate_volume_types",
]

VOLUMES_FIELD = "blockstore_volumes"
TYPES_FIELD = "blockstore_volume_types"
VOLUME_KEYS = frozenset(("name", "size", "volume_type", "availability_zone", "state", "attachments", "force",
                         "description", "snapshots", "cascade", "project", "source", "metadata",
                         "is_multiattach", "backup", "manage", "migration_policy", "backend"))
TYPE_KEYS = frozenset(("extra_specs", "description", "qos_specs", "mutual_chap"))
ATTACHMENT_KEYS = frozenset(("host", "qos_cgroup", "state", "force"))
# A volume's snapshots (option names of the snapshot module, which openstack.cloud's volume_snapshot uses).
SNAPSHOT_KEYS = frozenset(("name", "state", "cow_size", "description", "force"))
SNAPSHOT_STATES = ("present", "absent", "reverted")
# A new volume's source (Cinder's source_volid / snapshot_id / imageRef): a volume, one of its snapshots, or an
# image (a path on the storage node, a URL it fetches, or with controller: true a file the role copies there).
SOURCE_KEYS = frozenset(("volume", "snapshot", "image", "format", "checksum", "controller"))
IMAGE_KEYS = frozenset(("image", "format", "checksum", "controller"))
# An existing LV to manage (Cinder's manage_existing): its name, where it is (host and backend: the pool
# <host>@<backend>) and whether it is renamed volume-<name>.
MANAGE_KEYS = frozenset(("lv", "host", "backend", "rename"))
VOLUME_STATES = ("present", "absent", "unmanaged")
# Cinder's retype migration policies (``cinder retype --migration-policy``): never move data, or move it when the
# volume's pool no longer fits (a new type, zone or backend pin).
MIGRATION_POLICIES = ("never", "on-demand")
# A placement pin: Cinder's ``host@backend#pool`` (the pool part optional).
_BACKEND_PIN_RE = re.compile(r"^[A-Za-z0-9_.:-]+@[A-Za-z0-9_.+-]+(#[^\s#]+)?$")
# The reserved extra spec that restricts a volume type to zones (Cinder API microversion 3.52).
TYPE_AZ_KEY = "RESKEY:availability_zones"


@dataclass
class RequestSpec:
    """What the filters see of one request: ``size`` in bytes (the growth for an extend), the zones asked for
    (``None`` = any), the volume type's extra specs and whether the type allows thin provisioning
    (everything but ``provisioning:type: thick``, as capacity_filter.py reads it)."""

    name: str
    size: int
    availability_zones: tuple | None = None
    volume_type: str | None = None
    extra_specs: dict | None = None

    @property
    def thin(self):
        return (self.extra_specs or {}).get("provisioning:type") != "thick"


@dataclass
class VolumeRequest:
    """One validated ``blockstore_volumes`` item. ``snapshots``: one dict per listed snapshot with ``field``,
    ``name``, ``state``, ``cow_size`` (bytes or None), ``description`` and ``force``."""

    index: int
    name: str
    state: str = "present"
    size: int | None = None
    volume_type: str | None = None
    availability_zones: tuple | None = None
    attachments: list | None = None
    force: bool = False
    description: str | None = None
    snapshots: list | None = None
    cascade: bool = False
    project: str | None = None
    source: dict | None = None
    qos_cgroups: dict | None = None
    metadata: dict | None = None
    detach_force: tuple = ()
    is_multiattach: bool | None = None
    backup: dict | None = None  # the backup policy (playbooks/backup.yml uses it; the converge run checks it)
    migration_policy: str = "never"  # never | on-demand (Cinder's retype migration policy)
    backend: str | None = None  # a placement pin, ``<host>@<backend>`` or ``<host>@<backend>#<pool>``
    manage: dict | None = None  # {"lv", "host", "backend", "rename"} of an existing LV to manage

    @property
    def field(self):
        return f"{VOLUMES_FIELD}[{self.index}]"


def validate_volume_types(volume_types):
    """Validate ``blockstore_volume_types`` (name -> {extra_specs, description}); return a plain dict
    name -> {"extra_specs": {str: str}, "description": str | None}. Extra spec values must be strings, as Cinder
    stores them; YAML ``true`` would never equal a capability, so it is refused with a hint."""
    if volume_types is None:
        return {}
    if not isinstance(volume_types, dict):
        raise ScheduleError(f"{TYPES_FIELD}: expected a dict of name -> type, got {type_name(volume_types)}")
    result, errors = {}, []
    for name, spec in volume_types.items():
        field = f"{TYPES_FIELD}.{name}"
        try:
            validate_type_name(name, TYPES_FIELD)
        except NameError_ as exc:
            errors.append(str(exc))
            continue
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            errors.append(f"{field}: expected a dict with extra_specs and description, got {type_name(spec)}")
            continue
        unknown = unknown_keys(field, spec, TYPE_KEYS)
        if unknown:
            errors.append(unknown)
        specs = spec.get("extra_specs") or {}
        if not isinstance(specs, dict):
            errors.append(f"{field}.extra_specs: expected a dict, got {type_name(specs)}")
            specs = {}
        clean = {}
        for key, value in specs.items():
            if not isinstance(key, str) or not key:
                errors.append(f"{field}.extra_specs: key {key!r} is not a non-empty string")
            elif not isinstance(value, str):
                errors.append(f"{field}.extra_specs.{key}: {value!r} is not a string; quote it, for example "
                              f"\"<is> {value}\" for a boolean or \"== {value}\" for a number")
            else:
                clean[str(key)] = str(value)
        description = spec.get("description")
        if description is not None and not isinstance(description, str):
            errors.append(f"{field}.description: {description!r} is not a string")
            description = None
        qos = spec.get("qos_specs")
        if qos is not None:
            try:
                validate_qos_specs(qos, f"{field}.qos_specs")
            except (NameError_, ValueError) as exc:
                errors.append(str(exc))
                qos = None
        mutual = spec.get("mutual_chap")
        if mutual is not None and not isinstance(mutual, bool):
            errors.append(f"{field}.mutual_chap: {mutual!r} is not a boolean")
            mutual = None
        result[str(name)] = {"extra_specs": clean, "description": None if description is None else str(description),
                             "qos_specs": dict(qos) if qos else {}, "mutual_chap": mutual}
    if errors:
        raise ScheduleError(errors)
    return result


def multiattach_error(field, hosts, volume_type, extra_specs, is_multiattach=None):
    """Message when a volume with several attachments has a type whose extra spec ``multiattach`` is not
    ``<is> True`` (Cinder's multiattach volume types), else ``None``. ``is_multiattach`` (openstack.cloud's
    volume option, set on the volume) decides instead of the type when it is given."""
    if len(hosts) < 2 or is_multiattach is True:
        return None
    if is_multiattach is False:
        return (f"{field}.attachments: {len(hosts)} hosts ({', '.join(hosts)}), but the volume says "
                "is_multiattach: false")
    spec = (extra_specs or {}).get("multiattach")
    if spec is not None and spec.split()[:1] == ["<is>"] and match(True, spec):
        return None
    if volume_type is None:
        return (f"{field}.attachments: {len(hosts)} hosts ({', '.join(hosts)}), but a volume without a volume type "
                "cannot be multiattached; use a type with the extra spec multiattach: \"<is> True\", or set "
                "is_multiattach: true on the volume")
    return (f"{field}.attachments: {len(hosts)} hosts ({', '.join(hosts)}), but volume type {volume_type} does not "
            "allow multiattach; add the extra spec multiattach: \"<is> True\" to it, or set is_multiattach: true "
            "on the volume")


def validate_requests(volumes, volume_types=None, default_volume_type=None, consumers=None):
    """Validate the whole ``blockstore_volumes`` list; return :class:`VolumeRequest` objects in order.

    ``volume_types`` is the output of :func:`validate_volume_types`. Every problem is collected and raised as
    one :class:`ScheduleError` whose messages name the field (``blockstore_volumes[2].size``) and the value.
    """
    volume_types = volume_types or {}
    if volumes is None:
        volumes = []
    if not isinstance(volumes, (list, tuple)):
        raise ScheduleError(f"{VOLUMES_FIELD}: expected a list of volumes, got {type_name(volumes)}")
    consumer_set = None if consumers is None else set(consumers)
    requests, errors, seen = [], [], {}
    for index, item in enumerate(volumes):
        field = f"{VOLUMES_FIELD}[{index}]"
        if not isinstance(item, dict):
            errors.append(f"{field}: expected a dict with at least a name, got {type_name(item)}")
            continue
        before = len(errors)
        unknown = unknown_keys(field, item, VOLUME_KEYS)
        if unknown:
            errors.append(shorten(unknown))
        name = item.get("name")
        try:
            validate_volume_name(name, field + ".name")
        except NameError_ as exc:
            errors.append(str(exc))
            name = None
        if name is not None:
            if name in seen:
                errors.append(f"{field}.name: {name!r} is already used by {seen[name]}")
            else:
                seen[name] = field
        state = item.get("state", "present")
        if state not in VOLUME_STATES:
            errors.append(f"{field}.state: {state!r} is not one of {', '.join(VOLUME_STATES)}")
        errors.extend(validate_policy(item.get("backup"), field + ".backup"))
        size = item.get("size")
        source = _validate_source(item.get("source"), field, name, state, errors)
        manage = _validate_manage(item.get("manage"), field, name, errors)
        if manage is not None and item.get("source") is not None:
            errors.append(f"{field}.manage: given with source; a volume is either made from a source or managed from "
                          "an existing LV")
        if size is None:
            if state == "present" and item.get("source") is None and item.get("manage") is None:
                errors.append(f"{field}.size: missing; a present volume needs a size such as 10GiB")
            elif state == "present" and source is not None and source.get("image") is not None:
                errors.append(f"{field}.size: missing; a volume from an image needs a size (at least the image's "
                              "virtual size) such as 10GiB")
        else:
            try:
                size = parse_volume_size(size, field + ".size")
            except SizeError as exc:
                errors.append(str(exc))
                size = None
            else:
                if size == 0:
                    errors.append(f"{field}.size: {item['size']!r} is zero; a volume needs at least one byte")
        vtype = item.get("volume_type")
        if vtype is not None and (not isinstance(vtype, str) or vtype not in volume_types):
            errors.append(f"{field}.volume_type: {vtype!r} is not a defined volume type; defined: "
                          f"{', '.join(sorted(volume_types)) or 'none'}")
            vtype = None
        zones = item.get("availability_zone")
        if zones is not None:
            zlist = [zones] if isinstance(zones, str) else zones
            if not isinstance(zlist, list) or not zlist or not all(isinstance(z, str) and z for z in zlist):
                errors.append(shorten(f"{field}.availability_zone: {zones!r} is not a zone name or a non-empty list "
                                      "of zone names"))
                zones = None
            elif len(set(zlist)) != len(zlist) or any(z != z.strip() or not z.isprintable() for z in zlist):
                errors.append(shorten(f"{field}.availability_zone: {zones!r} names a zone twice, or a zone with "
                                      "surrounding spaces or control characters"))
                zones = None
            else:
                zones = tuple(str(z) for z in zlist) or None
        attachments = item.get("attachments")
        if attachments is None:
            attachments = []
        hosts, cgroups, detach_force, detached = [], {}, [], []
        if not isinstance(attachments, list):
            errors.append(f"{field}.attachments: expected a list of {{host: name}}, got {type_name(attachments)}")
        else:
            for i, att in enumerate(attachments):
                afield = f"{field}.attachments[{i}]"
                if not isinstance(att, dict):
                    errors.append(f"{afield}: expected a dict {{host: name}}, got {att!r}")
                    continue
                extra = unknown_keys(afield, att, ATTACHMENT_KEYS)
                if extra:
                    errors.append(extra)
                if att.get("qos_cgroup") is not None:
                    try:
                        cgroups[str(att.get("host"))] = validate_cgroup_unit(att["qos_cgroup"], afield + ".qos_cgroup")
                    except (NameError_, ValueError) as exc:
                        errors.append(str(exc))
                host = att.get("host")
                astate = att.get("state", "present")
                aforce = att.get("force", False)
                if astate not in ("present", "absent"):
                    errors.append(f"{afield}.state: {astate!r} is not present or absent")
                if not isinstance(aforce, bool):
                    errors.append(f"{afield}.force: {aforce!r} is not a boolean")
                if not isinstance(host, str) or not host:
                    errors.append(f"{afield}.host: {host!r} is not a host name")
                elif host in hosts or host in detached:
                    errors.append(f"{afield}.host: {host!r} is listed twice")
                elif state == "unmanaged" and astate == "present":
                    errors.append(f"{afield}: an unmanaged volume has no attachments (Cinder unmanages only an "
                                  "available volume): take it out of the list, or state: absent to detach it first")
                elif astate == "absent":
                    # Detached like an attachment removed from the list; force: a device in use is detached too.
                    # The host may be no consumer any more (it is not checked against the consumer group).
                    detached.append(str(host))
                    if aforce is True:
                        detach_force.append(str(host))
                elif consumer_set is not None and host not in consumer_set:
                    errors.append(f"{afield}.host: {host!r} is not a consumer host; known: "
                                  f"{', '.join(sorted(consumer_set)) or 'none'}")
                else:
                    hosts.append(str(host))
        force = item.get("force", False)
        if not isinstance(force, bool):
            errors.append(f"{field}.force: {force!r} is not a boolean")
        description = item.get("description")
        metadata = item.get("metadata")
        try:  # the volume module's rules: Cinder's limits, and what the LV tags can hold
            validate_description(description, field + ".description")
            validate_metadata(metadata, field + ".metadata")
            tags = description_tags(description) + metadata_tags(metadata)
            if tags_size(tags) > MAX_TAG_CHARS:
                errors.append(f"{field}.metadata: the description and metadata take {tags_size(tags)} characters "
                              f"as LV tags; a volume holds at most {MAX_TAG_CHARS}")
        except MetadataError as exc:
            errors.append(str(exc))
        project = item.get("project")
        if project is not None:
            try:
                validate_text(project, field + ".project", 255, "project name")
            except NameError_ as exc:
                errors.append(str(exc))
        cascade = item.get("cascade", False)
        if not isinstance(cascade, bool):
            errors.append(f"{field}.cascade: {cascade!r} is not a boolean")
        multi = item.get("is_multiattach")
        if multi is not None and not isinstance(multi, bool):
            errors.append(f"{field}.is_multiattach: {multi!r} is not a boolean")
            multi = None
        snapshots = _validate_snapshots(item.get("snapshots"), field, state, size, hosts, errors)
        policy = item.get("migration_policy", "never")
        if policy not in MIGRATION_POLICIES:
            errors.append(shorten(f"{field}.migration_policy: {policy!r} is not one of {', '.join(MIGRATION_POLICIES)} "
                                  "(Cinder's retype migration policies)"))
        backend = item.get("backend")
        if backend is not None and (not isinstance(backend, str) or not _BACKEND_PIN_RE.fullmatch(backend)):
            errors.append(shorten(f"{field}.backend: {backend!r} is not a pool as Cinder names it, "
                                  "<host>@<backend> or <host>@<backend>#<pool> (the pool ids backend_info reports)"))
        if vtype is not None:  # without an explicit type, plan() checks the default or the existing volume's type
            problem = multiattach_error(field, hosts, vtype, volume_types[vtype]["extra_specs"], multi)
            if problem:
                errors.append(problem)
        if len(errors) > before:
            continue
        requests.append(VolumeRequest(
            index=index, name=str(name), state=state, size=size, volume_type=None if vtype is None else str(vtype),
            availability_zones=zones, attachments=hosts, force=force,
            description=None if description is None else str(description), snapshots=snapshots,
            cascade=cascade, project=project, source=source, qos_cgroups=cgroups, backup=item.get("backup"),
            manage=manage,
            detach_force=tuple(detach_force), is_multiattach=multi, migration_policy=policy,
            backend=None if backend is None else str(backend),
            metadata=None if metadata is None else dict(metadata)))
    if errors:
        raise ScheduleError(errors)
    return requests


def _validate_source(source, field, name, state, errors):
    """Validate a volume's ``source`` (``{volume: A}`` for a clone, ``{volume: A, snapshot: S}`` for a volume
    made from A's snapshot S, ``{image: location, format, checksum, controller}`` for a volume written from an
    image); return ``{"volume", "snapshot"}`` (an image: ``{"volume": None, "snapshot": None, "image", "format",
    "checksum", "controller"}``) or None (appending messages to ``errors``)."""
    if source is None:
        return None
    if state in ("absent", "unmanaged"):
        errors.append(f"{field}.source: given for an {state} volume; a source is used only when a volume is created")
        return None
    if not isinstance(source, dict):
        errors.append(shorten(f"{field}.source: expected {{volume: name}}, {{volume: name, snapshot: name}} or "
                              f"{{image: location}}, got {source!r}"))
        return None
    before = len(errors)
    unknown = unknown_keys(field + ".source", source, SOURCE_KEYS)
    if unknown:
        errors.append(unknown)
    if source.get("image") is not None:
        return _validate_image_source(source, field, errors, before)
    extra = sorted(k for k in IMAGE_KEYS if source.get(k) is not None)
    if extra:
        errors.append(f"{field}.source.{extra[0]}: {source[extra[0]]!r} applies to an image source only "
                      "(source.image)")
    try:
        validate_volume_name(source.get("volume"), field + ".source.volume")
    except NameError_ as exc:
        errors.append(str(exc))
    if source.get("snapshot") is not None:
        try:
            validate_snapshot_name(source["snapshot"], field + ".source.snapshot")
        except NameError_ as exc:
            errors.append(str(exc))
    if len(errors) == before and source.get("volume") == name and source.get("snapshot") is None:
        errors.append(f"{field}.source.volume: {name!r} is the volume itself")
    if len(errors) > before:
        return None
    return {"volume": str(source["volume"]),
            "snapshot": None if source.get("snapshot") is None else str(source["snapshot"])}


def _validate_manage(manage, field, name, errors):
    """Validate a volume's ``manage`` (an existing LV to manage, Cinder's ``manage_existing`` with a
    ``source-name`` reference and the ``host@backend`` it lives on); return ``{"lv", "host", "backend",
    "rename"}`` or None (appending messages to ``errors``). ``lv``: an LV name LVM accepts, not ``volume-<another
    volume>`` (that LV is another volume's name); ``host``: a storage host of the inventory (checked by the plan);
    ``backend``: its backend's name; ``rename`` (default false): rename the LV ``volume-<name>``."""
    if manage is None:
        return None
    if not isinstance(manage, dict):
        errors.append(shorten(f"{field}.manage: expected {{lv: name, host: storage host, backend: name}}, got "
                              f"{manage!r}"))
        return None
    before = len(errors)
    unknown = unknown_keys(field + ".manage", manage, MANAGE_KEYS)
    if unknown:
        errors.append(unknown)
    try:
        validate_lv_name(manage.get("lv"), field + ".manage.lv")
        validate_text(manage.get("host"), field + ".manage.host", 255, "host name")
        validate_backend_name(manage.get("backend"), field + ".manage.backend")
    except NameError_ as exc:
        errors.append(str(exc))
    lv = manage.get("lv")
    if isinstance(lv, str) and lv.startswith(LV_PREFIX) and name is not None and lv != LV_PREFIX + name:
        errors.append(f"{field}.manage.lv: {lv!r} is the LV name of volume {lv[len(LV_PREFIX):]!r}; an LV named "
                      f"volume-<name> can only be managed as volume <name>")
    rename = manage.get("rename", False)
    if not isinstance(rename, bool):
        errors.append(f"{field}.manage.rename: {rename!r} is not a boolean")
    if len(errors) > before:
        return None
    return {"lv": str(lv), "host": str(manage["host"]), "backend": str(manage["backend"]), "rename": rename}


def _validate_image_source(source, field, errors, before):
    """The image form of ``source`` (``_validate_source``): ``image`` an http(s) URL or an absolute path (on the
    storage node, or with ``controller: true`` on the controller: the role copies it to the node first),
    ``format`` raw or qcow2, ``checksum`` ``sha256:<64 hex>``; not with ``volume``/``snapshot``."""
    given = sorted(k for k in ("volume", "snapshot") if source.get(k) is not None)
    if given:
        errors.append(f"{field}.source.{given[0]}: {source[given[0]]!r} is given with image; a volume is made from "
                      "an image or from a volume, not both")
    try:
        location = validate_location(source["image"], field + ".source.image")
        validate_format(source.get("format"), field + ".source.format")
        checksum = validate_checksum(source.get("checksum"), field + ".source.checksum")
    except NameError_ as exc:
        errors.append(str(exc))
        return None
    controller = source.get("controller", False)
    if not isinstance(controller, bool):
        errors.append(f"{field}.source.controller: {controller!r} is not a boolean")
    elif controller and location["url"]:
        errors.append(f"{field}.source.controller: true takes a path on the controller, not the URL "
                      f"{source['image']!r} (a URL is fetched by the storage node: drop controller)")
    if len(errors) > before:
        return None
    return {"volume": None, "snapshot": None, "image": str(source["image"]), "format": source.get("format"),
            "checksum": None if checksum is None else "sha256:" + checksum, "controller": controller}


def _validate_snapshots(snapshots, field, state, size, hosts, errors):
    """Validate one volume's ``snapshots`` list (appending messages to ``errors``); return the clean dicts.

    Rules that need no host state: names as the snapshot module takes them, each once; ``state`` present, absent
    or reverted; ``cow_size`` (a thick volume's COW store, the snapshot module's option) more than zero and at most
    the volume's size; at most one revert per volume, and none while the inventory attaches the volume (Cinder
    reverts only an available volume); an absent volume lists no present snapshot (its snapshots go with it,
    with ``cascade``)."""
    if snapshots is None:
        return []
    if not isinstance(snapshots, list):
        errors.append(f"{field}.snapshots: expected a list of {{name: ...}}, got {type_name(snapshots)}")
        return []
    clean, seen = [], {}
    for i, snap in enumerate(snapshots):
        sfield = f"{field}.snapshots[{i}]"
        if not isinstance(snap, dict):
            errors.append(shorten(f"{sfield}: expected a dict with at least a name, got {snap!r}"))
            continue
        before = len(errors)
        unknown = unknown_keys(sfield, snap, SNAPSHOT_KEYS)
        if unknown:
            errors.append(unknown)
        name = snap.get("name")
        try:
            validate_snapshot_name(name, sfield + ".name")
        except NameError_ as exc:
            errors.append(str(exc))
            name = None
        if name is not None:
            if name in seen:
                errors.append(f"{sfield}.name: {name!r} is already listed as {seen[name]}")
            seen.setdefault(name, sfield)
        sstate = snap.get("state", "present")
        if sstate not in SNAPSHOT_STATES:
            errors.append(f"{sfield}.state: {sstate!r} is not one of {', '.join(SNAPSHOT_STATES)}")
        elif state == "unmanaged":
            errors.append(f"{sfield}: listed under an unmanaged volume; a volume with snapshots is not unmanaged "
                          "(Cinder refuses it): delete them (state: absent) in an earlier run and take them out")
        elif state == "absent" and sstate != "absent":
            errors.append(f"{sfield}.state: {sstate!r}, but the volume is absent; its snapshots are deleted with it "
                          "(cascade: true on the volume): list them with state: absent or not at all")
        elif sstate == "reverted" and hosts:
            errors.append(f"{sfield}.state: reverted, but the volume is attached to {', '.join(hosts)}; Cinder "
                          "reverts only an available volume: remove its attachments in one run, revert in the next")
        cow = snap.get("cow_size")
        if cow is not None:
            try:
                cow = parse_volume_size(cow, sfield + ".cow_size")
            except SizeError as exc:
                errors.append(str(exc))
                cow = None
            else:
                if cow <= 0:
                    errors.append(f"{sfield}.cow_size: {snap['cow_size']!r} must be greater than zero")
                elif isinstance(size, int) and cow > size:
                    errors.append(f"{sfield}.cow_size: {snap['cow_size']!r} ({cow} bytes) is larger than the "
                                  f"volume's size ({size} bytes); a COW store never needs more")
        description = snap.get("description")
        if description is not None:
            try:
                validate_text(description, sfield + ".description", 255, "description")
            except NameError_ as exc:
                errors.append(str(exc))
        force = snap.get("force", False)
        if not isinstance(force, bool):
            errors.append(f"{sfield}.force: {force!r} is not a boolean")
        if len(errors) > before:
            continue
        clean.append({"field": sfield, "name": str(name), "state": sstate, "cow_size": cow,
                      "description": None if description is None else str(description), "force": force})
    reverts = [snap["field"] for snap in clean if snap["state"] == "reverted"]
    if len(reverts) > 1:
        errors.append(f"{field}.snapshots: {len(reverts)} snapshots with state: reverted ({', '.join(reverts)}); a "
                      "volume is reverted to one snapshot")
    return clean


def type_availability_zones(extra_specs):
    """The zones a volume type allows, from its ``RESKEY:availability_zones`` extra spec (a comma-separated
    list), as Cinder's ``volume_utils.extract_availability_zones_from_volume_type``; ``None`` when the type
    does not restrict zones. Names are stripped and empty ones dropped."""
    if not extra_specs or TYPE_AZ_KEY not in extra_specs:
        return None
    return [az.strip() for az in str(extra_specs[TYPE_AZ_KEY]).split(",") if az.strip()]


def resolve_zones(req, volume_type, extra_specs, default_zone, known_zones):
    """``(zones, error)``: the zones a NEW volume may be placed in, as Cinder's create flow decides them
    (``_extract_availability_zones`` in cinder/volume/flows/api/create_volume.py l. 255-353 at master ab09bc39):

    - a type with ``RESKEY:availability_zones`` allows those of its zones that some pool reports; none of them
      reported is an error (Cinder's ``InvalidTypeAvailabilityZones``);
    - a volume that names no zone gets ``default_zone`` (``blockstore_default_availability_zone``, Cinder's
      ``default_availability_zone``) unless its type restricts zones; without either it may go to any zone;
    - a zone named by the volume (or the default) outside the type's zones is an error (Cinder's
      ``InvalidAvailabilityZone``; ``allow_availability_zone_fallback`` is not offered);
    - the result is the zone asked for, else the type's reported zones, else ``None`` (any).

    ``zones`` is a tuple of zone names or ``None``; the AvailabilityZoneFilter then keeps the pools in them.
    """
    type_zones = type_availability_zones(extra_specs)
    safe = None
    if type_zones is not None:
        safe = [zone for zone in type_zones if zone in known_zones]
        if not safe:
            return None, (f"{req.field}.volume_type: volume type {volume_type} allows only zone(s) "
                          f"{', '.join(type_zones) or '(none)'} ({TYPE_AZ_KEY}), and no pool reports any of them; "
                          f"pools report: {', '.join(sorted(known_zones)) or 'none'}")
    zones = req.availability_zones
    if zones is None and type_zones is None and default_zone:
        zones = (default_zone,)
    if zones and safe is not None:
        outside = [zone for zone in zones if zone not in safe]
        if outside:
            return None, (f"{req.field}.availability_zone: {', '.join(outside)} is not a zone volume type "
                          f"{volume_type} allows ({TYPE_AZ_KEY}: {', '.join(safe)})")
    if zones:
        return tuple(zones), None
    return (tuple(safe) if safe is not None else None), None


def check_options(volume_types, weight_multiplier, default_volume_type, consumers, default_zone=None):
    """Validate the plan's options (not the volumes); raise :class:`ScheduleError` naming each bad one by its
    inventory variable (``blockstore_default_volume_type`` for the ``default_volume_type`` option, ...)."""
    errors = []
    if isinstance(weight_multiplier, bool) or not isinstance(weight_multiplier, (int, float)) \
            or math.isnan(weight_multiplier) or math.isinf(weight_multiplier):
        errors.append(f"blockstore_capacity_weight_multiplier: {weight_multiplier!r} is not a finite number")
    if default_volume_type is not None and default_volume_type not in volume_types:
        errors.append(f"blockstore_default_volume_type: {default_volume_type!r} is not a defined volume type; defined: "
                      f"{', '.join(sorted(volume_types)) or 'none'}")
    if consumers is not None and (not isinstance(consumers, list) or not all(isinstance(c, str) for c in consumers)):
        errors.append(shorten(f"consumers: {consumers!r} is not a list of host names"))
    if default_zone is not None and (not isinstance(default_zone, str) or not default_zone):
        errors.append(f"blockstore_default_availability_zone: {default_zone!r} is not a zone name")
    if errors:
        raise ScheduleError(errors)

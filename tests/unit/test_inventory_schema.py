"""The inventory schema is written once, as the nested ``options`` of the blockstore role's argument spec
(``blockstore_volumes`` and ``blockstore_volume_types`` in the ``plan`` entry point, ``blockstore_backends`` in
``gather``). These tests prove that everything else agrees with it:

(a) the Python validators (the plan's ``validate_requests``/``validate_volume_types``, ``validate_backends``)
    accept exactly its keys, require what it requires and accept exactly its choices;
(b) the module option specs that receive the same fields (``backend_options()``, the volume and attachment
    modules' ``ITEM_OPTIONS``) and the lvm_backend role's copy agree on names, types, choices and defaults;
(c) docs/inventory.md documents every key, and no other, with the same type, choices and defaults;
(d) the defaults the code applies are the spec's defaults;

and that Ansible's own validation of the spec accepts the shipped inventories and refuses an unknown key.
"""

import glob
import os
import re

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible_collections.ember.blockstore.plugins.module_utils import _attachment, _volume
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import (
    RENAMED_BACKEND_KEYS,
    backend_config,
    backend_options,
    validate_backends,
)
from ansible_collections.ember.blockstore.plugins.module_utils._size import parse_clear_size
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler import request_spec
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.exception import ScheduleError
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.request_spec import (
    validate_requests,
    validate_volume_types,
)
from ansible_collections.ember.blockstore.plugins.plugin_utils.scheduler.sched_utils import DEFAULT_MOSR

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC_KEYS = ("type", "elements", "choices", "default", "required")


def load(path):
    with open(os.path.join(ROOT, path)) as handle:
        return yaml.safe_load(handle)


ROLE = load("roles/blockstore/meta/argument_specs.yml")["argument_specs"]
VOLUMES = ROLE["plan"]["options"]["blockstore_volumes"]
TYPES = ROLE["plan"]["options"]["blockstore_volume_types"]
BACKENDS = ROLE["gather"]["options"]["blockstore_backends"]
VOLUME_OPTIONS = VOLUMES["options"]
ATTACHMENT_OPTIONS = VOLUME_OPTIONS["attachments"]["options"]
BACKEND_OPTIONS = BACKENDS["options"]
# The backend keys of the schema without the deprecated names of RENAMED_BACKEND_KEYS (pool, pool_size).
CURRENT_BACKEND_OPTIONS = {key: spec for key, spec in BACKEND_OPTIONS.items() if key not in RENAMED_BACKEND_KEYS}

# A valid value for every key of the schema (the tests check that this covers the spec exactly).
VOLUME_SAMPLES = {"name": "vol1", "size": "1GiB", "volume_type": "fast", "availability_zone": ["az1", "az2"],
                  "state": "present", "migration_policy": "on-demand", "backend": "stor1@thin#thin-pools",
                  "attachments": [{"host": "client1"}, {"host": "old", "state": "absent", "force": True}],
                  "force": True, "is_multiattach": True,
                  "backup": {"policy": "daily", "keep_last": 7, "keep_daily": 7, "keep_weekly": 4, "incremental": True},
                  "description": "for humans", "cascade": False, "project": "web",
                  "metadata": {"owner": "web team"},
                  "source": {"volume": "vol0", "snapshot": "nightly"},
                  "manage": {"lv": "old_lv", "host": "stor1", "backend": "thin", "rename": True},
                  "snapshots": [{"name": "nightly", "cow_size": "512MiB", "description": "before", "state": "present",
                                 "force": False}]}
BACKEND_SAMPLES = {"name": "thin", "driver": "lvm_thin", "vg": "vg0", "pvs": ["/dev/vdb"], "thin_pool": "tp",
                   "thin_pool_size": "3GiB", "availability_zone": "az1", "reserved_percentage": 5,
                   "max_over_subscription_ratio": "auto", "volume_backend_name": "thin-pools",
                   "capabilities": {"disk_type": "ssd"}, "volume_clear": "none", "volume_clear_size": "100",
                   "mutual_chap": True}
# The keys of an nfs backend (refused for the LVM drivers, as vg, pvs, thin_pool and thin_pool_size are for nfs).
NFS_SAMPLES = {"shares": ["198.18.0.21:/srv/ember-nfs"], "mount_options": ["rw", "hard", "vers=4.1"],
               "mount_point_base": "/var/lib/ember/mnt", "sparse": False}
NFS_BACKEND = {"name": "nfs1", "driver": "nfs", "shares": ["198.18.0.21:/srv/ember-nfs"]}
LVM_ONLY = ("vg", "pvs", "thin_pool", "thin_pool_size")
TYPES_SAMPLE = {"fast": {"extra_specs": {"volume_backend_name": "thin"}}}


def bare(spec):
    """An option spec without its documentation (suboptions included), as a module's argument_spec has it."""
    out = {key: spec[key] for key in SPEC_KEYS if key in spec}
    if "options" in spec:
        out["options"] = {name: bare(sub) for name, sub in spec["options"].items()}
    return out


def text(spec):
    desc = spec.get("description", "")
    return " ".join(desc) if isinstance(desc, list) else desc


def messages(exc):
    errors = exc.args[0]
    return [str(e) for e in errors] if isinstance(errors, list) else [str(errors)]


def volume_errors(volumes, types=None):
    try:
        validate_requests(volumes, validate_volume_types(TYPES_SAMPLE if types is None else types),
                          consumers=["client1"])
    except ScheduleError as exc:
        return messages(exc)
    return []


def backend_error(backend):
    try:
        validate_backends([backend])
    except ValueError as exc:
        return str(exc)
    return None


def allowed_in(message):
    """The key list of an 'unknown key(s) ...; allowed: a, b' message."""
    match = re.search(r"allowed: (.*)$", message)
    assert match, message
    return {key.strip() for key in match.group(1).split(",")}


# (a) the validators accept exactly the spec's keys, requirements and choices.

def test_samples_cover_the_spec():
    assert set(VOLUME_SAMPLES) == set(VOLUME_OPTIONS)
    assert set(BACKEND_SAMPLES) | set(NFS_SAMPLES) == set(CURRENT_BACKEND_OPTIONS)
    assert set(BACKEND_OPTIONS) == set(CURRENT_BACKEND_OPTIONS) | set(RENAMED_BACKEND_KEYS)


def test_volume_keys_are_the_validator_keys():
    assert set(VOLUME_OPTIONS) == set(request_spec.VOLUME_KEYS)
    assert set(ATTACHMENT_OPTIONS) == set(request_spec.ATTACHMENT_KEYS)
    # What the validator says it allows when it meets an unknown key, not only its constant.
    (message,) = volume_errors([{"name": "vol1", "size": 1, "zz_unknown": 1}])
    assert "zz_unknown" in message and allowed_in(message) == set(VOLUME_OPTIONS)
    (message,) = volume_errors([{"name": "vol1", "size": 1, "attachments": [{"host": "client1", "zz": 1}]}])
    assert "zz" in message and allowed_in(message) == set(ATTACHMENT_OPTIONS)


def test_every_volume_key_is_accepted():
    # manage and source exclude each other (a volume is either made from a source or managed from an LV).
    assert volume_errors([{k: v for k, v in VOLUME_SAMPLES.items() if k != "manage"}]) == []
    (message,) = volume_errors([VOLUME_SAMPLES])
    assert message.startswith("blockstore_volumes[0].manage: given with source")
    for key, value in VOLUME_SAMPLES.items():
        item = {"name": "vol1", "size": 1, key: value}
        assert volume_errors([item]) == [], key


def test_volume_required_keys():
    required = {key for key, spec in VOLUME_OPTIONS.items() if spec.get("required")}
    assert required == {"name"}
    for key in VOLUME_OPTIONS:
        # without manage: it and source exclude each other (test_every_volume_key_is_accepted)
        item = {k: v for k, v in VOLUME_SAMPLES.items() if k not in (key, "manage")}
        errors = volume_errors([item])
        if key in required:
            assert errors and all(".%s:" % key in e for e in errors), (key, errors)
        elif key == "size":
            # Not required by the spec: only a present volume without a source needs one (an absent one is deleted
            # by name; one made from a source defaults to the source's size).
            assert errors == []
            errors = volume_errors([{k: v for k, v in item.items() if k != "source"}])
            assert errors and "size: missing" in errors[0]
            # nor one managed from an existing LV (its size is the LV's)
            assert volume_errors([dict({k: v for k, v in item.items() if k != "source"},
                                       manage=VOLUME_SAMPLES["manage"])]) == []
            assert volume_errors([dict(item, state="absent", attachments=[], force=False, snapshots=[],
                                       source=None)]) == []
        else:
            assert errors == [], (key, errors)
    assert ATTACHMENT_OPTIONS["host"].get("required") is True
    errors = volume_errors([{"name": "vol1", "size": 1, "attachments": [{}]}])
    assert errors and "attachments[0].host" in errors[0]


@pytest.mark.parametrize("key", ["state"])
def test_volume_choices(key):
    choices = VOLUME_OPTIONS[key]["choices"]
    for choice in choices:
        assert volume_errors([{"name": "vol1", "size": 1, key: choice}]) == []
    errors = volume_errors([{"name": "vol1", "size": 1, key: "zz-not-a-choice"}])
    assert errors and "is not one of %s" % ", ".join(choices) in errors[0]


def test_volume_options_with_choices_are_known():
    with_choices = {key for key, spec in VOLUME_OPTIONS.items() if "choices" in spec}
    assert with_choices == {"state", "migration_policy"}


def test_volume_types_keys():
    """The value shape of blockstore_volume_types (a dict keyed by free names, which an argument spec cannot
    describe) is stated in its description; the validator allows exactly those keys."""
    assert TYPES["type"] == "dict" and "options" not in TYPES
    described = set(re.findall(r"C\((\w+)\) \(", text(TYPES)))
    assert described == set(request_spec.TYPE_KEYS)
    with pytest.raises(ScheduleError) as info:
        validate_volume_types({"t": {"zz_unknown": 1}})
    (message,) = messages(info.value)
    assert allowed_in(message) == described
    assert validate_volume_types({"t": {key: {} if key in ("extra_specs", "qos_specs") else
                                        True if key == "mutual_chap" else "x" for key in described}})


def test_backend_keys_are_the_validator_keys():
    message = backend_error({"name": "b", "vg": "vg0", "zz_unknown": 1})
    assert "unknown keys zz_unknown" in message
    assert set(CURRENT_BACKEND_OPTIONS) == set(backend_options())


@pytest.mark.parametrize("old", sorted(RENAMED_BACKEND_KEYS))
def test_renamed_backend_keys(old):
    """The names of thin_pool and thin_pool_size before 0.2.0 are options of the schema without a default (separate
    options: the role argument spec schema of ansible-lint has no aliases), mutually exclusive with the new name,
    and deprecated aliases of the module option; the validators accept them and refuse both names."""
    new = RENAMED_BACKEND_KEYS[old]
    assert new in CURRENT_BACKEND_OPTIONS
    assert bare(BACKEND_OPTIONS[old]) == {"type": CURRENT_BACKEND_OPTIONS[new]["type"]}
    assert "Deprecated" in text(BACKEND_OPTIONS[old]) and "O(blockstore_backends[].%s)" % new in text(
        BACKEND_OPTIONS[old])
    assert "O(blockstore_backends[].%s)" % old in text(BACKEND_OPTIONS[new])
    assert [new, old] in BACKENDS["mutually_exclusive"]
    module = backend_options()[new]
    assert module["aliases"] == [old]
    assert module["deprecated_aliases"] == [{"name": old, "version": "1.0.0", "collection_name": "ember.blockstore"}]
    value = BACKEND_SAMPLES[new]
    assert backend_error({"name": "b", "vg": "vg0", old: value}) is None
    assert validate_backends([{"name": "b", "vg": "vg0", old: value}]) == [{"name": "b", "vg": "vg0", new: value}]
    message = backend_error({"name": "b", "vg": "vg0", old: value, new: value})
    assert "both %s and %s" % (new, old) in message
    assert ansible_errors(BACKENDS, [{"name": "b", "vg": "vg0", old: value}]) == []
    assert ansible_errors(BACKENDS, [{"name": "b", "vg": "vg0", old: value, new: value}]) == [
        "parameters are mutually exclusive: %s|%s found in x" % (new, old)]


def test_every_backend_key_is_accepted():
    assert backend_error(BACKEND_SAMPLES) is None
    for key, value in BACKEND_SAMPLES.items():
        assert backend_error({"name": "b", "vg": "vg0", key: value}) is None, key
    nfs = dict(BACKEND_SAMPLES, driver="nfs", **NFS_SAMPLES)
    for key in LVM_ONLY:
        nfs.pop(key)
    assert backend_error(nfs) is None
    for key, value in dict(BACKEND_SAMPLES, **NFS_SAMPLES).items():
        if key not in LVM_ONLY and key != "driver":
            assert backend_error(dict(NFS_BACKEND, **{key: value})) is None, key


def test_backend_keys_of_the_other_kind_are_refused():
    """The keys of one kind of backend given for the other are refused, naming the field and the value."""
    for key in LVM_ONLY:
        message = backend_error(dict(NFS_BACKEND, **{key: BACKEND_SAMPLES[key]}))
        assert message and "blockstore_backends[0].%s" % key in message and str(BACKEND_SAMPLES[key])[:6] in message, \
            (key, message)
    for key, value in NFS_SAMPLES.items():
        message = backend_error({"name": "b", "vg": "vg0", key: value})
        assert message and "blockstore_backends[0].%s" % key in message and "driver nfs" in message, (key, message)
    message = backend_error({"name": "n", "driver": "nfs"})
    assert "blockstore_backends[0].shares" in message and "None" in message, message
    message = backend_error(dict(NFS_BACKEND, shares=["nas.example:/srv"]))
    assert "blockstore_backends[0].shares[0]" in message and "nas.example" in message, message
    message = backend_error(dict(NFS_BACKEND, mount_options=["rw", "ro"]))
    assert "blockstore_backends[0].mount_options" in message and "'ro'" in message, message


def test_backend_required_keys():
    required = {key for key, spec in BACKEND_OPTIONS.items() if spec.get("required")}
    assert required == {"name"}
    # vg is required for the LVM drivers (the role spec's required_if, validate_backends), shares for nfs.
    assert BACKENDS["required_if"] == [["driver", "lvm", ["vg"]], ["driver", "lvm_thin", ["vg"]]]
    for key in BACKEND_OPTIONS:
        error = backend_error({k: v for k, v in BACKEND_SAMPLES.items() if k != key})
        if key in required or key == "vg":
            assert error and ".%s" % key in error, key
        else:
            assert error is None, (key, error)
    assert ansible_errors(BACKENDS, [{"name": "b"}]) == ["driver is lvm but all of the following are missing: vg "
                                                         "found in x"]
    assert ansible_errors(BACKENDS, [NFS_BACKEND]) == []


@pytest.mark.parametrize("key", ["driver", "volume_clear"])
def test_backend_choices(key):
    choices = BACKEND_OPTIONS[key]["choices"]
    for choice in choices:
        base = dict(NFS_BACKEND) if choice == "nfs" else {"name": "b", "vg": "vg0"}
        assert backend_error(dict(base, **{key: choice})) is None
    message = backend_error({"name": "b", "vg": "vg0", key: "zz-not-a-choice"})
    assert "is not one of" in message and "zz-not-a-choice" in message and ".%s" % key in message


# (b) the module option specs and the lvm_backend role's copy agree with the schema.

def test_backend_options_are_the_module_spec():
    """backend_info takes ``backends`` with backend_options() (and validate_backends applies it): names, types,
    elements, choices, defaults and requirements are the role spec's, option for option (the module has the
    renamed keys as aliases, see test_renamed_backend_keys)."""
    module = {name: {key: value for key, value in spec.items() if key not in ("aliases", "deprecated_aliases")}
              for name, spec in backend_options().items()}
    assert {name: bare(spec) for name, spec in CURRENT_BACKEND_OPTIONS.items()} == module


def test_lvm_backend_role_has_the_same_backend_options():
    copy = load("roles/lvm_backend/meta/argument_specs.yml")["argument_specs"]["main"]["options"]
    assert copy["blockstore_backends"]["options"] == BACKEND_OPTIONS, (
        "roles/lvm_backend/meta/argument_specs.yml: blockstore_backends.options must be a copy of the "
        "blockstore role's gather entry point's (the schema)")
    assert bare(copy["blockstore_backends"])["type"] == "list"
    assert copy["blockstore_backends"]["mutually_exclusive"] == BACKENDS["mutually_exclusive"]
    assert copy["blockstore_backends"]["required_if"] == BACKENDS["required_if"]


# volume module option -> (schema, field) it receives; None: a module-only option (no inventory key).
VOLUME_MODULE_FIELDS = {
    "name": (VOLUME_OPTIONS, "name"),
    "size": (VOLUME_OPTIONS, "size"),
    "state": (VOLUME_OPTIONS, "state"),
    "volume_type": (VOLUME_OPTIONS, "volume_type"),
    "force": (VOLUME_OPTIONS, "force"),
    "vg": (BACKEND_OPTIONS, "vg"),
    "thin_pool": (BACKEND_OPTIONS, "thin_pool"),  # the plan gives the pool of lvm_thin backends, None for lvm
    "backend": (BACKEND_OPTIONS, "name"),
    "volume_clear": (BACKEND_OPTIONS, "volume_clear"),
    "volume_clear_size": (BACKEND_OPTIONS, "volume_clear_size"),
    "cascade": (VOLUME_OPTIONS, "cascade"),
    "source": (VOLUME_OPTIONS, "source"),
    "manage": (VOLUME_OPTIONS, "manage"),  # the plan gives lv and rename (host and backend: the item's vg and pool)
    "description": (VOLUME_OPTIONS, "description"),
    "metadata": (VOLUME_OPTIONS, "metadata"),
    "retype": None,  # set by the plan when the volume type changes and the pool still satisfies the new one
}
ATTACHMENT_MODULE_FIELDS = {
    "volume": (VOLUME_OPTIONS, "name"),
    "vg": (BACKEND_OPTIONS, "vg"),
    "state": (ATTACHMENT_OPTIONS, "state"),  # present/absent (the volume's state also has unmanaged)
    "initiators": None,  # from the attachments' hosts: each consumer's initiator IQN
    "initiator_addresses": None,  # each consumer's blockstore_storage_ip
    "chap_username": None,
    "chap_password": None,
    # Mutual CHAP (issue 12): module options for now; the volume type / backend option that sets them is wired
    # into the plan separately (reclassify them then).
    "mutual_chap": None,
    "target_chap_username": None,
    "target_chap_password": None,
}


@pytest.mark.parametrize("module_options, fields", [
    (_volume.ITEM_OPTIONS, VOLUME_MODULE_FIELDS),
    (_attachment.ITEM_OPTIONS, ATTACHMENT_MODULE_FIELDS),
], ids=["volume", "attachment"])
def test_module_item_options_agree(module_options, fields):
    assert set(module_options) == set(fields), "classify every module option: schema field or module-only"
    for option, target in fields.items():
        if target is None:
            continue
        schema, field = target
        mine, theirs = module_options[option], schema[field]
        assert "choices" not in mine or mine["choices"] == theirs.get("choices"), option
        assert "choices" not in theirs or theirs["choices"] == mine.get("choices"), option
        if mine["type"] != "raw":  # raw in the module: it parses the value itself (a size)
            assert mine["type"] == theirs["type"], option
        if field == "name" and option != "backend":
            assert mine.get("required") is True and theirs.get("required") is True, option
        if field == "vg":  # the pool's vg (the share for an nfs backend): required wherever the schema's can be
            assert mine.get("required") is True and ["driver", "lvm", ["vg"]] in BACKENDS["required_if"], option
        if option == "volume_clear_size":
            # The module gets bytes from the plan; both defaults mean "wipe the whole volume".
            assert parse_clear_size(mine["default"]) == parse_clear_size(theirs["default"]) == 0
        elif option != "thin_pool" and ("default" in mine or "default" in theirs):
            assert mine.get("default") == theirs.get("default"), option


# (c) docs/inventory.md documents exactly the schema.

def doc_tables():
    """{heading: {key: {column: cell}}} of every table in docs/inventory.md."""
    tables, heading, header = {}, None, None
    with open(os.path.join(ROOT, "docs", "inventory.md")) as handle:
        for line in handle:
            line = line.rstrip("\n")
            if line.startswith("#"):
                heading, header = line.lstrip("#").strip(), None
            elif line.startswith("|"):
                cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
                if header is None:
                    header = cells
                elif not set(line) <= set("|-: "):
                    assert len(cells) == len(header), "docs/inventory.md: %r has %d columns, not %d" % (
                        line, len(cells), len(header))
                    key = cells[0].strip("`")
                    tables.setdefault(heading, {})[key] = dict(zip(header, cells))
            else:
                header = None if not line.strip() else header
    return tables


DOCS = doc_tables()
DOC_SCHEMAS = [("Volume", VOLUME_OPTIONS), ("Backend", BACKEND_OPTIONS)]


def rendered(value):
    """How docs/inventory.md writes a default value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value == [] or value == {}:
        return "[]" if value == [] else "{}"
    if isinstance(value, list):
        return "[%s]" % ", ".join(str(v) for v in value)
    if value == "":
        return '""'
    return str(value)


@pytest.mark.parametrize("heading, options", DOC_SCHEMAS, ids=[heading for heading, _options in DOC_SCHEMAS])
def test_docs_list_exactly_the_spec_keys(heading, options):
    assert list(DOCS[heading]) == list(options), "docs/inventory.md, %s: keys (in the spec's order)" % heading


@pytest.mark.parametrize("heading, options", DOC_SCHEMAS, ids=[heading for heading, _options in DOC_SCHEMAS])
def test_docs_types_choices_and_defaults(heading, options):
    for key, spec in options.items():
        row = DOCS[heading][key]
        where = "docs/inventory.md, %s, %s" % (heading, key)
        doc_type, default = row["type"], row["default"]
        for choice in spec.get("choices", []):
            assert "`%s`" % choice in doc_type, where
        if "choices" not in spec and spec["type"] != "raw":
            word = {"str": "str", "int": "int", "bool": "bool", "list": "list", "dict": "dict"}[spec["type"]]
            assert word in doc_type, (where, doc_type)
        if spec.get("required"):
            assert default == "required", where
        elif "default" in spec:
            assert default == "`%s`" % rendered(spec["default"]), (where, default, spec["default"])
        else:
            # No literal default: null, a condition, or another variable/key the spec's description names.
            ref = default.strip("`")
            assert default == "null" or default.startswith("required ") or (
                "O(%s)" % ref in text(spec) or "O(blockstore_backends[].%s)" % ref in text(spec)), (where, default)
    for key, spec in options.items():
        for sub in spec.get("options", {}):
            assert "`%s" % sub in DOCS[heading][key]["type"] + DOCS[heading][key]["meaning"], (heading, key, sub)
            if spec["options"][sub].get("required"):
                assert "`%s` (required)" % sub in DOCS[heading][key]["meaning"], (heading, key, sub)


def test_docs_volume_type_table():
    table = DOCS["Volume type"]
    assert set(table) == set(re.findall(r"C\((\w+)\) \(", text(TYPES)))
    defaults = validate_volume_types({"t": {}})["t"]
    assert table["extra_specs"]["default"] == "`%s`" % rendered(defaults["extra_specs"])
    assert table["description"]["default"] == "null" and defaults["description"] is None


def test_docs_top_level_variables_are_in_a_role_spec():
    """Every variable of the docs' variable tables is an option of some role entry point, with its default."""
    specs = {}
    for path in glob.glob(os.path.join(ROOT, "roles", "*", "meta", "argument_specs.yml")):
        for entry in load(path)["argument_specs"].values():
            for name, spec in (entry.get("options") or {}).items():
                specs.setdefault(name, []).append(spec)
    for heading, table in DOCS.items():
        for name, row in table.items():
            if not name.startswith("blockstore_"):
                continue
            assert name in specs, "docs/inventory.md, %s: %s is in no role's argument spec" % (heading, name)
            if "default" in row and row["default"].startswith("`"):
                assert any(rendered(s.get("default")) == row["default"].strip("`") for s in specs[name]), (name, row)
    for name in ("blockstore_volumes", "blockstore_volume_types", "blockstore_backends"):
        assert any(name in table for table in DOCS.values()), name


# (d) the defaults the code applies are the spec's.

def test_volume_defaults_are_the_validator_defaults():
    (request,) = validate_requests([{"name": "vol1", "size": 1}])
    applied = {"state": request.state, "force": request.force, "attachments": request.attachments,
               "description": request.description, "cascade": request.cascade, "snapshots": request.snapshots,
               "metadata": request.metadata, "is_multiattach": request.is_multiattach, "backup": request.backup,
               "project": request.project, "source": request.source, "volume_type": request.volume_type,
               "manage": request.manage,
               "availability_zone": request.availability_zones, "migration_policy": request.migration_policy,
               "backend": request.backend}
    for key, spec in VOLUME_OPTIONS.items():
        if key in ("name", "size"):
            continue
        assert applied[key] == spec.get("default"), key
    assert VOLUME_OPTIONS["volume_type"].get("default") is None
    assert "O(blockstore_default_volume_type)" in text(VOLUME_OPTIONS["volume_type"])
    assert "O(blockstore_default_availability_zone)" in text(VOLUME_OPTIONS["availability_zone"])


def test_backend_defaults_are_the_code_defaults():
    cfg = {key: spec.get("default") for key, spec in CURRENT_BACKEND_OPTIONS.items()}
    cfg.update(name="b", vg="vg0")
    nfs = backend_config(dict(cfg, vg=None, driver="nfs", shares=NFS_BACKEND["shares"]))
    assert nfs["mount_options"] == BACKEND_OPTIONS["mount_options"]["default"] == ["rw", "hard", "noatime", "vers=4.2"]
    assert nfs["sparse"] is BACKEND_OPTIONS["sparse"]["default"] is True
    normalised = backend_config(cfg)
    assert normalised["volume_backend_name"] == "b"  # "default O(blockstore_backends[].name)"
    assert "default O(blockstore_backends[].name)" in text(BACKEND_OPTIONS["volume_backend_name"])
    assert normalised["max_over_subscription_ratio"] == BACKEND_OPTIONS["max_over_subscription_ratio"]["default"]
    assert BACKEND_OPTIONS["max_over_subscription_ratio"]["default"] == DEFAULT_MOSR
    assert parse_clear_size(BACKEND_OPTIONS["volume_clear_size"]["default"]) == 0
    # validate_backends applies backend_options()' defaults, which test_backend_options_are_the_module_spec
    # shows are the spec's.
    assert validate_backends([{"name": "b", "vg": "vg0"}])


def test_role_defaults_file_agrees_with_the_spec():
    """defaults/main.yml (what the role applies) and the argument spec's defaults agree."""
    defaults = load("roles/blockstore/defaults/main.yml")
    for entry in ROLE.values():
        for name, spec in (entry.get("options") or {}).items():
            if name in defaults:
                assert defaults[name] == spec.get("default"), name


# Ansible's own validation of the spec (what runs when the role starts).

def ansible_errors(spec, values):
    return ArgumentSpecValidator({"x": spec}).validate({"x": values}).error_messages


@pytest.mark.parametrize("inventory", ["lab", "example"])
def test_shipped_inventories_pass_the_role_validation(inventory):
    data = load("inventories/%s/group_vars/all.yml" % inventory)
    assert ansible_errors(VOLUMES, data["blockstore_volumes"]) == []
    assert ansible_errors(TYPES, data["blockstore_volume_types"]) == []
    paths = glob.glob(os.path.join(ROOT, "inventories", inventory, "host_vars", "*.yml"))
    assert paths
    for path in paths:
        assert ansible_errors(BACKENDS, load(path)["blockstore_backends"]) == [], path


def test_role_validation_accepts_what_the_validators_accept():
    assert ansible_errors(VOLUMES, [VOLUME_SAMPLES, {"name": "gone", "state": "absent"},
                                    {"name": "v2", "size": 10, "availability_zone": "az1"}]) == []
    assert ansible_errors(BACKENDS, [BACKEND_SAMPLES, {"name": "b", "vg": "vg0", "thin_pool_size": 3 * 2**30,
                                                       "volume_clear_size": 0, "max_over_subscription_ratio": 4},
                                     dict(NFS_BACKEND, **NFS_SAMPLES)]) == []


def test_role_validation_refuses_unknown_keys():
    assert any("zz_unknown" in e for e in ansible_errors(VOLUMES, [{"name": "v", "size": 1, "zz_unknown": 1}]))
    assert any("zz_unknown" in e for e in ansible_errors(VOLUMES, [{"name": "v", "attachments": [{"host": "c",
                                                                                                  "zz_unknown": 1}]}]))
    assert any("zz_unknown" in e for e in ansible_errors(BACKENDS, [{"name": "b", "vg": "v", "zz_unknown": 1}]))
    assert ansible_errors(VOLUMES, [{"name": "v", "state": "gone"}])
    assert ansible_errors(BACKENDS, [{"name": "b", "vg": "v", "driver": "lvm_thick"}])


def test_the_lab_nfs_layer_passes_the_role_validation():
    """inventories/lab-nfs (layered on the lab by test_nfs): stor1's backends with nfs1, the types with "files"."""
    backends = load("inventories/lab-nfs/host_vars/stor1.yml")["blockstore_backends"]
    assert ansible_errors(BACKENDS, backends) == []
    assert [b["name"] for b in validate_backends(backends)] == ["lvm-thick", "lvm-thin", "nfs1"]
    lab = load("inventories/lab/host_vars/stor1.yml")["blockstore_backends"]
    assert backends[:2] == lab, "inventories/lab-nfs/host_vars/stor1.yml repeats the lab's LVM backends"
    types = load("inventories/lab-nfs/group_vars/all.yml")["blockstore_volume_types"]
    assert ansible_errors(TYPES, types) == []
    assert {k: v for k, v in types.items() if k != "files"} == load("inventories/lab/group_vars/all.yml")[
        "blockstore_volume_types"]
    assert types["files"]["extra_specs"]["volume_backend_name"] == "nfs1"
    exports = load("inventories/lab-nfs/host_vars/client1.yml")["blockstore_nfs_exports"]
    assert exports == [{"path": "/srv/ember-nfs", "clients": ["198.18.0.11", "198.18.0.21"]}]

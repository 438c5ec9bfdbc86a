# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The consumer side of an NFS volume (issue 14; the ``connection`` module's items with ``driver_volume_type:
nfs``), after os-brick's remotefs connector: the ``connection_info`` of Cinder's NFS driver (``{"driver_volume_type":
"nfs", "data": {"export": "<server>:/<path>", "name": "volume-<name>", "format": "raw", "options": "<mount
options>"}}``) is mounted and its file attached with a loop device.

- **Mount.** The share at ``<mount_point_base>/<first 32 hex digits of the share's SHA-256>`` (the path the storage
  node uses, :func:`drivers.nfs.mount_point`), read-write with the backend's options, through the driver's bounded
  ``mount`` (under ``timeout``) and ``stat -f`` probe: a server that does not answer fails the item within those
  bounds, naming the share, instead of hanging the module. Nothing is written to ``/etc/fstab``.
- **Attach.** ``losetup --find --show --direct-io=on <file>`` (direct I/O: the page cache of the loop device and the
  NFS client's would otherwise hold the same data twice), unless a loop device is bound to that file already (the
  kernel's ``/sys/block/loop*/loop/backing_file``, which is what ``losetup -j`` lists; reading sysfs never touches
  the NFS server, so a hung server cannot block the read). The stable path is the symlink
  ``/dev/ember/<volume>`` to the loop device (:data:`LINK_DIR`); the loop device's number may change between attaches.
- **Extend.** A loop device smaller than ``size_bytes`` (the storage node grew the file) is re-read with ``losetup
  -c`` (action ``resize``), as the iSCSI path rescans its session.
- **Detach** (``state: absent``). Refused when the loop device (or a partition of it) is mounted, held or open,
  unless ``force``; then ``losetup -d``, the link removed, and the share unmounted when no other loop device is
  bound to a file on it.

Loop devices, links and mounts are not persistent: after a reboot the consumer has none, and the next converge run
(whose gather sees the missing link) attaches the volume again.
"""

from __future__ import annotations

import os
import time

from ansible_collections.ember.blockstore.plugins.module_utils._argspec import (
    DEFAULT_MOUNT_OPTIONS,
    DEFAULT_MOUNT_POINT_BASE,
    canonical_share,
)
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_, show_value
from ansible_collections.ember.blockstore.plugins.module_utils._nfs import _path as valid_path
from ansible_collections.ember.blockstore.plugins.module_utils._nfs import mount_options as valid_mount_options
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import nfs as nfs_driver
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.iscsiadm import device_in_use, mounted_devices

__all__ = ["LINK_DIR", "SYS_BLOCK", "NFS", "is_nfs", "validate_nfs", "loop_devices", "attached_volumes", "read_nfs",
           "decide_nfs", "NfsConnectionApplier", "link_path"]

NFS = "nfs"
# The stable device paths: /dev/ember/<volume>, a symlink to the loop device.
LINK_DIR = "/dev/ember"
SYS_BLOCK = "/sys/block"
FORMATS = ("raw",)
UNMOUNT_TRIES = 5


def is_nfs(item):
    return (item.get("driver_volume_type") or "iscsi") == NFS


def link_path(volume, link_dir=None):
    return os.path.join(link_dir or LINK_DIR, volume)


def _read(path):
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


def loop_devices(sys_block=None):
    """``{"/dev/loopN": {"backing_file", "size_bytes"}}`` of every loop device bound to a file (sysfs: no NFS
    access). A backing file the kernel shows as ``<path> (deleted)`` keeps that suffix."""
    base = sys_block or SYS_BLOCK
    out = {}
    try:
        names = sorted(n for n in os.listdir(base) if n.startswith("loop") and n[4:].isdigit())
    except OSError:
        return out
    for name in names:
        backing = _read(os.path.join(base, name, "loop", "backing_file"))
        if not backing:
            continue
        sectors = _read(os.path.join(base, name, "size"))
        out["/dev/" + name] = {"backing_file": backing,
                               "size_bytes": int(sectors) * 512 if sectors and sectors.isdigit() else None}
    return out


def attached_volumes(link_dir=None, sys_block=None):
    """What ``initiator_info`` reports of the NFS volumes attached here: one entry per link ``/dev/ember/<volume>``
    to a loop device bound to a file, ``{volume, device, loop_device, backing_file, share_hash, size_bytes}``
    (``share_hash``: the name of the mount point directory, the first 32 hex digits of the share's SHA-256)."""
    base = link_dir or LINK_DIR
    loops = loop_devices(sys_block)
    out = []
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return out
    for name in names:
        link = os.path.join(base, name)
        if not os.path.islink(link):
            continue
        loop = loops.get(os.path.realpath(link))
        if loop is None:
            continue
        backing = loop["backing_file"]
        out.append({"volume": name, "device": link, "loop_device": os.path.realpath(link), "backing_file": backing,
                    "share_hash": os.path.basename(os.path.dirname(backing)), "size_bytes": loop["size_bytes"]})
    return out


def validate_nfs(item, where):
    """Errors of one NFS item (naming the field and the value); fills ``share``, ``options`` and ``file_name``."""
    errors = []
    data = item.get("data")
    if not isinstance(data, dict):
        return ["%s.data: %s is not the data of an nfs connection_info (export, name, format, options)"
                % (where, show_value(data))]
    try:
        volume = item.get("volume")
        if not isinstance(volume, str):
            raise NameError_("%s.volume: %s is required for driver_volume_type nfs (the name of /dev/ember/<volume>)"
                             % (where, show_value(volume)))
        nfs_driver.validate_nfs_volume_name(volume, where + ".volume")
        item["share"] = canonical_share(data.get("export"), where + ".data.export")
        name = data.get("name")
        if name != nfs_driver.volume_file(volume):
            raise NameError_("%s.data.name: %s is not %s, the file of volume %s"
                             % (where, show_value(name), nfs_driver.volume_file(volume), volume))
        item["file_name"] = name
        fmt = data.get("format", "raw")
        if fmt not in FORMATS:
            raise NameError_("%s.data.format: %s is not raw (a loop device attaches raw files only)"
                             % (where, show_value(fmt)))
        options = data.get("options")
        if options is None or options == "":
            options = ",".join(DEFAULT_MOUNT_OPTIONS)
        if not isinstance(options, str):
            raise NameError_("%s.data.options: %s is not a comma-separated list of nfs(5) options"
                             % (where, show_value(options)))
        listed = [o for o in options.split(",") if o]
        valid_mount_options(listed, where + ".data.options")
        if "ro" in listed:
            raise NameError_("%s.data.options: 'ro' is listed, but the volume is attached read-write; remove it"
                             % where)
        item["options"] = listed if "rw" in listed else ["rw"] + listed
        valid_path(item.get("mount_point_base") or DEFAULT_MOUNT_POINT_BASE, where + ".mount_point_base")
        if item.get("size_bytes") is not None and item["size_bytes"] < 0:
            raise NameError_("%s.size_bytes: %r is not a size in bytes" % (where, item["size_bytes"]))
    except NameError_ as exc:
        errors.append(str(exc))
    return errors


def _where(item):
    """(mount point, file) of an item."""
    path = nfs_driver.mount_point(item["share"], item.get("mount_point_base") or DEFAULT_MOUNT_POINT_BASE)
    return path, os.path.join(path, item["file_name"])


def _in_use(loop):
    """Mounts, holders and openers of a loop device and its partitions (``loopNpM``)."""
    users = list(device_in_use(loop))
    name = os.path.basename(loop)
    for dev, points in mounted_devices().items():
        base = os.path.basename(dev)
        if base.startswith(name + "p") and base[len(name) + 1:].isdigit():
            users.extend(p for p in points if p not in users)
    return users


def read_nfs(nfs, items, link_dir=None, sys_block=None):
    """What the decision needs for the NFS items: ``mounted`` (``{mount point: bool}``, from mountinfo: no NFS
    access), ``loops`` (:func:`loop_devices`), ``links`` (``{volume: real path of /dev/ember/<volume> or None}``) and
    ``in_use`` (``{loop device: [users]}`` of the loop devices of the items to detach). Something else mounted on a
    share's mount point raises ``drivers.nfs.NfsError`` naming both."""
    loops = loop_devices(sys_block)
    mounted, links, in_use = {}, {}, {}
    for item in items:
        path, file_path = _where(item)
        if path not in mounted:
            mounted[path] = nfs.mounted(item["share"], path)
        link = link_path(item["volume"], link_dir)
        links[item["volume"]] = os.path.realpath(link) if os.path.islink(link) else None
        if item["state"] == "absent":
            for loop, info in loops.items():
                if info["backing_file"] == file_path or loop == links[item["volume"]]:
                    in_use[loop] = _in_use(loop)
    return {"mounted": mounted, "loops": loops, "links": links, "in_use": in_use, "link_dir": link_dir}


def decide_nfs(item, state, force=False):
    """The action of one NFS item (pure): ``attach`` (mount the share when it is not, bind a loop device when none is
    bound to the file, make the link), ``resize`` (``losetup -c``: the loop device is smaller than ``size_bytes``),
    ``detach`` (``losetup -d``, the link, the share's mount when nothing else of it is attached; ``refused`` when
    the loop device is in use and neither the item nor the module says ``force``) or ``none``."""
    path, file_path = _where(item)
    volume = item["volume"]
    bound = sorted(loop for loop, info in state["loops"].items() if info["backing_file"] == file_path)
    link = state["links"].get(volume)
    act = dict(item, target_iqn=None, target_portal=None, action="none", changed=False,
               device=link_path(volume, state.get("link_dir")), real_device=None, mount_point=path,
               export=item["share"], file=file_path, qos=None, qos_changed=False, size_bytes=None,
               volume_size_bytes=item.get("size_bytes"), paths=[], multipath=None, loops=bound,
               mounted=state["mounted"].get(path, False), driver_volume_type=NFS)
    if item["state"] == "present":
        loop = link if link in bound else (bound[0] if bound else None)
        act["real_device"] = loop
        if loop is not None:
            act["size_bytes"] = state["loops"][loop]["size_bytes"]
        if not act["mounted"] or loop is None or link != loop:
            act.update(action="attach", changed=True)
        elif item.get("size_bytes") and (act["size_bytes"] or 0) < item["size_bytes"]:
            act.update(action="resize", changed=True)
        return act
    act["device"] = None
    others = [loop for loop, info in state["loops"].items()
              if os.path.dirname(info["backing_file"]) == path and loop not in bound and loop != link]
    act["unmount"] = act["mounted"] and not others
    ours = sorted(set(bound) | ({link} if link and link in state["loops"]
                                and os.path.basename(state["loops"][link]["backing_file"]) == item["file_name"]
                                else set()))
    act["loops"] = ours
    if ours or link is not None or act["unmount"]:
        act.update(action="detach", changed=True)
        users = [u for loop in ours for u in state["in_use"].get(loop, [])]
        if users and not (force or item.get("force")):
            act["refused"] = ("%s (%s, volume %s on share %s) is in use (%s); unmount it first or set force: true"
                              % (link_path(volume, state.get("link_dir")), ", ".join(ours), volume, item["share"],
                                 ", ".join(users)))
    return act


def revalidate(path):
    """Open and close ``path`` on an NFS mount, so the client fetches its attributes (its size) from the server
    (close-to-open consistency, nfs(5)); returns the size it then has."""
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.fstat(fd).st_size
    finally:
        os.close(fd)


class NfsConnectionApplier:
    """Runs the decided NFS actions through ``nfs`` (``drivers.nfs.Nfs``: its runner, bounded mount and probe)."""

    def __init__(self, nfs, link_dir=None, sys_block=None):
        self.nfs = nfs
        self.runner = nfs.runner
        self.link_dir = link_dir or LINK_DIR
        self.sys_block = sys_block

    def apply(self, act):
        if act["action"] == "attach":
            self.attach(act)
        elif act["action"] == "resize":
            self.resize(act)
        elif act["action"] == "detach":
            self.detach(act)

    def _loop_size(self, loop):
        return (loop_devices(self.sys_block).get(loop) or {}).get("size_bytes")

    def attach(self, act):
        share, path = act["share"], act["mount_point"]
        if not act["mounted"]:
            self.nfs.mount(share, path, act["options"])
        self.nfs.probe(share, path)
        if not os.path.isfile(act["file"]):
            raise RuntimeError("volume %s: %s is not on share %s (mounted at %s); is the volume created on its "
                               "storage node?" % (act["volume"], act["file_name"], share, path))
        loop = act["real_device"]
        if loop is None:
            _rc, out, _err = self.runner.run(["losetup", "--find", "--show", "--direct-io=on", act["file"]])
            loop = out.strip()
            if not loop.startswith("/dev/loop"):
                raise RuntimeError("losetup did not name the loop device of %s (it printed %r)" % (act["file"], out))
        self._link(act["volume"], loop)
        act["real_device"] = loop
        act["size_bytes"] = self._loop_size(loop)
        if act.get("volume_size_bytes") and (act["size_bytes"] or 0) < act["volume_size_bytes"]:
            self.resize(act)

    def _link(self, volume, loop):
        os.makedirs(self.link_dir, mode=0o755, exist_ok=True)
        link = link_path(volume, self.link_dir)
        if os.path.islink(link) and os.readlink(link) == loop:
            return
        tmp = link + ".tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(loop, tmp)
        os.replace(tmp, link)

    def resize(self, act):
        self.nfs.probe(act["share"], act["mount_point"])
        loop = act["real_device"]
        # The NFS client may still hold the file's old size in its attribute cache (up to acregmax, 60 s by
        # default), and losetup --set-capacity takes the size the inode has here: an open() revalidates the
        # attributes with the server (NFS close-to-open consistency). Found on the lab: the extend of the storage
        # node's run was not seen by the consumer's set-capacity right after it.
        revalidate(act["file"])
        self.runner.run(["losetup", "--set-capacity", loop])
        act["size_bytes"] = self._loop_size(loop)
        wanted = act["volume_size_bytes"]
        if (act["size_bytes"] or 0) < wanted:
            raise RuntimeError("%s (%s) shows %s bytes after losetup --set-capacity, not the volume's %d: is the file "
                               "on share %s extended?" % (act["device"], loop, act["size_bytes"], wanted,
                                                          act["share"]))

    def detach(self, act):
        for loop in act["loops"]:
            self.runner.run(["losetup", "--detach", loop])
        link = link_path(act["volume"], self.link_dir)
        if os.path.lexists(link):
            os.unlink(link)
        if not act["unmount"]:
            return
        if act["loops"]:
            # A loop device someone still had open (udev's probe of a device that changed) lets go of its file only
            # when that one closes it: wait for udev, and try the unmount a few times while the share is busy.
            self.runner.run(["udevadm", "settle", "--timeout=10"], check=False)
        for attempt in range(UNMOUNT_TRIES):
            try:
                self.nfs.unmount(act["share"], act["mount_point"])
                return
            except nfs_driver.NfsError as exc:
                if "busy" not in str(exc).lower() or attempt == UNMOUNT_TRIES - 1:
                    raise
                time.sleep(1)

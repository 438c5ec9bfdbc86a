#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: volume
short_description: Create, extend and delete block storage volumes on an LVM storage node
version_added: 0.1.0
description:
  - Manages volumes as LVM logical volumes named C(volume-<name>) and tagged C(ember.blockstore),
    C(ember.volume=<name>), C(ember.type=<volume type>) and C(ember.backend=<backend>); LVs without both the
    C(ember.blockstore) and the C(ember.volume=<name>) tag are never touched, except the LV an item's
    O(volumes[].manage) names (tagged, and renamed when asked).
  - Thick volumes (C(lvcreate --size)) or thin volumes in a thin pool (C(lvcreate --thin --virtualsize)).
    Sizes are rounded up to whole LVM extents, as LVM does, so a repeated run with the same size is a no-op.
  - A bigger size extends the volume (C(lvextend)); a smaller one is an error (volumes are never shrunk).
  - O(volumes[].state=absent) deletes the volume. A volume that is exported (in-use) needs
    O(volumes[].force=true), and then its target is removed first (only a target whose file carries the project's
    marker; a volume exported by another target is not deleted); a volume with snapshots needs
    O(volumes[].cascade=true), which deletes only snapshots tagged C(ember.blockstore), C(ember.volume=<name>) and
    C(ember.snapshot=<snapshot>). Thick volumes are wiped before
    deletion as Cinder's C(volume_clear=zero) does (C(blkdiscard --zeroout), else C(dd) from /dev/zero); thin
    volumes are not (the thin pool zeroes blocks before it hands them out again).
  - "O(volumes[].source) makes a new volume from a source, as Cinder's LVM driver does (C(create_cloned_volume),
    C(create_volume_from_snapshot)): a clone of another volume of this node (O(volumes[].source.volume)) or a
    copy of one of its snapshots (with O(volumes[].source.snapshot), a snapshot of the
    P(ember.blockstore.snapshot#module) module). The source must be in the same volume group and the same thin
    pool (or both thick). A thin volume is a thin snapshot of the source LV with the volume's own tags, activated
    (C(lvchange --setactivationskip n)) and extended when the size asked for is bigger: the pool shares the
    blocks. A thick volume is created at its size and the data copied with C(dd); a clone copies from a temporary
    COW snapshot C(clone-snap-<name>) of the source volume (COW size the source's size, as Cinder), so the source
    may stay attached and in use, and the temporary snapshot is removed after the copy."
  - "The new LV records its source in a C(ember.source=<volume>) or C(ember.source=<volume>+<snapshot>) tag and
    carries C(ember.creating) until its data is complete; a later run that finds C(ember.creating) does the copy
    again (a leftover temporary snapshot is removed and made again) or, for a thin volume, finishes its activation
    and extend. The source is used only when the volume is created: an existing volume with a source is left as it
    is (its recorded source is returned)."
  - "Order within a run: plain creates and extends first (one C(lvm) shell), then the volumes with a source one by
    one in list order, then deletes. A source volume that the same run creates, extends or deletes is refused
    (create it in an earlier task), so the result never depends on the order of the list."
  - "O(volumes[].description) and O(volumes[].metadata) (Cinder's volume description and metadata) are stored
    with the volume in its LV's tags: C(ember.vdesc=<description>) and one C(ember.meta=<key>=<value>) per key,
    each part encoded (letters, digits and C(_+.-/:) as they are, every other character as its UTF-8 bytes, each
    C(#XX)). Omitted, they are left as they are; given, they are the whole desired state: metadata keys not
    listed are removed (Cinder's C(update_volume_metadata) with C(delete=True)). An existing volume whose
    description or metadata differ is updated (action V(update), one C(lvchange --deltag/--addtag)); a new one
    gets them with its C(lvcreate)."
  - "O(volumes[].manage) makes an existing LV of O(volumes[].vg) the volume, as Cinder's LVM driver's
    C(manage_existing) and C(manage_existing_get_size) (C(cinder/volume/drivers/lvm.py)) do, when no volume of that
    name exists: the volume's size is the LV's exact size in bytes (Cinder rounds it up to whole GiB), a bigger
    O(volumes[].size) extends it after the manage, a smaller one is an error. With
    O(volumes[].manage.rename=true) the LV is renamed C(volume-<name>) first (C(lvrename), as Cinder always does);
    then one C(lvchange --addtag) gives it the volume's tags (and C(ember.own_name) when it keeps its own name:
    every module finds it by its tags). The LV is read again just before: one that is open now is not managed. An
    inactive LV is activated after tagging (its activation-skip flag cleared first).
    Refused before any change: the LV is missing, carries an C(ember.*) tag, is open (C(lv_attr)'s sixth
    character: mounted, held or opened), is a snapshot or has snapshots, is not a plain LV or thin volume of
    the item's thin pool (or thick LV without O(volumes[].thin_pool)). Once the volume exists the option is
    ignored (action V(none))."
  - "O(volumes[].state=unmanaged) is Cinder's C(unmanage): one C(lvchange --deltag) removes every C(ember.*) tag
    of the volume's LV (action V(unmanage)); the LV and its data stay, under the name it has. Refused when the
    volume is exported or has snapshots (each is named). A volume that does not exist (or is unmanaged already) is
    V(none)."
  - Batch form (O(volumes)) handles many volumes in one module run; the single form (O(name), O(size), ...)
    handles one. Every item is validated and decided before the first change; one bad item changes nothing.
  - "NFS backends (driver V(nfs) in O(backends), as Cinder's NFS driver): an item whose O(volumes[].vg) is one of
    the shares (C(server:/export)) of an V(nfs) backend of O(backends) is a file on that share instead of an LV (the
    share is the pool of an NFS backend, as the VG is an LVM backend's; M(ember.blockstore.backend_info) reports it as
    the pool's C(vg)). The share is mounted at C(<mount_point_base>/<hash of the share>) with the backend's
    C(mount_options) when it is not (RV(mounts) says so; a share that does not answer within the probe's or the
    mount's time bound fails the module, naming it). The volume is the raw file C(volume-<name>) (a consumer
    attaches it with a loop device), sparse (C(truncate)) or, when the backend's C(sparse) is false, allocated
    (C(fallocate); C(dd) writes zeros where the share cannot, RV(volumes[].allocation) says which); its state is its
    sidecar C(volume-<name>.info) (JSON, written atomically), the equivalent of the LV tags. Data is written to a
    temporary file and renamed into place when complete: a share that is full or fails leaves no partial file, and
    the error names the share and its free bytes. Sizes are rounded up to whole MiB. A clone or a volume from a
    snapshot is a copy on the same share (C(cp --reflink=auto), sparse unless the backend preallocates); extend
    grows the file; delete removes the file, with O(volumes[].cascade) its snapshots, and the sidecar (no wipe:
    O(volumes[].volume_clear) does not apply). A volume of an NFS backend may not be named C(<x>.info) or contain
    C(.snap-) (its sidecar's and its snapshots' names)."
author: ember.blockstore contributors (@ember-blockstore)
options:
  volumes:
    description: Volumes to manage in one run. Mutually exclusive with O(name).
    type: list
    elements: dict
    suboptions:
      name: {description: "Volume name: 1-63 lowercase letters, digits, C(.) or C(-).", type: str, required: true}
      size:
        description:
          - Size with unit (V(10GiB), V(512MiB), V(1G) = 10^9 bytes, V(1073741824B)) or a bare number of GiB
            (V(10) is 10 GiB, as in Cinder and openstack.cloud's C(volume) module).
          - Required when O(volumes[].state=present), unless O(volumes[].source) is given (then the default is the
            source volume's size, or the size of the volume when the snapshot was taken) or the volume is one whose
            creation from a source was interrupted (tag C(ember.creating)); with a source it must be at least that
            size (Cinder refuses a smaller one).
        type: raw
      state: {description: "Desired state; V(unmanaged) removes the project's tags and leaves the LV (Cinder's
               unmanage).", type: str, choices: [present, absent, unmanaged], default: present}
      manage:
        description:
          - An existing LV of O(volumes[].vg) that becomes the volume when no volume of that name exists (Cinder's
            C(manage_existing)).
        type: dict
        version_added: 0.3.0
        suboptions:
          lv: {description: "Name of the LV (in O(volumes[].vg)).", type: str, required: true}
          rename: {description: "Rename the LV to C(volume-<name>) (as Cinder does); V(false) keeps its name.",
                   type: bool, default: false}
      vg: {description: "Volume group that holds the volume; for a volume of an V(nfs) backend of O(backends), the
             share (C(server:/export)) that holds its file.", type: str, required: true}
      thin_pool: {description: "Thin pool LV in O(volumes[].vg); omit for a thick volume (and for an V(nfs)
                    backend).", type: str}
      volume_type: {description: Volume type name recorded in the LV tags., type: str}
      retype:
        description:
          - "Retype in place: an existing volume whose C(ember.type=) tag differs from O(volumes[].volume_type) gets
            it replaced (action V(update)); no data moves. Without it an existing volume's type tag is left as it is.
            The plan sets it when the volume's pool still satisfies the new type (Cinder's C(retype) without a
            migration); a type the pool does not satisfy needs a migration (M(ember.blockstore.migration))."
        type: bool
        default: false
        version_added: 0.3.0
      backend: {description: Backend name recorded in the LV tags., type: str}
      volume_clear: {description: How a deleted thick volume is wiped., type: str, choices: [zero, none],
                     default: zero}
      volume_clear_size:
        description:
          - How much of the start of a deleted thick volume to wipe, as Cinder's C(volume_clear_size). A bare
            number is MiB (C(100) is 100 MiB), or a size with unit (C(512MiB), C(1GiB)); C(0) is the whole volume.
          - Rounded up to whole MiB and never more than the volume.
        type: raw
        default: 0
      force: {description: Delete even when exported (the export is removed first)., type: bool, default: false}
      cascade: {description: Delete the volume's snapshots too., type: bool, default: false}
      source:
        description:
          - What a new volume is made from (openstack.cloud's C(volume) takes C(volume) and C(snapshot) for the
            same). Used only when the volume's LV is created.
          - "Errors before any change: a source that does not exist, is not managed, is in another volume group or
            thin pool, is the volume itself, is created, extended or deleted in the same run, or is still being
            made from its own source; a missing snapshot; a size smaller than the source's; a thick clone whose
            volume group lacks free space for the new volume plus the temporary COW snapshot."
        type: dict
        suboptions:
          volume: {description: "Name of the source volume (in O(volumes[].vg)). One of O(volumes[].source.volume)
                                 and O(volumes[].source.image) is required.", type: str}
          snapshot: {description: "Name of a snapshot of O(volumes[].source.volume): the new volume is made from
                                   it (omit to clone the volume).", type: str}
          image:
            description:
              - "An image the new volume is written from (Cinder's C(copy_image_to_volume)): an absolute path on
                this storage node (a file, e.g. on an NFS image store it mounts, or what the C(blockstore) role
                copied from the controller) or an C(http://) or C(https://) URL the node can reach (downloaded by
                the module into C(/var/lib/ember-blockstore/images/download-<name>), hashed while it is written,
                each network operation bounded to 60 s, at most the volume's size plus a tenth and 64 MiB; removed
                after the run)."
              - "O(volumes[].size) is required and must be at least the image's virtual size (C(qemu-img info),
                run under C(prlimit) as Cinder does); an image with a backing file or an external data file, or in
                another format than V(raw) or V(qcow2), is refused. All of this is checked before the first LV is
                created."
              - "The LV (thick or thin) is created with C(ember.source=image:<first 16 hex digits of the image
                file's sha256>) and C(ember.creating), then C(qemu-img convert -O raw -n -t none -S 4k) writes it
                (with C(--target-is-zero) on a new thin LV: no zeros are written); C(ember.creating) is removed
                last. A run that finds C(ember.creating) writes the image again; it needs the same image (its sha256
                starts with the recorded digits). Volumes of V(nfs) backends are not made from images."
              - In check mode a URL is not downloaded, so its size and checksum are not checked.
            type: str
            version_added: 0.3.0
          format: {description: "Format of O(volumes[].source.image), V(raw) or V(qcow2); omitted, C(qemu-img info)
                                 detects it.", type: str, choices: [raw, qcow2], version_added: 0.3.0}
          checksum: {description: "C(sha256:<64 hex digits>) of the image file; an image with another sha256 is
                                   refused before anything is written.", type: str, version_added: 0.3.0}
      description:
        description:
          - The volume's description (Cinder's C(description)), stored in the LV tag C(ember.vdesc=).
          - At most 255 printable characters, as Cinder's API takes them (no control characters such as newline).
            V("") removes the description. Omitted, the description is left as it is.
        type: str
        version_added: 0.3.0
      metadata:
        description:
          - The volume's metadata (Cinder's volume C(metadata)), a dict of strings, stored in one LV tag
            C(ember.meta=<key>=<value>) per key.
          - Given, it is the whole metadata of the volume afterwards; keys the volume has and this does not list are
            removed (Cinder's C(update_volume_metadata) with C(delete=True)); V({}) removes all. Omitted, the metadata
            is left as it is.
          - "Keys: 1-255 letters, digits, C(-), C(_), C(:), C(.) or spaces (Cinder's key pattern). Values: strings of
            0-255 characters (a number or boolean is an error: quote it in YAML). At most 64 keys, and the encoded
            tags of the description and metadata together at most 4096 characters (they live in LVM's VG metadata,
            rewritten on every change of the VG)."
        type: dict
        version_added: 0.3.0
  name: {description: Single form; see O(volumes)., type: str}
  size: {description: Single form; see O(volumes)., type: raw}
  state: {description: Single form; see O(volumes)., type: str, choices: [present, absent, unmanaged],
          default: present}
  vg: {description: Single form; see O(volumes)., type: str}
  thin_pool: {description: Single form; see O(volumes)., type: str}
  volume_type: {description: Single form; see O(volumes)., type: str}
  retype: {description: Single form; see O(volumes)., type: bool, default: false, version_added: 0.3.0}
  backend: {description: Single form; see O(volumes)., type: str}
  volume_clear: {description: Single form; see O(volumes)., type: str, choices: [zero, none], default: zero}
  volume_clear_size: {description: Single form; see O(volumes)., type: raw, default: 0}
  force: {description: Single form; see O(volumes)., type: bool, default: false}
  cascade: {description: Single form; see O(volumes)., type: bool, default: false}
  source:
    description: Single form; see O(volumes).
    type: dict
    suboptions:
      volume: {description: Single form; see O(volumes)., type: str}
      snapshot: {description: Single form; see O(volumes)., type: str}
      image: {description: Single form; see O(volumes)., type: str, version_added: 0.3.0}
      format: {description: Single form; see O(volumes)., type: str, choices: [raw, qcow2], version_added: 0.3.0}
      checksum: {description: Single form; see O(volumes)., type: str, version_added: 0.3.0}
  description: {description: Single form; see O(volumes)., type: str, version_added: 0.3.0}
  metadata: {description: Single form; see O(volumes)., type: dict, version_added: 0.3.0}
  manage:
    description: Single form; see O(volumes).
    type: dict
    version_added: 0.3.0
    suboptions:
      lv: {description: Single form; see O(volumes)., type: str, required: true}
      rename: {description: Single form; see O(volumes)., type: bool, default: false}
  target_prefix:
    description: IQN prefix of the targets that export volumes (to find a volume's export).
    type: str
    default: "iqn.2026-11.io.ember.blockstore:"
  backends:
    description:
      - The backends of this storage node (the host's C(blockstore_backends)), validated as
        M(ember.blockstore.backend_info) validates its O(ember.blockstore.backend_info#module:backends) (the V(nfs)
        driver and its keys C(shares), C(mount_options), C(mount_point_base) and C(sparse) included).
      - Needed for the volumes of V(nfs) backends (the items whose O(volumes[].vg) is one of their shares); items of
        the LVM drivers do not read it.
    type: list
    elements: dict
    default: []
    version_added: 0.3.0
  mount_shares:
    description:
      - Mount every share of the V(nfs) backends of O(backends) that is not mounted (each within the mount's time
        bound, then probed; a share that does not answer fails the module, naming it), before the items are
        decided; RV(mounts) lists every share. The C(blockstore) role's gather phase runs this (with
        O(volumes=[])) on a storage node whose NFS pools are not mounted, so that
        M(ember.blockstore.backend_info), which never mounts, can read their capacity.
      - Without it only the shares the items use are mounted, when they use them.
    type: bool
    default: false
    version_added: 0.3.0
extends_documentation_fragment:
  - ember.blockstore.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff shows each changed volume's size, state, description and metadata before and after.
seealso:
  - module: ember.blockstore.backend_info
  - module: ember.blockstore.attachment
  - module: ember.blockstore.snapshot
"""

EXAMPLES = r"""
- name: Create a thin 10 GiB volume
  ember.blockstore.volume:
    name: db01-data
    size: 10GiB
    vg: ember-thin
    thin_pool: thinpool
    volume_type: fast

- name: Converge many volumes in one run
  ember.blockstore.volume:
    volumes:
      - {name: web01, size: 2GiB, vg: ember-thick}
      - {name: old-scratch, state: absent, vg: ember-thick}

- name: Clone a thin volume (a thin snapshot of it, with the volume's own tags), 20 GiB instead of its 10 GiB
  ember.blockstore.volume:
    name: db01-data-copy
    size: 20GiB
    vg: ember-thin
    thin_pool: thinpool
    source:
      volume: db01-data

- name: A thick volume from a snapshot (created at the snapshot's size, then copied with dd)
  ember.blockstore.volume:
    name: web01-restored
    vg: ember-thick
    source:
      volume: web01
      snapshot: nightly

- name: A thin volume from a qcow2 image on an NFS image store the node mounts (checked against its sha256)
  ember.blockstore.volume:
    name: vm01-root
    size: 20GiB
    vg: ember-thin
    thin_pool: thinpool
    source:
      image: /mnt/images/debian-12-genericcloud-amd64.qcow2
      format: qcow2
      checksum: "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

- name: A thick volume from an image the node downloads
  ember.blockstore.volume:
    name: vm02-root
    size: 10GiB
    vg: ember-thick
    source:
      image: https://images.example.com/debian-12.raw

- name: A volume with a description and metadata (a later run with other metadata replaces it whole)
  ember.blockstore.volume:
    name: db01-logs
    size: 5GiB
    vg: ember-thin
    thin_pool: thinpool
    description: Write-ahead log of db01
    metadata:
      owner: team-db
      retention: "30"

- name: Manage an existing thick LV as volume legacy-db (it keeps its name), 8 GiB when it is smaller
  ember.blockstore.volume:
    name: legacy-db
    size: 8GiB
    vg: ember-thick
    volume_type: bulk
    manage:
      lv: legacy_db

- name: Unmanage it again (its tags go; the LV and its data stay)
  ember.blockstore.volume:
    name: legacy-db
    vg: ember-thick
    state: unmanaged

- name: Delete a volume that is still exported (its target is removed first) and its snapshots
  ember.blockstore.volume:
    name: old-db
    vg: ember-thin
    thin_pool: thinpool
    state: absent
    force: true
    cascade: true
"""

RETURN = r"""
volumes:
  description: One result per requested volume, in request order.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Volume name., type: str, sample: db01-data}
    lv_name: {description: LV name., type: str, sample: volume-db01-data}
    vg: {description: Volume group., type: str, sample: ember-thin}
    thin_pool: {description: Thin pool or null., type: str, sample: thinpool}
    backend: {description: Backend name., type: str, sample: lvm-thin}
    volume_type: {description: Volume type., type: str, sample: fast}
    action: {description: "V(create), V(extend) (its description and metadata are updated too when they differ),
                           V(update) (only its description or metadata change), V(none), V(delete), V(absent)
                           (nothing to delete), V(manage) (an existing LV became the volume) or V(unmanage) (the
                           project's tags removed).", type: str, sample: create}
    changed: {description: Whether this item changed., type: bool, sample: true}
    size_bytes: {description: Size after the run (extent-rounded); null when deleted or absent., type: int,
                 sample: 10737418240}
    previous_size_bytes: {description: Size before the run; null when it did not exist., type: int,
                          sample: null}
    status: {description: "V(available), V(in-use) (exported), V(deleted), V(absent) or V(unmanaged).", type: str,
             sample: available}
    managed_lv: {description: "The LV a V(manage) made the volume, as it was named before the run; null otherwise.",
                 type: str, sample: null, version_added: 0.3.0}
    device: {description: Device path on the storage node., type: str, sample: /dev/ember-thin/volume-db01-data}
    source:
      description: "The source of a volume created from one here (O(volumes[].source)), else the source its LV
                    records (C(ember.source) tag); null for a volume not made from a source."
      type: dict
      sample: {volume: db01-data, snapshot: null}
      contains:
        volume: {description: "Source volume (null for an image).", type: str, sample: db01-data}
        snapshot: {description: "Snapshot of the source volume, or null for a clone.", type: str, sample: null}
        image: {description: "The image location of a volume created from an image in this run; null when read
                              back from the tag.", type: str, returned: for an image source,
                sample: /srv/images/debian-12.qcow2, version_added: 0.3.0}
        sha256: {description: "The image file's sha256 (64 hex digits) when created in this run, else the 16
                               digits the C(ember.source=image:) tag records.", type: str,
                 returned: for an image source, sample: 3f7a1c0e9b2d4f6a, version_added: 0.3.0}
    description: {description: "The volume's description after the run (C(ember.vdesc) tag, decoded); null when
                                it has none or is deleted or absent.", type: str, sample: Write-ahead log of db01}
    metadata: {description: "The volume's metadata after the run (C(ember.meta) tags, decoded); empty when it has
                             none or is deleted or absent.", type: dict, sample: {owner: team-db}}
    copy_method: {description: "V(dd) when a thick volume is created (or finished) by copying its source;
                                V(qemu-img convert) for a volume written from an image; V(cp)
                                for a volume of an V(nfs) backend copied from its source (C(cp --reflink=auto));
                                null otherwise (thin volumes share the source's blocks).", type: str, sample: dd}
    share: {description: "The share (C(server:/export)) that holds the volume's file, for a volume of an V(nfs)
                          backend; null for an LV.", type: str, sample: "198.18.0.5:/srv/ember", version_added: 0.3.0}
    allocation:
      description:
        - "How the file of a volume of an V(nfs) backend got its blocks in this run: V(sparse) (C(truncate), none
          allocated), V(fallocate), V(dd) (zeros written: the share cannot C(fallocate), an NFS server without 4.2
          ALLOCATE) or V(copy) (a copy that holds all its blocks); null when no file was made or grown, and for an
          LV."
      type: str
      sample: sparse
      version_added: 0.3.0
    wipe: {description: "How a deleted volume was wiped: V(zero) only when zeros were written, V(none), or
                         V(skipped) with the reason (thin LVs, and the files of V(nfs) backends).", type: str,
           returned: when deleted, sample: zero}
    wiped_bytes: {description: Bytes made zero., type: int, returned: when deleted, sample: 2147483648}
    wipe_method: {description: "How the zeros were made: V(blkdiscard --zeroout) (the kernel's BLKZEROOUT, reads
                                return zeros) or V(dd) (zeros written from /dev/zero, when blkdiscard is missing or
                                fails); null when nothing was written.", type: str, returned: when deleted,
                   sample: blkdiscard --zeroout}
mounts:
  description: The shares of V(nfs) backends the items use (every share with O(mount_shares)), and whether this run
    mounted them (in check mode, would mount them); empty without NFS items.
  returned: always
  type: list
  elements: dict
  contains:
    share: {description: "The share, C(server:/export).", type: str, sample: "198.18.0.5:/srv/ember"}
    backend: {description: The nfs backend it belongs to., type: str, sample: nfs1}
    mount_point: {description: "Where it is mounted: C(<mount_point_base>/<first 32 hex digits of the share's
                               SHA-256>).", type: str,
                  sample: /var/lib/ember-blockstore/mnt/95333d527be211dcd23fd669dd426d51}
    action: {description: "V(mount) (mounted by this run, or in check mode it would be) or V(none) (it was
                           mounted).", type: str, sample: none}
    changed: {description: Whether the run mounted it., type: bool, sample: false}
  version_added: 0.3.0
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.ember.blockstore.plugins.module_utils._argspec import node_backends, single_form
from ansible_collections.ember.blockstore.plugins.module_utils._batch import Batch, batch_form, read_state
from ansible_collections.ember.blockstore.plugins.module_utils._naming import (
    DEFAULT_TARGET_PREFIX,
    NameError_,
    is_volume_name,
    validate_target_prefix,
)
from ansible_collections.ember.blockstore.plugins.module_utils._nfs_volume import (
    NfsVolumeApplier,
    decide_volumes,
    open_shares,
    route,
)
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils._volume import (
    ITEM_OPTIONS,
    VolumeApplier,
    decide,
    exported_volumes,
    image_items,
    remove_staged,
    stage_images,
)
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.image import QemuImg
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.lvm import Lvm
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.nfs import Nfs, NfsError
from ansible_collections.ember.blockstore.plugins.module_utils.drivers.tgt import Tgt

RESULT_KEYS = ("name", "lv_name", "vg", "thin_pool", "backend", "volume_type", "action", "changed", "size_bytes",
               "previous_size_bytes", "status", "device", "source", "copy_method", "description", "metadata", "share",
               "allocation", "wipe", "wiped_bytes", "wipe_method", "managed_lv")
CHANGES = ("create", "extend", "update", "delete", "manage", "unmanage")


def argument_spec():
    return dict(volumes=dict(type="list", elements="dict", options=ITEM_OPTIONS),
                target_prefix=dict(type="str", default=DEFAULT_TARGET_PREFIX),
                backends=dict(type="list", elements="dict", default=[]), mount_shares=dict(type="bool", default=False),
                **single_form(ITEM_OPTIONS))


def result_of(act):
    out = {key: act.get(key) for key in RESULT_KEYS
           if key in act or key not in ("wipe", "wiped_bytes", "wipe_method")}
    out["changed"] = act["action"] in CHANGES
    return out


def diff_of(actions):
    diff = {"before": {}, "after": {}}
    for act in actions:
        if act["action"] in CHANGES:
            before = "unmanaged" if act["action"] == "manage" else "present"
            diff["before"][act["name"]] = {"size_bytes": act["previous_size_bytes"],
                                           "state": "absent" if act["previous_size_bytes"] is None else before,
                                           "description": act["previous_description"],
                                           "metadata": act["previous_metadata"]}
            diff["after"][act["name"]] = {"size_bytes": act["size_bytes"],
                                          "state": {"delete": "absent", "unmanage": "unmanaged"}.get(act["action"],
                                                                                                     "present"),
                                          "description": act["description"], "metadata": act["metadata"]}
    return diff


def nfs_shares(batch, runner, routed, mount, every=None):
    """:func:`_nfs_volume.open_shares` of the shares the NFS items use (and of ``every``, ``{share: cfg}``); a share
    that cannot be used fails the module, naming it."""
    wanted = dict(every or {})
    wanted.update((share, cfg) for cfg, share in routed.values())
    try:
        return open_shares(Nfs(runner), wanted, mount)
    except NfsError as exc:
        batch.fail(str(exc), mounts=[], **exc.context())


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True,
                           **batch_form("volumes", "name", required_by={"name": "vg"}))
    params = module.params
    batch = Batch(module, "volumes", result_of, lambda act: "volume %s" % act["name"], ITEM_OPTIONS, "volume")
    try:
        validate_target_prefix(params["target_prefix"])
        configs = node_backends(params["backends"], "backends")
    except (NameError_, ValueError) as exc:
        batch.fail(str(exc))
    # Items on a share of an nfs backend are the NFS code's; every other item is an LV, as before.
    routed, errors = route(batch.items, configs, batch.field, with_backend=True)
    if errors:
        batch.fail("; ".join(errors), errors=errors)

    runner = Runner(module, lock=True)
    lvm_indexes = [index for index in range(len(batch.items)) if index not in routed]
    every = {share: cfg for cfg in configs if cfg["driver"] == "nfs" for share in cfg["shares"]} \
        if params["mount_shares"] else {}
    by_index, errors, lvm, tgt, images = {}, [], None, None, {}
    if lvm_indexes or not (routed or every):
        lvm, tgt = Lvm(runner), Tgt(runner)
        items = [batch.items[index] for index in lvm_indexes]
        state, live = read_state(module, lambda: (lvm.state(), tgt.show_if_running()))
        exported, foreign = exported_volumes([i["name"] for i in items if isinstance(i.get("name"), str)
                                              and is_volume_name(i["name"])], live, params["target_prefix"])
        lvm_actions, errors = decide(items, state, exported, field=batch.field, predict_missing=module.check_mode,
                                     foreign=foreign, indexes=lvm_indexes)
        if not errors and image_items(items, state):
            # The images are staged (a URL downloaded) only once every item is valid, then decided again with them:
            # an image too big for its volume, or not matching its checksum, fails before the first LV is made.
            images = stage_images(items, state, QemuImg(runner), module.check_mode)
            lvm_actions, errors = decide(items, state, exported, field=batch.field,
                                         predict_missing=module.check_mode, foreign=foreign, indexes=lvm_indexes,
                                         images=images)
            if errors:
                remove_staged(images)
        by_index.update(zip(lvm_indexes, lvm_actions))
    views = {}
    if routed or every:
        # Decided first over the shares as they are (one not mounted predicted empty): a bad item fails before the
        # first change, a mount included. A real run then mounts what it needs and decides again over what is there.
        views = nfs_shares(batch, runner, routed, mount=False, every=every)
        nfs_actions, nfs_errors = decide_volumes(routed, batch.items, views, batch.field)
        if errors or nfs_errors:
            batch.fail("; ".join(errors + nfs_errors), errors=errors + nfs_errors)
        if not module.check_mode and any(view.predicted for view in views.values()):
            views = nfs_shares(batch, runner, routed, mount=True, every=every)
            nfs_actions, nfs_errors = decide_volumes(routed, batch.items, views, batch.field)
            if nfs_errors:
                batch.fail("; ".join(nfs_errors), errors=nfs_errors, mounts=[v.result() for v in views.values()])
        by_index.update(zip(sorted(routed), nfs_actions))
    actions = batch.decided([by_index[index] for index in sorted(by_index)], errors)

    # --- apply: the one place the volume appliers run (check mode: nothing is applied) ---
    appliers = (VolumeApplier(lvm, tgt, params["target_prefix"]) if lvm else None,
                NfsVolumeApplier(Nfs(runner), views) if views else None)
    try:
        results = batch.apply_batched(actions, lambda acts: apply_batch(appliers, acts))
    finally:
        remove_staged(images)
    # --- end of apply ---

    mounts = [view.result() for view in views.values()]
    module.exit_json(changed=batch.changed(results) or any(m["changed"] for m in mounts), volumes=results,
                     diff=diff_of(actions), mounts=mounts)


def apply_batch(appliers, actions):
    """The LVM actions through ``VolumeApplier.apply_batch`` (as before), then the NFS ones; ``[(act, error)]`` in
    the order of ``actions``."""
    lvm_applier, nfs_applier = appliers
    outcomes = {}
    for applier, acts in ((lvm_applier, [a for a in actions if not a.get("nfs")]),
                          (nfs_applier, [a for a in actions if a.get("nfs")])):
        if applier is not None and (acts or applier is lvm_applier):
            outcomes.update((id(act), (act, exc)) for act, exc in applier.apply_batch(acts))
    return [outcomes[id(act)] for act in actions if id(act) in outcomes]


if __name__ == "__main__":
    main()

"""Volumes from images and to images on the lab (make test-full). NOT RUN YET: written against the lab's facts
(inventories/lab, docs/lab.md) without a lab to run it on.

1. A qcow2 image made on the controller (qemu-img convert of a raw file with random data at known offsets and holes)
   becomes the thin volume img01 on stor1 through the converge run (``source: {image: <controller path>,
   controller: true}``, availability zone az1 = stor1): check mode first, then the real run, then again (changed=0)
   and again in check mode (changed=0). The sha256 of the volume's first virtual-size bytes equals the sha256 of
   ``qemu-img convert -O raw`` of the image, and the staging copy is gone.
2. The image module writes img01 to a compressed qcow2 image in a store directory on stor1 (check mode first, real,
   again changed=0, check again changed=0); its JSON sidecar records the volume's sha256, which is the sha256 of the
   volume's content; ``qemu-img compare`` on stor1 says the image and the volume are identical.
3. The thick volume img02 is made from that image by its path on stor1 (``source: {image: <path on stor1>,
   checksum: sha256 of the file}``): it reads back byte for byte (same sha256 over the image's virtual size).
4. A checksum that does not match, and an image bigger than its volume, fail before any LV is made.

Needs the lab image with qemu-utils (lab/build-image.sh installs it since this test was written; rebuild the image).
"""

import copy
import hashlib
import json
import os
import subprocess

import pytest
import yaml
from lab_helpers import ROOT, module_play, run_playbook

pytestmark = [pytest.mark.lab, pytest.mark.full]

with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all.yml")) as _handle:
    _LAB_VARS = yaml.safe_load(_handle)
MiB = 2**20
VIRTUAL = 64 * MiB
STORE = "/var/lib/ember-blockstore/image-store"
SHARED = {}


def volumes(*extra):
    vols = copy.deepcopy(_LAB_VARS["blockstore_volumes"])
    return {"blockstore_volumes": vols + list(extra)}


def img01(image):
    return {"name": "img01", "size": "128MiB", "volume_type": "fast", "availability_zone": "az1",
            "source": {"image": image, "controller": True}}


def img02(path, checksum):
    return {"name": "img02", "size": "%dMiB" % (VIRTUAL // MiB), "volume_type": "bulk", "availability_zone": "az1",
            "source": {"image": path, "format": "qcow2", "checksum": "sha256:" + checksum}}


def volume_sha(lab, vg, name, size):
    """sha256 of the first ``size`` bytes of a volume on stor1."""
    return lab.ssh("stor1", "head -c %d /dev/%s/volume-%s | sha256sum" % (size, vg, name)).stdout.split()[0]


def created(run, name):
    for result in run.task("Create and extend volumes").values():
        for item in result.get("volumes") or []:
            if item["name"] == name:
                return item
    raise AssertionError("no item for %s in the volume phase" % name)


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    """A 64 MiB qcow2 made on the controller from a raw file: random data in MiB 0-3 and 40-41, zeros elsewhere
    (holes of the qcow2). Returns (path, sha256 of its raw content)."""
    if subprocess.run(["qemu-img", "--version"], capture_output=True, check=False).returncode != 0:
        pytest.fail("qemu-img is needed on the controller (bindep.txt: qemu-utils)")
    work = tmp_path_factory.mktemp("images")
    raw = work / "golden.raw"
    data = bytearray(VIRTUAL)
    data[0:4 * MiB] = os.urandom(4 * MiB)
    data[40 * MiB:42 * MiB] = os.urandom(2 * MiB)
    raw.write_bytes(bytes(data))
    qcow = work / "golden.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)], check=True)
    back = work / "back.raw"
    subprocess.run(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", str(qcow), str(back)], check=True)
    expected = hashlib.sha256(back.read_bytes()).hexdigest()
    assert expected == hashlib.sha256(bytes(data)).hexdigest()
    return str(qcow), expected


def test_the_lab_nodes_have_qemu_img(lab):
    for host in ("stor1", "stor2"):
        assert lab.ssh(host, "qemu-img --version", check=False).returncode == 0, (
            "%s has no qemu-img: rebuild the lab image (lab/build-image.sh installs qemu-utils)" % host)


def test_a_controller_image_becomes_a_thin_volume(lab, tmp_path, image):
    path, expected = image
    extra = volumes(img01(path))
    check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check.rc == 0, check.stdout[-3000:]
    predicted = created(check, "img01")
    assert predicted["action"] == "create" and predicted["copy_method"] == "qemu-img convert", predicted
    assert "img01" not in lab.managed_lvs("stor1")

    run = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    item = created(run, "img01")
    assert (item["action"], item["vg"], item["thin_pool"]) == ("create", "ember-thin", "thinpool"), item
    assert item["source"]["sha256"] == hashlib.sha256(open(path, "rb").read()).hexdigest(), item
    lvs = lab.ssh("stor1", "lvs --noheadings -o lv_tags ember-thin/volume-img01").stdout
    assert "ember.source=image:" + item["source"]["sha256"][:16] in lvs and "ember.creating" not in lvs, lvs
    assert volume_sha(lab, "ember-thin", "img01", VIRTUAL) == expected
    # The rest of the 128 MiB volume reads as zeros, and the staging copy is gone.
    rest = lab.ssh("stor1", "tail -c %d /dev/ember-thin/volume-img01 | tr -d '\\000' | wc -c" % (64 * MiB)).stdout
    assert rest.strip() == "0"
    assert lab.ssh("stor1", "ls -A /var/lib/ember-blockstore/images/").stdout.strip() == ""

    again = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()
    check_again = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check_again.rc == 0 and check_again.changed == 0, check_again.changed_tasks()


def image_module(lab, tmp_path, check=False, **args):
    play = module_play(tmp_path, "stor1", "ember.blockstore.image",
                       dict({"name": "golden", "volume": "img01", "vg": "ember-thin", "store": STORE,
                             "compress": True}, **args), name="image module")
    run = run_playbook(lab, playbook=play, check=check, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    return run, run.task("image module")["stor1"]


def test_the_volume_is_written_to_a_compressed_qcow2(lab, tmp_path, image):
    _path, expected = image
    _run, check = image_module(lab, tmp_path, check=True)
    assert check["changed"] and check["images"][0]["action"] == "create", check
    assert lab.ssh("stor1", "test -e %s/golden.qcow2" % STORE, check=False).returncode != 0

    run, result = image_module(lab, tmp_path)
    (item,) = result["images"]
    assert item["action"] == "create" and item["path"] == STORE + "/golden.qcow2", item
    listing = lab.ssh("stor1", "ls -A %s" % STORE).stdout.split()
    assert sorted(listing) == ["golden.qcow2", "golden.qcow2.json", "golden.qcow2.sha256"], listing
    record = json.loads(lab.ssh("stor1", "cat %s/golden.qcow2.json" % STORE).stdout)
    size = 128 * MiB
    assert record["volume_sha256"] == volume_sha(lab, "ember-thin", "img01", size) == item["volume_sha256"]
    assert (record["format"], record["compress"], record["size_bytes"]) == ("qcow2", True, size)
    assert lab.ssh("stor1", "cd %s && sha256sum -c golden.qcow2.sha256" % STORE).returncode == 0
    info = json.loads(lab.ssh("stor1", "qemu-img info --output=json %s/golden.qcow2" % STORE).stdout)
    assert info["format"] == "qcow2" and info["virtual-size"] == size
    assert lab.ssh("stor1", "qemu-img compare -f qcow2 -F raw %s/golden.qcow2 /dev/ember-thin/volume-img01"
                   % STORE).returncode == 0
    # The temporary snapshot is gone.
    assert not [lv for lv in lab.ssh("stor1", "lvs --noheadings -o lv_name ember-thin").stdout.split()
                if lv.startswith("imgtmp-")]
    # The first virtual-size bytes of the image are the controller image's.
    first = lab.ssh("stor1", "qemu-img convert -O raw %s/golden.qcow2 /tmp/golden.raw && head -c %d /tmp/golden.raw "
                    "| sha256sum && rm -f /tmp/golden.raw" % (STORE, VIRTUAL)).stdout.split()[0]
    assert first == expected
    SHARED["file_sha256"] = item["file_sha256"]

    _again, again = image_module(lab, tmp_path)
    assert not again["changed"] and again["images"][0]["action"] == "none", again
    _check2, check2 = image_module(lab, tmp_path, check=True)
    assert not check2["changed"], check2


def test_a_volume_from_the_image_on_the_node_reads_back_byte_for_byte(lab, tmp_path, image):
    _path, expected = image
    file_sha = SHARED["file_sha256"]
    vol = img02(STORE + "/golden.qcow2", file_sha)
    # 128 MiB image into a 64 MiB volume: refused before any LV is made (virtual size named).
    small = dict(vol, size="%dMiB" % (VIRTUAL // MiB))
    bad = run_playbook(lab, extra_vars=volumes(img01(image[0]), small), tmp_path=tmp_path)
    assert bad.rc != 0 and "has a virtual size of 128 MiB" in bad.stdout, bad.stdout[-3000:]
    assert "img02" not in lab.managed_lvs("stor1")
    wrong = dict(vol, size="128MiB", source=dict(vol["source"], checksum="sha256:" + "0" * 64))
    bad = run_playbook(lab, extra_vars=volumes(img01(image[0]), wrong), tmp_path=tmp_path)
    assert bad.rc != 0 and "source.checksum" in bad.stdout, bad.stdout[-3000:]
    assert "img02" not in lab.managed_lvs("stor1")

    vol["size"] = "128MiB"
    extra = volumes(img01(image[0]), vol)
    check = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check.rc == 0 and created(check, "img02")["action"] == "create", check.stdout[-3000:]
    run = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    assert created(run, "img02")["vg"] == "ember-thick"
    size = 128 * MiB
    assert volume_sha(lab, "ember-thick", "img02", size) == volume_sha(lab, "ember-thin", "img01", size)
    assert volume_sha(lab, "ember-thick", "img02", VIRTUAL) == expected
    again = run_playbook(lab, extra_vars=extra, tmp_path=tmp_path)
    assert again.rc == 0 and again.changed == 0, again.changed_tasks()
    check_again = run_playbook(lab, check=True, extra_vars=extra, tmp_path=tmp_path)
    assert check_again.rc == 0 and check_again.changed == 0, check_again.changed_tasks()


def test_cleanup_deletes_the_image_and_the_volumes(lab, tmp_path):
    _run, result = image_module(lab, tmp_path, state="absent")
    assert result["images"][0]["action"] == "delete", result
    assert lab.ssh("stor1", "ls -A %s" % STORE).stdout.strip() == ""
    gone = volumes({"name": "img01", "state": "absent"}, {"name": "img02", "state": "absent"})
    run = run_playbook(lab, extra_vars=gone, tmp_path=tmp_path)
    assert run.rc == 0, run.stdout[-3000:]
    assert not {"img01", "img02"} & set(lab.managed_lvs("stor1"))

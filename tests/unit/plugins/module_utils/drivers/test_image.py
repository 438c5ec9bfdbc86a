# Copyright: ember.blockstore contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""drivers/image.py on real files: the real qemu-img (qcow2 and raw images made here), a real HTTP server on
localhost for downloads. Skipped where qemu-img is missing (it is in bindep.txt)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import subprocess
import threading

import pytest
from ansible_collections.ember.blockstore.plugins.module_utils._naming import NameError_
from ansible_collections.ember.blockstore.plugins.module_utils._runner import Runner
from ansible_collections.ember.blockstore.plugins.module_utils.drivers import image
from nfs_helpers import LocalModule

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img is not installed")
MIB = 1024 * 1024


def qemu(tmp_path):
    return image.QemuImg(Runner(LocalModule()))


def random_raw(path, size, seed=b"ember"):
    """A raw file of ``size`` bytes: pseudo-random data in its first and third MiB, zeros elsewhere (holes)."""
    data = bytearray(size)
    block = hashlib.sha256(seed).digest() * (MIB // 32)
    data[0:MIB] = block
    if size >= 3 * MIB:
        data[2 * MIB:3 * MIB] = block[::-1]
    path.write_bytes(bytes(data))
    return hashlib.sha256(bytes(data)).hexdigest()


def make_qcow2(tmp_path, size=4 * MIB):
    raw = tmp_path / "source.raw"
    raw_sha = random_raw(raw, size)
    qcow = tmp_path / "source.qcow2"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", str(raw), str(qcow)], check=True)
    return qcow, raw_sha


# --- inputs ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["/srv/images/a.qcow2", "https://images.example.com/a.qcow2?x=1",
                                   "http://198.18.0.5:8080/a.raw"])
def test_locations_taken(value):
    loc = image.validate_location(value, "source.image")
    assert (loc["url"] or loc["path"]) == value


@pytest.mark.parametrize("value", ["relative/a.qcow2", "/srv/../etc/shadow", "ftp://x/a", "/srv/images/",
                                   "/srv/a\nb", 5, None, ""])
def test_bad_locations_are_refused_naming_field_and_value(value):
    with pytest.raises(NameError_) as exc:
        image.validate_location(value, "volumes[0].source.image")
    assert str(exc.value).startswith("volumes[0].source.image: %r" % (value,))


def test_checksum_forms():
    hexd = "AB" * 32
    assert image.validate_checksum("sha256:" + hexd, "c") == hexd.lower()
    assert image.validate_checksum(None, "c") is None
    for bad in ("md5:" + "a" * 32, "sha256:" + "a" * 63, "a" * 64, 7):
        with pytest.raises(NameError_, match=r"^volumes\[1\].source.checksum: "):
            image.validate_checksum(bad, "volumes[1].source.checksum")


# --- qemu-img info -----------------------------------------------------------------------------------------------

def test_info_of_a_real_qcow2_and_raw(tmp_path):
    qcow, _sha = make_qcow2(tmp_path, 4 * MIB)
    info = qemu(tmp_path).info(str(qcow))
    assert (info["format"], info["virtual_size_bytes"]) == ("qcow2", 4 * MIB)
    raw_info = qemu(tmp_path).info(str(tmp_path / "source.raw"), "raw")
    assert (raw_info["format"], raw_info["virtual_size_bytes"]) == ("raw", 4 * MIB)


def test_a_format_given_is_not_probed_and_must_match(tmp_path):
    qcow, _sha = make_qcow2(tmp_path)
    with pytest.raises(image.ImageError):  # read as raw, qemu-img reports raw: not the qcow2 the file is
        image.parse_info(json.dumps({"format": "raw", "virtual-size": 1}), str(qcow), "qcow2")
    info = qemu(tmp_path).info(str(qcow), "raw")  # -f raw: the bytes as they are, no probing
    assert info["format"] == "raw" and info["virtual_size_bytes"] == os.path.getsize(qcow)


def test_a_backing_file_is_refused(tmp_path):
    secret = tmp_path / "secret"
    secret.write_bytes(b"x" * 512)
    evil = tmp_path / "evil.qcow2"
    subprocess.run(["qemu-img", "create", "-f", "qcow2", "-b", str(secret), "-F", "raw", str(evil)], check=True,
                   capture_output=True)
    with pytest.raises(image.ImageError, match="backing file .*secret"):
        qemu(tmp_path).info(str(evil))


def test_other_formats_are_refused(tmp_path):
    vdi = tmp_path / "a.vdi"
    subprocess.run(["qemu-img", "create", "-f", "vdi", str(vdi), "1M"], check=True, capture_output=True)
    with pytest.raises(image.ImageError, match="format vdi; only raw and qcow2"):
        qemu(tmp_path).info(str(vdi))


def test_info_of_a_file_that_is_no_image_fails_with_qemu_img_message(tmp_path):
    with pytest.raises(image.ImageError, match="qemu-img info of .*missing failed"):
        qemu(tmp_path).info(str(tmp_path / "missing"))


# --- convert into a volume and out of it ---------------------------------------------------------------------------

def test_qcow2_to_a_bigger_target_writes_the_image_data(tmp_path):
    qcow, raw_sha = make_qcow2(tmp_path, 4 * MIB)
    target = tmp_path / "volume"
    target.write_bytes(b"\xff" * (8 * MIB))  # old data: the zeros of the image must be written over it
    qemu(tmp_path).to_device(str(qcow), "qcow2", str(target), direct=False)
    assert image.sha256_device(str(target), 4 * MIB) == raw_sha
    assert target.read_bytes()[4 * MIB:] == b"\xff" * (4 * MIB)  # beyond the image: untouched


def test_target_is_zero_writes_no_zeros(tmp_path):
    qcow, raw_sha = make_qcow2(tmp_path, 4 * MIB)
    target = tmp_path / "thin"
    with open(target, "wb") as handle:
        handle.truncate(4 * MIB)  # a sparse file reads as zeros, as a new thin LV does
    module = LocalModule()
    image.QemuImg(Runner(module)).to_device(str(qcow), "qcow2", str(target), target_is_zero=True, direct=False)
    assert module.calls[-1][-3] == "--target-is-zero"
    assert image.sha256_device(str(target), 4 * MIB) == raw_sha
    assert os.stat(target).st_blocks * 512 <= 2 * MIB + 64 * 1024  # only the two data MiB were allocated


def test_write_image_files_and_read_record(tmp_path):
    volume = tmp_path / "volume"
    vol_sha = random_raw(volume, 4 * MIB)
    store = tmp_path / "store"
    store.mkdir()
    path = str(store / "golden.qcow2")
    record = image.write_image_files(qemu(tmp_path), str(volume), path, "qcow2", True,
                                     dict(volume="web01", vg="ember-thin", size_bytes=4 * MIB, fmt="qcow2",
                                          compress=True, volume_sha256=vol_sha), direct=False)
    assert sorted(os.listdir(store)) == ["golden.qcow2", "golden.qcow2.json", "golden.qcow2.sha256"]
    assert record["file_sha256"] == image.sha256_file(path)
    assert (store / "golden.qcow2.sha256").read_text() == "%s  golden.qcow2\n" % record["file_sha256"]
    assert image.read_record(path) == (record, None)
    # the image reads back as the volume
    back = tmp_path / "back.raw"
    subprocess.run(["qemu-img", "convert", "-O", "raw", path, str(back)], check=True)
    assert hashlib.sha256(back.read_bytes()).hexdigest() == vol_sha == record["volume_sha256"]
    assert qemu(tmp_path).info(path)["virtual_size_bytes"] == 4 * MIB


def test_read_record_says_what_is_wrong(tmp_path):
    path = tmp_path / "x.raw"
    assert image.read_record(str(path)) == (None, None)
    path.write_bytes(b"data")
    assert "without its sidecar" in image.read_record(str(path))[1]
    rec = image.image_record("v", "vg", 4, "raw", False, "a" * 64, "b" * 64, 4)
    (tmp_path / "x.raw.json").write_text(json.dumps(rec))
    assert "does not hold the sha256" in image.read_record(str(path))[1]
    (tmp_path / "x.raw.sha256").write_text("b" * 64 + "  x.raw\n")
    assert image.read_record(str(path)) == (rec, None)
    path.write_bytes(b"longer data")
    assert "is 11 bytes, its sidecar records 4" in image.read_record(str(path))[1]


def test_a_failed_write_leaves_no_file(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    with pytest.raises(Exception, match="qemu-img"):
        image.write_image_files(qemu(tmp_path), str(tmp_path / "no-volume"), str(store / "a.qcow2"), "qcow2",
                                False, dict(volume="v", vg="g", size_bytes=1, fmt="qcow2", compress=False,
                                            volume_sha256="0" * 64), direct=False)
    assert os.listdir(store) == []


def test_remove_image_files(tmp_path):
    path = tmp_path / "a.raw"
    for name in ("a.raw", "a.raw.json", "a.raw.sha256", "b.raw"):
        (tmp_path / name).write_text("x")
    assert image.remove_image_files(str(path)) == [str(path) + ".json", str(path), str(path) + ".sha256"]
    assert os.listdir(tmp_path) == ["b.raw"]


# --- downloads over a real HTTP server -------------------------------------------------------------------------

@pytest.fixture
def http_dir(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler_class = type("Quiet", (http.server.SimpleHTTPRequestHandler,), {"log_message": lambda *a: None})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             lambda *a, **k: handler_class(*a, directory=str(root), **k))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_download_hashes_while_writing(tmp_path, http_dir):
    root, base = http_dir
    data = os.urandom(3 * MIB + 17)
    (root / "a.raw").write_bytes(data)
    dest = tmp_path / "download-a"
    sha, length = image.download(base + "/a.raw", str(dest), 4 * MIB)
    assert (sha, length) == (hashlib.sha256(data).hexdigest(), len(data))
    assert dest.read_bytes() == data
    assert oct(os.stat(dest).st_mode & 0o777) == "0o600"
    assert not os.path.exists(str(dest) + ".part")


def test_download_bigger_than_allowed_is_refused_and_removed(tmp_path, http_dir):
    root, base = http_dir
    (root / "big").write_bytes(b"x" * (2 * MIB))
    dest = tmp_path / "download-big"
    with pytest.raises(image.ImageError, match="more than 1048576 bytes"):
        image.download(base + "/big", str(dest), MIB)
    assert os.listdir(tmp_path) == ["www"]


def test_download_of_a_missing_url_fails_naming_it(tmp_path, http_dir):
    _root, base = http_dir
    with pytest.raises(image.ImageError, match="download of %s/nothing failed: HTTP Error 404" % base):
        image.download(base + "/nothing", str(tmp_path / "d"), MIB)
    assert os.listdir(tmp_path) == ["www"]

"""Integration fixtures: the lab VMs, booted once per test session from clean overlays.

Set EMBER_LAB_REUSE=1 to use a lab that is already up (``make lab``) and EMBER_LAB_KEEP=1 to leave it running.
"""

import json
import os
import subprocess
import time

import pytest
from lab_helpers import CACHE, HOSTS_FILE, ROOT, Lab


@pytest.fixture(scope="session")
def lab():
    reuse = os.environ.get("EMBER_LAB_REUSE") == "1" and os.path.exists(HOSTS_FILE)
    start = time.monotonic()
    if not reuse:
        subprocess.run([os.path.join(ROOT, "lab", "down.sh")], check=True)
        subprocess.run([os.path.join(ROOT, "lab", "up.sh")], check=True)
    the_lab = Lab()
    the_lab.timings["lab_up_seconds"] = round(time.monotonic() - start, 1)
    build = os.path.join(CACHE, "image", "build-seconds")
    if os.path.exists(build):
        with open(build) as handle:
            the_lab.timings["image_build_seconds"] = int(handle.read().strip())
    yield the_lab
    print("\nlab timings: %s" % json.dumps(the_lab.timings, sort_keys=True))
    if os.environ.get("EMBER_LAB_KEEP") != "1":
        subprocess.run([os.path.join(ROOT, "lab", "down.sh")], check=False)

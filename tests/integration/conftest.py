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


# Scenarios build on one lab in this order: the slice on fresh hosts first, the bad inputs on the state it leaves
# (snapshots included), the same converge run through
# ansible-runner (as AWX runs it) on the lab the slice left converged, then the rest. The fault scenarios
# (test_faults.py) crash and damage nodes: make test-full runs them on a lab boot of their own.
ORDER = ("test_site.py", "test_bad_inputs.py", "test_runner.py")


def pytest_collection_modifyitems(session, config, items):
    here = os.path.dirname(os.path.abspath(__file__))

    def key(item):
        path = str(item.fspath)
        if not path.startswith(here + os.sep):
            return -1
        name = os.path.basename(path)
        return ORDER.index(name) if name in ORDER else len(ORDER)

    items.sort(key=key)

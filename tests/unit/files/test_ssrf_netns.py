"""Runs tests/unit/files/netns_ssrf.py inside a private network namespace.

``unshare -n`` gives the run its own network stack with only a loopback device; a
public address is added to it, so the inner tests have a real public origin (for DNS
rebinding and public-first redirect chains) while no packet can leave the machine.
Skipped where network namespaces cannot be made (not root, no ``unshare``/``ip``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

#: Globally routable (the policy must call it public); it exists only in the namespace.
PUBLIC = "93.184.216.34"
INNER = Path(__file__).with_name("netns_ssrf.py")


def _namespaces_work() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    probe = subprocess.run(["unshare", "-n", "ip", "link", "set", "lo", "up"],
                           capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.timeout(300)
def test_ssrf_with_a_public_origin_in_a_private_network_namespace() -> None:
    if not _namespaces_work():
        pytest.skip("cannot create a network namespace here (needs root and unshare)")
    script = (f"ip link set lo up && ip addr add {PUBLIC}/32 dev lo && "
              f'exec "$0" -m pytest -q -p no:cacheprovider -p no:randomly "$1"')
    run = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, sys.executable, str(INNER)],
        env={**os.environ, "TIDEGATE_NETNS_PUBLIC": PUBLIC},
        capture_output=True, text=True, timeout=280, check=False,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-8000:]
    assert "skipped" not in output and " passed" in output, output[-2000:]

"""What the Docker engine's guarantees look like in a client's job report (issue #12
must-show), shared by the ocean.py and ocean.js Docker suites.

A job step's detail, as both drivers record it: ``job_id``, ``environment``,
``statuses``, ``job`` (the final status answer: status, statusText, detail, results)
and ``results`` (every result fetched by the client: ``log`` for the algorithm log,
else the output's filename; text up to 64 KiB, else ``{"bytes", "zero"}``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

UID = 65534  # TIDEGATE_DOCKER_USER's default
MAX_PROCESSES = 64  # TIDEGATE_COMPUTE_MAX_PROCESSES' default
QUOTA = 10737418  # diskGB 0.01 of the tight environment, in bytes
OUTSIDE_OUTPUTS = ("/x", "/etc/x", "/usr/x", "/data/x", "/data/inputs/<did>/x",
                   "/data/ddos/x", "/data/transformations/x")


def check_network_fails(detail: dict[str, Any]) -> None:
    assert detail["job"]["status"] == 70 and detail["job"]["detail"] == "", detail["job"]
    report = json.loads(detail["results"]["report.json"])
    assert report["tcp_internet"] in ("ENETUNREACH", "EHOSTUNREACH"), report
    assert report["tcp_loopback"] == "ECONNREFUSED", report  # its own loopback only
    assert report["dns"] == "failed" and report["interfaces"] == ["lo"], report
    assert report["uid"] == UID, report


def check_writes_outside_outputs_fail(detail: dict[str, Any]) -> None:
    report = json.loads(detail["results"]["report.json"])
    for path in OUTSIDE_OUTPUTS:
        assert report[path] in ("EROFS", "EACCES"), (path, report)
    assert report["/data/outputs/ok"] == report["/data/logs/ok"] == report["/tmp/ok"] \
        == "written", report


def check_memory_reason(detail: dict[str, Any]) -> None:
    record = detail["job"]
    assert record["status"] == 70, record
    assert record["detail"].startswith("Memory limit exceeded (64 MB)"), record
    assert detail["results"]["log"].startswith("allocating\n"), detail["results"]
    assert "allocated" not in detail["results"]["log"], detail["results"]


def check_fork_bomb_contained(detail: dict[str, Any]) -> None:
    assert detail["job"]["status"] == 70, detail["job"]
    children = int(detail["results"]["children"])
    assert 0 < children < MAX_PROCESSES, detail["results"]
    assert "fork refused" in detail["results"]["log"], detail["results"]


def check_outputs_cut(detail: dict[str, Any]) -> None:
    record = detail["job"]
    assert record["status"] == 70, record
    assert record["detail"] == (f"Disk limit exceeded: outputs may total {QUOTA} bytes. 1 "
                                f"output file(s) beyond the disk limit ({QUOTA} bytes) are "
                                "not results."), record
    outputs = [(r["filename"], r["filesize"]) for r in record["results"]
               if r["type"] == "output"]
    assert outputs == [("a", 4 * 2**20), ("b", 4 * 2**20)], record["results"]
    assert detail["results"]["b"] == {"bytes": 4 * 2**20, "zero": True}


def check_absent_image(detail: dict[str, Any], registry: str) -> None:
    record = detail["job"]
    assert (record["status"], record["statusText"]) == (
        32, "Algorithm provisioning failed"), record
    assert record["detail"] == (f"Could not pull the image {registry}/tidegate-test/nothing:1:"
                                " the registry has no such image."), record
    assert "the registry has no such image." in detail["results"]["log"], detail["results"]


def check_expired(detail: dict[str, Any], sha256: str, size: int) -> None:
    assert detail["job"]["status"] == 70 and detail["job"]["detail"] == "", detail["job"]
    assert detail["results"]["result.txt"].endswith(f" 0 {sha256} {size}\n"), detail
    later = detail["later"]
    assert (later["status"], later["results"], later["removed"]) == (70, [], 1), later


async def _daemon(ask: str, job_ids: tuple[str, ...]) -> Any:
    from tests.docker_daemon import daemon_or_skip
    from tidegate.compute.engines.container_spec import JOB_LABEL

    client = await daemon_or_skip()
    try:
        if ask == "volumes":
            listed = await client.volumes.list()
            return frozenset(v["Name"] for v in listed.get("Volumes") or [])
        found = []
        for job_id in job_ids:
            found += await client.containers.list(
                all="true", filters=json.dumps({"label": [f"{JOB_LABEL}={job_id}"]}))
        return [c.id for c in found]
    finally:
        await client.close()


def daemon_volumes() -> frozenset[str]:
    """The names of the test daemon's volumes now."""
    volumes: frozenset[str] = asyncio.run(_daemon("volumes", ()))
    return volumes


def job_containers(*job_ids: str) -> list[str]:
    """Ids of the test daemon's containers labelled with one of ``job_ids``."""
    containers: list[str] = asyncio.run(_daemon("containers", job_ids))
    return containers

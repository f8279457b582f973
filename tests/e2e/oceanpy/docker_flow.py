"""ocean.py 3.1.2's compute flow on Tidegate's Docker engine (driver flow ``docker``).

Imported by driver.py (same environment, no tidegate import). Every call that reaches
Tidegate is ocean.py's own: ``ocean.assets.create_algo_asset`` / ``create_url_asset``
(publish), ``ocean.assets.pay_for_compute_service`` (initializeCompute + orders),
``ocean.compute.start`` / ``status`` / ``result`` / ``stop``. One job per guarantee of
issue #12's must-show; the pytest side (tests/e2e/test_oceanpy_docker.py) asserts on
the recorded steps and asks the daemon for leftovers.

The algorithms run in ``ubuntu:latest`` (the test daemon's Debian with python3, built
offline; it has no ``python`` command, so the metadata names ``python3 $ALGO`` through
create_algo_asset's ``metadata`` argument), pinned by the image's id.

Settings (environment), besides driver.py's:
  E2E_DOCKER_ALGOS_URL  where algorithm/docker/*.py are served
  E2E_ALGO_URL          algorithm/hash_inputs.py
  E2E_DOCKER_IMAGE_ID   the id of ubuntu:latest on the daemon (container.checksum)
  E2E_DOCKER_REGISTRY   the test registry (host:port); it has no tidegate-test/nothing
  E2E_DOCKER_ENVS       JSON {"free", "tight", "expiring"} -> environment ids
"""

from __future__ import annotations

import json
import time
from typing import Any

FINISHED = (31, 32, 70)
STATUS_TIMEOUT = 90
EXPIRY_TIMEOUT = 60  # storageExpiry 2 s, swept every 15 s (the lease period)
SMALL = 64 * 1024  # outputs up to this size are recorded as text
WRONG_CHECKSUM = "sha256:" + "ab" * 32


def run_docker_compute(rec: Any, m: dict[str, Any], state: dict[str, Any], provider_url: str,
                       file_url: str, env: Any, publisher: Any, consumer: Any) -> None:
    """Publish the algorithms and a dataset trusting them, then run the jobs."""
    ocean = state.get("ocean")
    to_wei = m["to_wei"]
    stamp = time.time_ns()
    image_id = env["E2E_DOCKER_IMAGE_ID"]
    base = env["E2E_DOCKER_ALGOS_URL"].rstrip("/")
    registry = env["E2E_DOCKER_REGISTRY"]
    env_ids = json.loads(env["E2E_DOCKER_ENVS"])
    debian = {"image": "ubuntu", "tag": "latest", "checksum": image_id}
    # name -> (URL of the algorithm, container)
    algorithms: dict[str, tuple[str, dict[str, str]]] = {
        "hash": (env["E2E_ALGO_URL"], debian),
        "confined": (f"{base}/confined.py", debian),
        "memory": (f"{base}/memory_hog.py", debian),
        "fork_bomb": (f"{base}/fork_bomb.py", debian),
        "over_quota": (f"{base}/over_quota.py", debian),
        "sleeper": (f"{base}/sleeper.py", debian),
        "wrong_checksum": (env["E2E_ALGO_URL"], {**debian, "checksum": WRONG_CHECKSUM}),
        "absent": (env["E2E_ALGO_URL"], {"image": f"{registry}/tidegate-test/nothing",
                                         "tag": "1", "checksum": ""}),
    }
    published: dict[str, Any] = {}
    s: dict[str, Any] = {}

    def publish_algorithms() -> dict[str, Any]:
        for name, (url, container) in algorithms.items():
            # ocean.py's own default metadata, with an algorithm section naming python3.
            metadata = type(ocean.assets).default_metadata(
                f"tidegate-e2e-docker-{name}-{stamp}", {"from": publisher}, "algorithm")
            metadata["algorithm"] = {
                "language": "python", "format": "docker-image", "version": "3.11",
                "container": {"entrypoint": "python3 $ALGO", **container},
            }
            _, datatoken, ddo = ocean.assets.create_algo_asset(
                metadata["name"], url, {"from": publisher}, metadata=metadata)
            assert ddo is not None, f"the {name} algorithm never appeared in the Aquarius API"
            published[name] = {"ddo": ddo, "datatoken": datatoken}
        return {name: {"did": p["ddo"].did, "container": p["ddo"].metadata["algorithm"]
                       ["container"]} for name, p in published.items()}

    rec.run("docker.publish_algorithms", publish_algorithms, needs=("ocean",))

    def publish_dataset() -> dict[str, Any]:
        trusted = [p["ddo"].generate_trusted_algorithms() for p in published.values()]
        compute_values = {"allowRawAlgorithm": False, "allowNetworkAccess": False,
                          "publisherTrustedAlgorithms": trusted,
                          "publisherTrustedAlgorithmPublishers": []}
        _, datatoken, ddo = ocean.assets.create_url_asset(
            f"tidegate-e2e-docker-dataset-{stamp}", file_url, {"from": publisher},
            compute_values=compute_values)
        assert ddo is not None, "the dataset never appeared in the Aquarius API"
        service = next(x for x in ddo.services if x.type == "compute")
        s.update(ddo=ddo, datatoken=datatoken, service=service)
        return {"did": ddo.did, "trusted": len(trusted)}

    rec.run("docker.publish_dataset", publish_dataset, needs=("docker.publish_algorithms",))

    def environments() -> dict[str, Any]:
        envs = {e["id"]: e for e in ocean.compute.get_c2d_environments(provider_url, 8996)}
        s["envs"] = {role: envs[env_id] for role, env_id in env_ids.items()}
        free = ocean.compute.get_free_c2d_environment(provider_url, 8996)
        return {"ids": sorted(envs), "free": free["id"],
                "roles": {role: {k: e.get(k) for k in ("id", "ramGB", "diskGB",
                                                       "storageExpiry")}
                          for role, e in s["envs"].items()}}

    rec.run("docker.environments", environments, needs=("ocean",))
    ready = ("docker.publish_dataset", "docker.environments")

    def pay(algorithm: str, role: str) -> tuple[Any, Any, dict[str, Any]]:
        """One order of the dataset and of the algorithm for one job (ocean.py's c2d
        payment: initializeCompute, then startOrder with the environment's address)."""
        algo = published[algorithm]
        environment = s["envs"][role]
        s["datatoken"].mint(consumer.address, to_wei(1), {"from": publisher})
        algo["datatoken"].mint(consumer.address, to_wei(1), {"from": publisher})
        datasets, algorithm_input = ocean.assets.pay_for_compute_service(
            datasets=[m["ComputeInput"](s["ddo"], s["service"])],
            algorithm_data=m["ComputeInput"](algo["ddo"], algo["ddo"].services[0]),
            consume_market_order_fee_address=consumer.address,
            tx_dict={"from": consumer},
            compute_environment=environment["id"],
            valid_until=int(time.time()) + 3600,
            consumer_address=environment["consumerAddress"],
        )
        assert algorithm_input is not None, "initializeCompute returned no algorithm entry"
        return datasets[0], algorithm_input, environment

    def status(job_id: str) -> dict[str, Any]:
        job: dict[str, Any] = ocean.compute.status(s["ddo"], s["service"], job_id, consumer)
        return job

    def wait(job_id: str) -> tuple[dict[str, Any], list[int]]:
        seen: list[int] = []
        deadline = time.monotonic() + STATUS_TIMEOUT
        while True:
            job = status(job_id)
            if not seen or seen[-1] != job.get("status"):
                seen.append(job.get("status"))
            if job.get("status") in FINISHED:
                return job, seen
            assert time.monotonic() < deadline, f"job {job_id} still {job} after {seen}"
            time.sleep(0.2)

    def results(job_id: str, job: dict[str, Any]) -> dict[str, Any]:
        """Every result by list position (as compute_job_result_logs asks for them)."""
        found: dict[str, Any] = {}
        for position, entry in enumerate(job.get("results") or []):
            data = ocean.compute.result(s["ddo"], s["service"], job_id, position, consumer)
            key = "log" if entry["type"] == "algorithmLog" else entry["filename"]
            found[key] = (data.decode("utf-8", "replace") if len(data) <= SMALL
                          else {"bytes": len(data), "zero": data.count(0) == len(data)})
        return found

    def job(algorithm: str, role: str) -> Any:
        def run() -> dict[str, Any]:
            dataset, algorithm_input, environment = pay(algorithm, role)
            started = time.monotonic()
            job_id = ocean.compute.start(consumer, dataset, environment["id"], algorithm_input)
            done, seen = wait(job_id)
            return {"job_id": job_id, "environment": environment["id"], "statuses": seen,
                    "seconds": round(time.monotonic() - started, 3),
                    "job": _record(done), "results": results(job_id, done)}
        return run

    for name, algorithm, role in (("marker", "hash", "free"), ("confined", "confined", "free"),
                                  ("memory", "memory", "tight"),
                                  ("fork_bomb", "fork_bomb", "free"),
                                  ("over_quota", "over_quota", "tight"),
                                  ("absent_image", "absent", "free")):
        rec.run(f"docker.{name}", job(algorithm, role), needs=ready)

    def wrong_checksum() -> dict[str, Any]:
        dataset, algorithm_input, environment = pay("wrong_checksum", "free")
        try:
            job_id = ocean.compute.start(consumer, dataset, environment["id"], algorithm_input)
        except Exception as exc:  # the type and message are what the test checks
            return {"raised": type(exc).__name__, "message": str(exc)[:2000]}
        return {"raised": None, "job_id": job_id}

    rec.run("docker.wrong_checksum", wrong_checksum, needs=ready)

    def stop() -> dict[str, Any]:
        # A job that would sleep 300 s, stopped once it runs and has logged.
        dataset, algorithm_input, environment = pay("sleeper", "free")
        job_id = ocean.compute.start(consumer, dataset, environment["id"], algorithm_input)
        deadline = time.monotonic() + STATUS_TIMEOUT
        log = ""
        while True:
            running = status(job_id)
            if running.get("status") == 40 and running.get("results"):
                log = ocean.compute.result(s["ddo"], s["service"], job_id, 0,
                                           consumer).decode("utf-8", "replace")
                if "started" in log:
                    break
            assert running.get("status") not in FINISHED, running
            assert time.monotonic() < deadline, f"the sleeper never ran: {running}"
            time.sleep(0.2)
        asked = time.monotonic()
        answer = ocean.compute.stop(s["ddo"], s["service"], job_id, consumer)
        done, seen = wait(job_id)
        return {"job_id": job_id, "running": _record(running), "log_while_running": log,
                "stop_answer": _record(answer), "job": _record(done), "statuses": seen,
                "stopped_within": round(time.monotonic() - asked, 3),
                "results": results(job_id, done)}

    rec.run("docker.stop", stop, needs=ready)

    def expiry() -> dict[str, Any]:
        # storageExpiry 2 s: the results are there when the job ends, gone a sweep later.
        first = job("hash", "expiring")()
        job_id = first["job_id"]
        deadline = time.monotonic() + EXPIRY_TIMEOUT
        while True:
            later = status(job_id)
            if not later.get("results"):
                break
            assert time.monotonic() < deadline, f"results still there: {later}"
            time.sleep(0.5)
        try:
            ocean.compute.result(s["ddo"], s["service"], job_id, 0, consumer)
            raised = None
        except Exception as exc:  # the type and message are what the test checks
            raised = {"type": type(exc).__name__, "message": str(exc)[:1000]}
        return {**first, "later": _record(later), "result_after": raised}

    rec.run("docker.expiry", expiry, needs=ready)


def _record(job: dict[str, Any]) -> dict[str, Any]:
    """The fields of a job answer the tests read."""
    return {k: job.get(k) for k in ("jobId", "status", "statusText", "detail", "results",
                                    "ok", "removed", "dateFinished")}

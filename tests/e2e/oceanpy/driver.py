"""Drive the real ocean.py 3.1.2 client against a running Tidegate.

Run with ``.venv-oceanpy/bin/python`` (ocean-lib 3.1.2 and its own web3 6.11.4), never
with Tidegate's environment: this script does not import tidegate. Every call that
reaches Tidegate is made by ocean.py's own code (``Ocean``, ``ocean.assets``,
``DataServiceProvider``, ``FileInfoProvider``, ``Aquarius``); the script only chains
them and records what happened.

Configuration (environment):
  E2E_PROVIDER_URL   Tidegate's URL, used as PROVIDER_URL and METADATA_CACHE_URI
  E2E_RPC_URL        the chain's JSON-RPC URL (chain id 8996)
  ADDRESS_FILE       barge-layout address file of the deployed Ocean contracts
  E2E_FILE_URL       the URL to publish; E2E_FILE_SHA256 its expected sha256
  E2E_DEPLOYER_KEY   owner of the OCEAN token (funds the consumer through ocean.py)
  E2E_PUBLISHER_KEY, E2E_CONSUMER_KEY   funded accounts
  E2E_ALGO_URL       the compute algorithm's URL (python, reads /data/inputs, writes
                     /data/outputs/result.txt)
  E2E_FLOWS          comma-separated subset of plain,fixed_rate,free,compute (default: all
                     four), or docker (docker_flow.py: the Docker engine's guarantees; its
                     own E2E_DOCKER_* settings are described there)

Writes a JSON report to the path given as the only argument:
``{"client": {...}, "steps": {name: {"ok", "seconds", "detail" | "error" | "blocked_by"}}}``.
ocean.py prints to stdout (``sign_message``), hence the file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import lzma
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any


class Recorder:
    """Runs named steps, each after the steps it needs, and keeps the outcome."""

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, Any]] = {}

    def ok(self, name: str) -> bool:
        return bool(self.steps.get(name, {}).get("ok"))

    def run(self, name: str, fn: Callable[[], Any], needs: tuple[str, ...] = ()) -> Any:
        missing = [n for n in needs if not self.ok(n)]
        if missing:
            self.steps[name] = {"ok": False, "blocked_by": missing}
            return None
        started = time.monotonic()
        try:
            value = fn()
        except BaseException as exc:  # everything is reported
            if isinstance(exc, KeyboardInterrupt):
                raise
            self.steps[name] = {
                "ok": False,
                "seconds": round(time.monotonic() - started, 3),
                "error": f"{type(exc).__name__}: {exc}"[:4000],
                "traceback": traceback.format_exc()[-4000:],
            }
            return None
        detail = value if isinstance(value, dict) else {}
        self.steps[name] = {
            "ok": True,
            "seconds": round(time.monotonic() - started, 3),
            "detail": detail,
        }
        return value


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tx_hash(value: Any) -> str:
    """ocean.py returns a tx hash for startOrder but a whole receipt for the
    pricing-schema paths (dispenser / FRE) of ``pay_for_access_service``."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, str):
        return value
    tx = value["transactionHash"] if hasattr(value, "__getitem__") else value.transactionHash
    return "0x" + bytes(tx).hex()


def main(out_path: str) -> int:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
    env = os.environ
    provider_url = env["E2E_PROVIDER_URL"].rstrip("/")
    rpc_url = env["E2E_RPC_URL"]
    file_url = env["E2E_FILE_URL"]
    file_sha256 = env["E2E_FILE_SHA256"]
    flows = [f for f in env.get("E2E_FLOWS", "plain,fixed_rate,free,compute").split(",") if f]
    rec = Recorder()
    report: dict[str, Any] = {"client": {}, "steps": rec.steps}

    def write_report() -> None:
        Path(out_path).write_text(json.dumps(report, indent=1, default=str))

    # Importing the client is a step of its own: a broken client venv is one clear failure.
    modules: dict[str, Any] = {}

    def import_client() -> dict[str, Any]:
        import enforce_typing.decorator
        import web3
        from eth_account import Account
        from ocean_lib.agreements.consumable import ConsumableCodes
        from ocean_lib.assets.asset_downloader import is_consumable
        from ocean_lib.data_provider.data_encryptor import DataEncryptor
        from ocean_lib.data_provider.data_service_provider import DataServiceProvider
        from ocean_lib.data_provider.fileinfo_provider import FileInfoProvider
        from ocean_lib.example_config import get_config_dict
        from ocean_lib.models.compute_input import ComputeInput
        from ocean_lib.models.dispenser import DispenserArguments
        from ocean_lib.models.fixed_rate_exchange import ExchangeArguments
        from ocean_lib.ocean.mint_fake_ocean import mint_fake_OCEAN
        from ocean_lib.ocean.ocean import Ocean
        from ocean_lib.ocean.util import to_wei

        modules.update(
            Account=Account, ConsumableCodes=ConsumableCodes, is_consumable=is_consumable,
            DataEncryptor=DataEncryptor, DataServiceProvider=DataServiceProvider,
            FileInfoProvider=FileInfoProvider, get_config_dict=get_config_dict,
            DispenserArguments=DispenserArguments, ExchangeArguments=ExchangeArguments,
            ComputeInput=ComputeInput,
            mint_fake_OCEAN=mint_fake_OCEAN, Ocean=Ocean, to_wei=to_wei,
        )
        from importlib.metadata import version

        report["client"] = {
            "ocean-lib": version("ocean-lib"),
            "web3": web3.__version__,
            "eth-account": version("eth-account"),
            "eth-keys": version("eth-keys"),
            "requests": version("requests"),
            "enforce-typing": version("enforce-typing"),
            "enforce_typing_fix": bool(
                getattr(enforce_typing.decorator.enforce_types, "_tidegate_e2e_any_fix", False)
            ),
            "python": sys.version.split()[0],
        }
        return report["client"]

    rec.run("import", import_client)
    if not rec.ok("import"):
        write_report()
        return 0
    m = modules
    Account = m["Account"]
    publisher = Account.from_key(env["E2E_PUBLISHER_KEY"])
    consumer = Account.from_key(env["E2E_CONSUMER_KEY"])
    state: dict[str, Any] = {}

    def make_ocean() -> dict[str, Any]:
        config = m["get_config_dict"](rpc_url)
        config["METADATA_CACHE_URI"] = provider_url
        config["PROVIDER_URL"] = provider_url
        state["config"] = config
        state["ocean"] = m["Ocean"](config)  # GET <METADATA_CACHE_URI>/ must be 200
        return {"chain_id": config["CHAIN_ID"], "network": config["NETWORK_NAME"]}

    rec.run("ocean", make_ocean)

    def provider_root() -> dict[str, Any]:
        dsp = m["DataServiceProvider"]
        warnings: list[str] = []
        handler = logging.Handler(logging.WARNING)
        handler.emit = lambda record: warnings.append(record.getMessage())  # type: ignore[method-assign]
        base_log = logging.getLogger("ocean_lib.data_provider.base")
        base_log.addHandler(handler)
        try:
            valid = dsp.is_valid_provider(provider_url)
            endpoints = dsp.get_service_endpoints(provider_url)
            address = dsp.get_provider_address(provider_url, 8996)
        finally:
            base_log.removeHandler(handler)
        assert valid, "ocean.py does not accept the provider URL (is_valid_provider)"
        assert address, "no provider address for chain 8996"
        # get_provider_address returns the singular providerAddress (for any chain id)
        # and warns "older provider" whenever the root document has that key.
        return {"provider_address": address, "service_endpoints": sorted(endpoints),
                "warnings": warnings}

    rec.run("provider_root", provider_root)

    def fund() -> dict[str, Any]:
        # ocean.py's own barge helper: the OCEAN owner mints OCEAN to the test keys.
        os.environ["FACTORY_DEPLOYER_PRIVATE_KEY"] = env["E2E_DEPLOYER_KEY"]
        os.environ["TEST_PRIVATE_KEY1"] = env["E2E_CONSUMER_KEY"]
        os.environ["TEST_PRIVATE_KEY2"] = env["E2E_PUBLISHER_KEY"]
        m["mint_fake_OCEAN"](state["config"])
        balance = state["ocean"].OCEAN_token.balanceOf(consumer.address)
        assert balance >= m["to_wei"](100), balance
        return {"consumer_OCEAN_wei": str(balance)}

    rec.run("fund", fund, needs=("ocean",))

    def fileinfo_url() -> dict[str, Any]:
        # check_single_file_info: POST fileinfo with a bare file object.
        ok = m["DataServiceProvider"].check_single_file_info(
            {"type": "url", "url": file_url, "method": "GET"}, provider_url
        )
        assert ok, "fileinfo for the bare URL object did not report a valid file"
        return {"valid": ok}

    rec.run("fileinfo_url", fileinfo_url, needs=("ocean",))

    def encrypt_lzma() -> dict[str, Any]:
        # What create_url_asset sends by default: LZMA bytes as application/octet-stream.
        # DataEncryptor.encrypt raises unless the answer is exactly 201.
        document = lzma.compress(b'{"id":"did:op:e2e"}')  # starts 0xFD '7zXZ': not UTF-8
        response = m["DataEncryptor"].encrypt(document, provider_url, 8996)
        assert response.text.startswith("0x"), response.text[:200]
        return {"status": response.status_code,
                "content_type": response.headers.get("content-type"),
                "length": len(response.text)}

    rec.run("encrypt_lzma", encrypt_lzma, needs=("ocean",))

    def ddo_exists_unknown() -> dict[str, Any]:
        # ocean.py's publish treats a DID as free only if the ddo/<did> error body holds
        # Aquarius' wording "Asset DID <did> not found in Elasticsearch".
        unknown = "did:op:" + "0" * 64
        exists = state["ocean"].assets._aquarius.ddo_exists(unknown)
        assert exists is False, "ocean.py thinks an unknown DID is already registered"
        return {"exists": exists}

    rec.run("ddo_exists_unknown", ddo_exists_unknown, needs=("ocean",))

    for flow in flows:
        if flow == "compute":
            run_compute(rec, m, state, provider_url, file_url, env["E2E_ALGO_URL"], publisher,
                        consumer)
        elif flow == "docker":
            # The Docker engine's flow (a sibling module: this script's folder is on sys.path).
            from docker_flow import run_docker_compute

            run_docker_compute(rec, m, state, provider_url, file_url, env, publisher, consumer)
        else:
            run_flow(rec, m, state, flow, provider_url, file_url, file_sha256, publisher,
                     consumer)

    write_report()
    return 0


def run_flow(
    rec: Recorder,
    m: dict[str, Any],
    state: dict[str, Any],
    flow: str,
    provider_url: str,
    file_url: str,
    file_sha256: str,
    publisher: Any,
    consumer: Any,
) -> None:
    s: dict[str, Any] = {}
    ocean = state.get("ocean")
    to_wei = m["to_wei"]

    def publish() -> dict[str, Any]:
        name = f"tidegate-e2e-{flow}-{time.time_ns()}"
        kwargs: dict[str, Any] = {}
        if flow == "fixed_rate":
            kwargs["pricing_schema_args"] = m["ExchangeArguments"](
                rate=to_wei(3), base_token_addr=ocean.OCEAN_address, dt_decimals=18
            )
        elif flow == "free":
            kwargs["pricing_schema_args"] = m["DispenserArguments"](to_wei(1), to_wei(1))
        # create_url_asset: GET /, ddo/<did> (must say "not found"), ddo/validate,
        # POST /encrypt (LZMA, flags 3), setMetaData, then wait_for_ddo on our Aquarius API.
        data_nft, datatoken, ddo = ocean.assets.create_url_asset(
            name, file_url, {"from": publisher}, **kwargs
        )
        assert ddo is not None, "the DDO never appeared in Tidegate's Aquarius API (60 s)"
        s.update(data_nft=data_nft, datatoken=datatoken, ddo=ddo)
        return {"did": ddo.did, "datatoken": datatoken.address, "nft": data_nft.address}

    rec.run(f"{flow}.publish", publish, needs=("ocean",))

    def resolve() -> dict[str, Any]:
        ddo = ocean.assets.resolve(s["ddo"].did)
        assert ddo is not None and ddo.did == s["ddo"].did
        assert ddo.services[0].service_endpoint == provider_url, ddo.services[0].service_endpoint
        s["ddo"] = ddo
        return {"service_endpoint": ddo.services[0].service_endpoint,
                "event_tx": (ddo.event or {}).get("tx")}

    rec.run(f"{flow}.resolve", resolve, needs=(f"{flow}.publish",))

    def datatokens() -> dict[str, Any]:
        # ocean.py's DDO keeps Aquarius' indexer fields; its READMEs read the datatoken
        # from ddo.datatokens[0]["address"] and the price from ddo.stats.
        ddo = s["ddo"]
        assert ddo.datatokens, f"no datatokens in {ddo.datatokens!r}"
        entry = ddo.datatokens[0]
        assert entry["address"] == s["datatoken"].address, entry
        assert entry["serviceId"] == ddo.services[0].id, entry
        assert entry["symbol"] == s["datatoken"].symbol(), entry
        assert entry["name"] == s["datatoken"].name(), entry
        return {"datatokens": ddo.datatokens, "stats": ddo.stats, "nft": ddo.nft}

    rec.run(f"{flow}.datatokens", datatokens, needs=(f"{flow}.resolve",))

    def search() -> dict[str, Any]:
        # ocean.assets.search: query_string with ":" escaped as "\\:"; query: ES term.
        did = s["ddo"].did
        by_name = [d.did for d in ocean.assets.search(s["ddo"].metadata["name"])]
        by_did = [d.did for d in ocean.assets.search(did)]
        by_term = [d.did for d in ocean.assets.query(
            {"query": {"term": {"nftAddress": s["ddo"].nft_address}}})]
        assert by_name == [did], f"search(name) -> {by_name}"
        assert by_did == [did], f"search(did) -> {by_did}"
        assert by_term == [did], f"query(term nftAddress) -> {by_term}"
        return {"by_name": by_name, "by_did": by_did, "by_term": by_term}

    if flow == "plain":
        rec.run(f"{flow}.search", search, needs=(f"{flow}.resolve",))

    def fileinfo() -> dict[str, Any]:
        ddo = s["ddo"]
        response = m["FileInfoProvider"].fileinfo(ddo.did, ddo.services[0])
        files = response.json()
        assert isinstance(files, list) and len(files) == 1, files
        assert files[0]["valid"] is True, files
        return {"files": files}

    rec.run(f"{flow}.fileinfo", fileinfo, needs=(f"{flow}.resolve",))

    def consumable() -> dict[str, Any]:
        ddo = s["ddo"]
        code = m["is_consumable"](
            ddo, ddo.services[0], {"type": "address", "value": consumer.address},
            with_connectivity_check=True,
        )
        assert code == m["ConsumableCodes"].OK, f"consumable code {code}"
        return {"code": code}

    rec.run(f"{flow}.consumable", consumable, needs=(f"{flow}.resolve",))

    def pay() -> dict[str, Any]:
        ddo = s["ddo"]
        if flow == "plain":
            # The publisher is the datatoken's minter: give the consumer one datatoken.
            s["datatoken"].mint(consumer.address, to_wei(1), {"from": publisher})
        result = ocean.assets.pay_for_access_service(ddo, {"from": consumer})
        s["order_tx"] = _tx_hash(result)
        receipt = ocean.config_dict["web3_instance"].eth.get_transaction_receipt(s["order_tx"])
        assert receipt["status"] == 1, receipt
        return {"order_tx": s["order_tx"], "returned": type(result).__name__}

    def initialize() -> dict[str, Any]:
        # The call pay_for_access_service makes first, made on its own to see the fee.
        ddo = s["ddo"]
        response = m["DataServiceProvider"].initialize(ddo.did, ddo.services[0], consumer.address)
        body = response.json()
        assert "providerFee" in body, body
        return {"initialize": body}

    rec.run(f"{flow}.initialize", initialize, needs=(f"{flow}.resolve",))
    rec.run(f"{flow}.pay", pay, needs=(f"{flow}.resolve",))

    def download(label: str) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:
            destination = tempfile.mkdtemp(prefix=f"oceanpy-{flow}-{label}-")
            folder = ocean.assets.download_asset(
                s["ddo"], consumer, destination, s["order_tx"]
            )
            path = Path(folder) / "file0"
            assert path.exists(), f"ocean.py wrote no file0 in {folder}"
            digest = _sha256_file(path)
            assert digest == file_sha256, f"sha256 {digest} != {file_sha256}"
            return {"bytes": path.stat().st_size, "sha256": digest}

        return run

    rec.run(f"{flow}.download", download("first"), needs=(f"{flow}.pay",))
    rec.run(f"{flow}.redownload", download("again"), needs=(f"{flow}.download",))


# The algorithm's container, published with ocean.py's own algorithm metadata
# (create_algo_asset: language python, format docker-image, entrypoint "python $ALGO").
# Tidegate's local engine maps image "python" to its python3; the checksum is pinned
# by the dataset's trusted-algorithm entry (containerSectionChecksum).
ALGO_IMAGE, ALGO_TAG = "python", "3.11"
ALGO_CHECKSUM = "sha256:" + hashlib.sha256(b"tidegate-e2e python:3.11").hexdigest()
FINISHED = (31, 32, 70)  # data / algorithm provisioning failed, completed
STATUS_TIMEOUT = 60


def run_compute(
    rec: Recorder,
    m: dict[str, Any],
    state: dict[str, Any],
    provider_url: str,
    file_url: str,
    algo_url: str,
    publisher: Any,
    consumer: Any,
) -> None:
    """Compute-to-data the way ocean.py's c2d flow does it, every call ocean.py's own."""
    s: dict[str, Any] = {}
    ocean = state.get("ocean")
    to_wei = m["to_wei"]
    stamp = time.time_ns()

    def publish_algorithm() -> dict[str, Any]:
        _, datatoken, ddo = ocean.assets.create_algo_asset(
            f"tidegate-e2e-algorithm-{stamp}", algo_url, {"from": publisher},
            image=ALGO_IMAGE, tag=ALGO_TAG, checksum=ALGO_CHECKSUM,
        )
        assert ddo is not None, "the algorithm DDO never appeared in Tidegate's Aquarius API"
        s.update(algo_ddo=ddo, algo_datatoken=datatoken)
        return {"did": ddo.did, "algorithm": ddo.metadata["algorithm"]}

    rec.run("compute.publish_algorithm", publish_algorithm, needs=("ocean",))

    def publish_dataset() -> dict[str, Any]:
        # generate_trusted_algorithms: fileinfo with checksum of the algorithm's file, and
        # sha256(entrypoint + checksum) of its container.
        trusted = s["algo_ddo"].generate_trusted_algorithms()
        compute_values = {
            "allowRawAlgorithm": False,
            "allowNetworkAccess": False,
            "publisherTrustedAlgorithms": [trusted],
            "publisherTrustedAlgorithmPublishers": [],
        }
        _, datatoken, ddo = ocean.assets.create_url_asset(
            f"tidegate-e2e-compute-{stamp}", file_url, {"from": publisher},
            compute_values=compute_values,
        )
        assert ddo is not None, "the dataset DDO never appeared in Tidegate's Aquarius API"
        service = next(x for x in ddo.services if x.type == "compute")
        s.update(ddo=ddo, datatoken=datatoken, service=service)
        return {"did": ddo.did, "service_types": [x.type for x in ddo.services],
                "compute_service_id": service.id, "trusted": trusted}

    rec.run("compute.publish_dataset", publish_dataset, needs=("compute.publish_algorithm",))

    def environments() -> dict[str, Any]:
        envs = ocean.compute.get_c2d_environments(provider_url, 8996)
        free = ocean.compute.get_free_c2d_environment(provider_url, 8996)
        s["env"] = free
        return {"ids": [e["id"] for e in envs], "free": free}

    rec.run("compute.environments", environments, needs=("ocean",))

    def pay() -> dict[str, Any]:
        # The publisher mints one datatoken of each asset to the consumer, who then pays
        # through ocean.py: initializeCompute, then startOrder per asset with the
        # environment's consumerAddress as the order's consumer (ocean.py's c2d flow).
        s["datatoken"].mint(consumer.address, to_wei(1), {"from": publisher})
        s["algo_datatoken"].mint(consumer.address, to_wei(1), {"from": publisher})
        dataset = m["ComputeInput"](s["ddo"], s["service"])
        algorithm = m["ComputeInput"](s["algo_ddo"], s["algo_ddo"].services[0])
        datasets, algo = ocean.assets.pay_for_compute_service(
            datasets=[dataset],
            algorithm_data=algorithm,
            consume_market_order_fee_address=consumer.address,
            tx_dict={"from": consumer},
            compute_environment=s["env"]["id"],
            valid_until=int(time.time()) + 3600,
            consumer_address=s["env"]["consumerAddress"],
        )
        assert algo is not None, "initializeCompute returned no algorithm entry"
        s.update(dataset_input=datasets[0], algorithm_input=algo)
        w3 = ocean.config_dict["web3_instance"]
        for tx in (datasets[0].transfer_tx_id, algo.transfer_tx_id):
            assert w3.eth.get_transaction_receipt(tx)["status"] == 1, tx
        return {"dataset_tx": datasets[0].transfer_tx_id, "algorithm_tx": algo.transfer_tx_id}

    rec.run("compute.pay", pay, needs=("compute.publish_dataset", "compute.environments"))

    def start() -> dict[str, Any]:
        # POST compute, signed consumerAddress + dataset DID + nonce; additionalInputs: [].
        job_id = ocean.compute.start(consumer, s["dataset_input"], s["env"]["id"],
                                     s["algorithm_input"])
        s["job_id"] = job_id
        return {"job_id": job_id, "consumer": consumer.address}

    rec.run("compute.start", start, needs=("compute.pay",))

    def status() -> dict[str, Any]:
        seen: list[int] = []
        deadline = time.monotonic() + STATUS_TIMEOUT
        while True:
            job = ocean.compute.status(s["ddo"], s["service"], s["job_id"], consumer)
            if not seen or seen[-1] != job.get("status"):
                seen.append(job.get("status"))
            if job.get("status") in FINISHED or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        s["job"] = job
        assert job.get("status") == 70, f"job ended with {job}"
        assert job["ok"] is True, job
        return {"statuses": seen, "statusText": job.get("statusText"),
                "results": job.get("results"), "dateFinished": job.get("dateFinished")}

    rec.run("compute.status", status, needs=("compute.start",))

    def result() -> dict[str, Any]:
        results = s["job"]["results"]
        index = next(r["index"] for r in results if r["type"] == "output")
        output = ocean.compute.result(s["ddo"], s["service"], s["job_id"], index, consumer)
        assert isinstance(output, bytes), type(output)
        return {"index": index, "output": output.decode("utf-8", "replace"),
                "result_types": [r["type"] for r in results]}

    rec.run("compute.result", result, needs=("compute.status",))

    def result_logs() -> dict[str, Any]:
        # compute_job_result_logs: status, then computeResult for every index in order,
        # keeping those of the asked type.
        outputs = ocean.compute.compute_job_result_logs(
            s["ddo"], s["service"], s["job_id"], consumer)
        logs = ocean.compute.compute_job_result_logs(
            s["ddo"], s["service"], s["job_id"], consumer, "algorithmLog")
        return {"outputs": [o.decode("utf-8", "replace") for o in outputs],
                "logs": [x.decode("utf-8", "replace") for x in logs]}

    rec.run("compute.result_logs", result_logs, needs=("compute.status",))

    def stop() -> dict[str, Any]:
        # ocean.py's stop: PUT with the query, signed consumerAddress + jobId + did + nonce.
        # The job has finished: the answer is its record, unchanged.
        job = ocean.compute.stop(s["ddo"], s["service"], s["job_id"], consumer)
        return {"status": job.get("status"), "ok": job.get("ok"), "jobId": job.get("jobId")}

    rec.run("compute.stop", stop, needs=("compute.status",))

    def delete() -> dict[str, Any]:
        # ocean.py has no OceanCompute.delete; DataServiceProvider.delete_compute_job is its
        # own call (DELETE with the query, signed like stop).
        dsp = m["DataServiceProvider"]
        deleted = dsp.delete_compute_job(s["ddo"].did, s["job_id"], s["service"], consumer)
        return {"deleted": {k: deleted.get(k) for k in ("jobId", "status")}}

    rec.run("compute.delete", delete,
            needs=("compute.result", "compute.result_logs", "compute.stop"))

    def delete_again() -> dict[str, Any]:
        # The reference keeps a deleted job (removed: 1): a second delete finds it.
        dsp = m["DataServiceProvider"]
        deleted = dsp.delete_compute_job(s["ddo"].did, s["job_id"], s["service"], consumer)
        return {"deleted": {k: deleted.get(k) for k in ("jobId", "status", "removed")}}

    rec.run("compute.delete_again", delete_again, needs=("compute.delete",))

    def delete_unknown() -> dict[str, Any]:
        # An empty answer would crash delete_compute_job (IndexError on element 0); an
        # error answer becomes ocean.py's own DataProviderException.
        dsp = m["DataServiceProvider"]
        try:
            dsp.delete_compute_job(s["ddo"].did, "no-such-job", s["service"], consumer)
        except Exception as exc:  # the type is what the test checks
            return {"raised": type(exc).__name__, "message": str(exc)[:300]}
        return {"raised": None}

    rec.run("compute.delete_unknown", delete_unknown, needs=("compute.start",))

    def stop_fresh() -> dict[str, Any]:
        # A job stopped right after its start: computeResult index 0 (the log) exists.
        job_id = ocean.compute.start(consumer, s["dataset_input"], s["env"]["id"],
                                     s["algorithm_input"])
        job = ocean.compute.stop(s["ddo"], s["service"], job_id, consumer)
        deadline = time.monotonic() + STATUS_TIMEOUT
        while job.get("status") not in FINISHED and time.monotonic() < deadline:
            time.sleep(0.2)
            job = ocean.compute.status(s["ddo"], s["service"], job_id, consumer)
        log = ocean.compute.result(s["ddo"], s["service"], job_id, 0, consumer)
        return {"job_id": job_id, "status": job.get("status"),
                "statusText": job.get("statusText"), "results": job.get("results"),
                "log": log.decode("utf-8", "replace")}

    rec.run("compute.stop_fresh", stop_fresh, needs=("compute.start",))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

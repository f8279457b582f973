"""C2D v2: an environment's resources, prices and free block, derived from its config;
the v2 job shape; the v2 request models and which requests they take."""

from decimal import Decimal

import pytest

from tidegate.api.node.compute import (
    FreeComputeParams,
    PaidComputeParams,
    carries_node_start,
    node_environments,
)
from tidegate.api.params import parse_model
from tidegate.compute.environments import Environment, Gpus
from tidegate.compute.jobs import JobRecord, JobStatus
from tidegate.compute.resources import (
    ResourceAmount,
    ResourcesRefusedError,
    describe,
    fill_resources,
    job_cost,
)
from tidegate.errors import BadRequestError, ValidationError

ADDRESS = "0x" + "11" * 20
TOKEN = "0x" + "22" * 20


def env(**kw: object) -> Environment:
    base: dict[str, object] = {"id": "e1", "chain_id": 8996, "consumer_address": ADDRESS,
                               "fee_token": TOKEN}
    base.update(kw)
    return Environment(**base)  # type: ignore[arg-type]


def test_free_environment_description() -> None:
    d = describe(env(cpu_number=2, ram_gb=1.5, disk_gb=3, max_jobs=3, max_job_duration=120),
                 running=1, free_running=1, queued=0)
    resources = {r["id"]: r for r in d["resources"]}
    assert resources["cpu"] == {"id": "cpu", "type": "cpu", "kind": "quantity", "total": 6,
                                "min": 2, "max": 2, "inUse": 2}
    assert resources["ram"]["total"] == 4.5 and resources["ram"]["max"] == 1.5
    assert resources["disk"]["inUse"] == 3 and resources["gpu"]["total"] == 0
    assert d["fees"] == {"8996": [{"feeToken": TOKEN, "prices": [
        {"id": "cpu", "price": 0.0}, {"id": "ram", "price": 0}, {"id": "disk", "price": 0},
        {"id": "gpu", "price": 0}]}]}
    assert d["free"]["maxJobs"] == 3 and d["free"]["maxJobDuration"] == 120
    assert d["free"]["maxJobsPerConsumer"] == 3
    assert d["consumerAddress"] == ADDRESS and d["runningJobs"] == 1
    assert d["free"]["resources"][0]["inUse"] == 2


def test_priced_environment_has_no_free_block_and_prices_on_cpu() -> None:
    priced = env(price_min=Decimal("3"), cpu_number=2, free_jobs_per_consumer=1)
    d = describe(priced, running=0, free_running=0, queued=0)
    assert "free" not in d
    prices = {p["id"]: p["price"] for p in d["fees"]["8996"][0]["prices"]}
    assert prices == {"cpu": 1.5, "ram": 0, "disk": 0, "gpu": 0}
    # Ocean Node's cost rule over the only request the environment admits.
    amounts = fill_resources(priced, [])
    cost = sum(prices[a.id] * a.amount for a in amounts) * 2  # 61 s: 2 minutes
    assert Decimal(str(cost)) == job_cost(priced, 61) == Decimal(6)


def test_gpus_are_shared_devices() -> None:
    d = describe(env(gpus=Gpus(count=2), max_jobs=4), running=3, free_running=3, queued=0)
    gpu = next(r for r in d["resources"] if r["id"] == "gpu")
    assert (gpu["total"], gpu["min"], gpu["max"], gpu["inUse"]) == (2, 2, 2, 2)


def test_fill_resources() -> None:
    e = env(cpu_number=2)
    assert fill_resources(e, [ResourceAmount("cpu", 1)]) == [
        ResourceAmount("cpu", 2), ResourceAmount("ram", 1), ResourceAmount("disk", 1),
        ResourceAmount("gpu", 0)]
    with pytest.raises(ResourcesRefusedError, match="Requested 3, but max is 2"):
        fill_resources(e, [ResourceAmount("cpu", 3)])
    with pytest.raises(ResourcesRefusedError, match="No such resource"):
        fill_resources(e, [ResourceAmount("tpu", 1)])


def test_environment_list_filters_by_chain() -> None:
    envs = [env(), env(id="e2", chain_id=1)]
    assert [e["id"] for e in node_environments(envs, None)] == ["e1", "e2"]
    assert [e["id"] for e in node_environments(envs, 1)] == ["e2"]


def test_node_job_shape() -> None:
    record = JobRecord(job_id="j", owner=ADDRESS, did="", agreement_id="", environment="e1",
                       chain_id=8996, status=JobStatus.COMPLETED, date_created=1.5,
                       date_finished=2.0, protocol="node", free=True, max_duration=60,
                       resources=[{"id": "cpu", "amount": 1}])
    shape = record.to_node_json()
    assert shape["statusText"] == "Job finished" and shape["isFree"] is True
    assert (shape["did"], shape["agreementId"], shape["dateFinished"]) == (None, None, "2.000")
    assert shape["maxJobDuration"] == 60 and shape["resources"] == [{"id": "cpu", "amount": 1}]
    record.stop_requested = True
    assert record.to_node_json()["statusText"] == "Job stopped"
    # Old records (no generation stored) read as classic ones.
    stored = record.to_store()
    for key in ("protocol", "free", "max_duration", "resources"):
        del stored[key]
    assert JobRecord.from_store(stored).protocol == "classic"


BODY = {"algorithm": {"meta": {"rawcode": "print(1)", "container": {"image": "python"}}},
        "environment": "e1", "consumerAddress": ADDRESS, "nonce": "5", "signature": "0x00"}


def test_v2_start_models() -> None:
    free = parse_model(FreeComputeParams, {
        **BODY, "datasets": [{"fileObject": {"type": "url", "url": "https://x.test/a"}},
                             {"documentId": "did:op:" + "a" * 64, "serviceId": "0"}],
        "resources": [{"id": "cpu", "amount": 1}], "maxJobDuration": 30.5,
        "dataset": {"ignored": True}})
    assert free.maxJobDuration == 31 and free.payment_request() is None
    assert [d.dataset().file_object is not None for d in free.datasets] == [True, False]
    paid = parse_model(PaidComputeParams, {**BODY, "datasets": [],
                                           "payment": {"chainId": 8996, "token": TOKEN}})
    request = paid.payment_request()
    assert request is not None and request.chain_id == 8996
    with pytest.raises(ValidationError):
        parse_model(PaidComputeParams, {**BODY, "datasets": []})  # payment is required
    with pytest.raises(BadRequestError):
        parse_model(FreeComputeParams, {**BODY, "datasets": [{"serviceId": "0"}]})
    for bad in ({"resources": [{"id": "cpu", "amount": True}]}, {"maxJobDuration": 0},
                {"resources": [{"id": "cpu", "amount": "1"}]}):
        with pytest.raises(BadRequestError):
            parse_model(FreeComputeParams, {**BODY, **bad})


def test_which_start_is_which() -> None:
    classic = {"dataset": {}, "additionalDatasets": [], "algorithm": {}}
    assert not carries_node_start(classic)
    assert carries_node_start({**classic, "datasets": []})  # ocean.js 8 sends both
    assert carries_node_start({"payment": {}})

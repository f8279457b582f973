"""Compute-to-data jobs, the way ocean.py 3.1 runs them.

1. Resolve the dataset (a ``compute`` service) and the algorithm (its ``access``
   service); pick the provider's compute environment (``computeEnvironments``).
2. ``initializeCompute`` with any earlier orders of both (for the environment's
   ``consumerAddress``, paid by this wallet): a ``validOrder`` without a fee is used as
   is, one with a fresh fee is ``reuseOrder``-ed, otherwise a new order is started
   for the environment's address (the compute cluster consumes the data).
3. ``POST compute`` signed over ``consumerAddress + documentId + nonce``; follow the
   job's status (signed as ocean.py signs it) until it ends; fetch every result with
   signed ``computeResult`` requests into the output directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from tidegate.auth.signatures import compute_message, compute_result_message
from tidegate.consumer.download import progress_bar, safe_name, save_stream
from tidegate.consumer.errors import ConsumerError, UsageProblem, one_line
from tidegate.consumer.http import Provider
from tidegate.consumer.ordering import (
    OrderOutcome,
    ServiceRef,
    Session,
    find_earlier_order,
    parse_fee,
    reuse_order,
    start_order,
)

FINISHED = {31: "data provisioning failed", 32: "algorithm provisioning failed", 70: "completed"}
DEFAULT_DURATION = 3600


@dataclass
class JobOutcome:
    job_id: str
    status: int
    status_text: str
    detail: str = ""
    orders: list[tuple[str, OrderOutcome]] = field(default_factory=list)
    saved: list[tuple[Path, int, str]] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status == 70


def pick_environment(provider: Provider, chain_id: int, env_id: str | None) -> dict[str, Any]:
    """The environment ``env_id``, else the first free one, else the first one."""
    answer = provider.json("computeEnvironments", "to list its compute environments",
                           params={"chainId": str(chain_id)})
    listed: Any = answer.get(str(chain_id), []) if isinstance(answer, dict) else answer
    envs: list[dict[str, Any]] = ([e for e in listed if isinstance(e, dict)]
                                  if isinstance(listed, list) else [])
    if not envs:
        raise ConsumerError(f"the provider at {provider.origin} offers no compute environment "
                            f"on chain {chain_id}")
    if env_id is not None:
        for env in envs:
            if str(env.get("id")) == env_id:
                return env
        known = ", ".join(str(e.get("id")) for e in envs)
        raise UsageProblem(f"the provider has no compute environment {env_id!r} "
                           f"(it has: {known})")

    def price(env: dict[str, Any]) -> float:
        try:
            return float(env.get("priceMin") or 0)
        except (TypeError, ValueError):
            return float("inf")

    free = [e for e in envs if price(e) == 0]
    return free[0] if free else envs[0]


def _item_order(session: Session, ref: ServiceRef, quote: Any, provider: Provider,
                compute_address: str) -> OrderOutcome:
    """Pay for one input as initializeCompute answered for it."""
    if not isinstance(quote, dict):
        raise ConsumerError(f"the provider at {provider.origin} answered initializeCompute "
                            f"without a quote for {ref.did}")
    valid = quote.get("validOrder")
    if isinstance(valid, str) and valid:
        if not quote.get("providerFee"):
            return OrderOutcome(tx=valid, reused=True)
        return reuse_order(session.chain, ref, valid, parse_fee(quote, provider))
    return start_order(session.chain, ref, parse_fee(quote, provider), compute_address)


def _signed(session: Session, provider: Provider, message: str) -> dict[str, str]:
    nonce = str(provider.nonce(session.wallet.address) + 1)
    return {"nonce": nonce, "signature": session.wallet.sign(message + nonce)}


def run_job(session: Session, did: str, algorithm_did: str, *, service_id: str | None,
            algorithm_service: str | None, env_id: str | None, duration: int | None,
            out_dir: Path, console: Console, poll: float = 2.0,
            on_order: Callable[[str, OrderOutcome], None] | None = None,
            on_start: Callable[[str], None] | None = None) -> JobOutcome:
    """Order what is needed, start the job, follow it and fetch its results."""
    dataset = session.service(did, service_id, ("compute",))
    algorithm = session.service(algorithm_did, algorithm_service, ("access", "compute"))
    metadata = algorithm.ddo.get("metadata")
    if not isinstance(metadata, dict) or metadata.get("type") != "algorithm":
        raise UsageProblem(f"{algorithm_did} is not an algorithm (its metadata type is "
                           f"{metadata.get('type') if isinstance(metadata, dict) else None!r})")
    provider = session.provider_for(dataset)
    me = session.wallet.address
    env = pick_environment(provider, dataset.chain_id, env_id)
    compute_address = env.get("consumerAddress")
    if not isinstance(compute_address, str) or not compute_address:
        raise ConsumerError(f"compute environment {env.get('id')!r} names no consumerAddress")
    seconds = duration or int(env.get("maxJobDuration") or DEFAULT_DURATION)
    items: list[dict[str, str]] = []
    for ref in (dataset, algorithm):
        item = {"documentId": ref.did, "serviceId": ref.id}
        earlier = find_earlier_order(session.chain, ref, compute_address)
        if earlier:
            item["transferTxId"] = earlier
        items.append(item)
    quotes = provider.json("initializeCompute", "to quote the compute job", json={
        "datasets": [items[0]], "algorithm": items[1],
        "compute": {"env": str(env["id"]), "validUntil": int(time.time()) + seconds},
        "consumerAddress": me})
    datasets = quotes.get("datasets") if isinstance(quotes, dict) else None
    if not isinstance(datasets, list) or not datasets:
        raise ConsumerError(f"the provider at {provider.origin} answered initializeCompute "
                            f"without a dataset quote")
    orders: list[tuple[str, OrderOutcome]] = []
    for label, ref, quote in (("dataset", dataset, datasets[0]),
                              ("algorithm", algorithm, quotes.get("algorithm"))):
        outcome = _item_order(session, ref, quote, provider, compute_address)
        orders.append((label, outcome))
        if on_order:
            on_order(label, outcome)
    body = {
        "dataset": {**items[0], "transferTxId": orders[0][1].tx},
        "algorithm": {**items[1], "transferTxId": orders[1][1].tx},
        "environment": str(env["id"]),
        "consumerAddress": me,
        **_signed(session, provider, compute_message(me, "", did)),
    }
    started = provider.json("computeStart", "to start the job", json=body, ok=(200, 201))
    job = started[0] if isinstance(started, list) and started else started
    job_id = job.get("jobId") if isinstance(job, dict) else None
    if not isinstance(job_id, str) or not job_id:
        raise ConsumerError(f"the provider at {provider.origin} started no job (no jobId)")
    if on_start:
        on_start(job_id)
    final = follow(session, provider, did, job_id, console, poll)
    job_outcome = JobOutcome(job_id, int(final.get("status", 0)), str(final.get("statusText", "")),
                         one_line(str(final.get("detail") or "")), orders)
    job_outcome.saved = fetch_results(session, provider, job_id, final, out_dir, console)
    return job_outcome


def job_status(session: Session, provider: Provider, did: str, job_id: str) -> dict[str, Any]:
    me = session.wallet.address
    params = {"consumerAddress": me, "jobId": job_id, "documentId": did,
              **_signed(session, provider, compute_message(me, job_id, did))}
    answer = provider.json("computeStatus", "to report the job status", params=params)
    job = answer[0] if isinstance(answer, list) and answer else answer
    if not isinstance(job, dict):
        raise ConsumerError(f"the provider at {provider.origin} reports no job {job_id}")
    return job


def follow(session: Session, provider: Provider, did: str, job_id: str, console: Console,
           poll: float) -> dict[str, Any]:
    """Poll the job until it ends, with a live status line (and a line per change)."""
    began = time.monotonic()
    last = ""
    try:
        with console.status(f"job {job_id}: starting", spinner="dots") as live:
            while True:
                job = job_status(session, provider, did, job_id)
                status = int(job.get("status", 0) or 0)
                text = str(job.get("statusText") or status)
                if text != last:
                    console.print(f"  {time.monotonic() - began:6.1f} s  {text}")
                    last = text
                if status in FINISHED:
                    return job
                live.update(f"job {job_id}: {text} ({time.monotonic() - began:.0f} s)")
                time.sleep(poll)
    except KeyboardInterrupt:
        raise ConsumerError(f"stopped following job {job_id}; it goes on at the provider "
                            f"at {provider.origin}") from None


def fetch_results(session: Session, provider: Provider, job_id: str, job: dict[str, Any],
                  out_dir: Path, console: Console) -> list[tuple[Path, int, str]]:
    """Every result of the job into ``out_dir``: (path, size, type)."""
    results = job.get("results")
    if not isinstance(results, list) or not results:
        return []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConsumerError(f"cannot create {out_dir}: {exc.strerror}") from None
    me = session.wallet.address
    saved: list[tuple[Path, int, str]] = []
    with progress_bar(console) as progress:
        for position, result in enumerate(results):
            if not isinstance(result, dict):
                continue
            index = result.get("index", position)
            kind = str(result.get("type") or "result")
            name = safe_name(result.get("filename")) or f"{kind}-{index}"
            if any(name == p.name for p, _, _ in saved):
                name = f"{index}-{name}"
            params = {"consumerAddress": me, "jobId": job_id, "index": str(index),
                      **_signed(session, provider,
                                compute_result_message(me, job_id, str(index)))}
            path = out_dir / name
            with provider.stream("computeResult", f"result {index} of the job",
                                 params, {"Accept-Encoding": "identity"},
                                 ok=(200,)) as response:
                size = save_stream(response, path, progress, name)
            saved.append((path, size, kind))
    return saved

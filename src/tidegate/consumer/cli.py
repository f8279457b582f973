"""``tidegate order``, ``tidegate download``, ``tidegate compute``: the consumer commands.

Registered on the ``tidegate`` group by ``tidegate.cli``. Every failure is one line on
stderr, ``tidegate <command>: <what happened>``, with exit code 1 (2 for bad options);
never a traceback (``TIDEGATE_DEBUG=1`` shows one), never the key.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tidegate.consumer.errors import ConsumerError, UsageProblem

if TYPE_CHECKING:  # the commands import web3 and rich only when they run
    from tidegate.consumer.ordering import OrderOutcome, Session

F = TypeVar("F", bound=Callable[..., Any])

ENV_KEY = "TIDEGATE_CONSUMER_KEY"
ENV_RPC = "TIDEGATE_RPC_URL"
ENV_PROVIDER = "TIDEGATE_PROVIDER_URL"
ENV_METADATA = "TIDEGATE_METADATA_URL"
ENVIRONMENT_HELP = (
    f"Environment: {ENV_KEY} (--key), {ENV_RPC} (--rpc), {ENV_PROVIDER} (--provider-url), "
    f"{ENV_METADATA} (--metadata-url); TIDEGATE_DEBUG=1 prints tracebacks."
)


def consumer_options(function: F) -> F:
    """The options every consumer command takes (the chain, the key, where to ask)."""
    options = [
        click.option("--rpc", "rpc_url", required=True, envvar=ENV_RPC, metavar="URL",
                     help=f"JSON-RPC URL of the asset's chain (or {ENV_RPC})"),
        click.option("--key", "key", required=True, envvar=ENV_KEY, metavar="KEY",
                     help=f"Consumer private key, 0x hex (or {ENV_KEY}); signs the requests "
                          f"and pays for the order. Prefer the variable: options are visible "
                          f"to other users of the machine"),
        click.option("--provider-url", envvar=ENV_PROVIDER, metavar="URL", default=None,
                     help=f"Talk to this provider (or {ENV_PROVIDER}; default: the service's "
                          f"own serviceEndpoint)"),
        click.option("--metadata-url", envvar=ENV_METADATA, metavar="URL", default=None,
                     help=f"Aquarius-compatible metadata cache that resolves the DID (or "
                          f"{ENV_METADATA}; default: the provider URL)"),
        click.option("--service", "service_id", default=None, metavar="ID",
                     help="Service id in the DDO (default: the first service of the right "
                          "type)"),
        click.option("--debug", is_flag=True, envvar="TIDEGATE_DEBUG", hidden=True,
                     help="Show the traceback of an unexpected error (or TIDEGATE_DEBUG=1)"),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def run_command(name: str) -> Callable[[F], F]:
    """Turn every failure into one line on stderr and an exit code."""

    def wrap(function: F) -> F:
        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            debug = bool(kwargs.pop("debug", False))
            try:
                return function(*args, **kwargs)
            except ConsumerError as exc:
                click.echo(f"tidegate {name}: {exc}", err=True)
                sys.exit(exc.exit_code)
            except KeyboardInterrupt:
                click.echo(f"tidegate {name}: interrupted (a download resumes when run again)",
                           err=True)
                sys.exit(130)
            except (click.exceptions.Exit, click.ClickException):
                raise
            except Exception as exc:
                if debug:
                    raise
                click.echo(f"tidegate {name}: unexpected error ({type(exc).__name__}); set "
                           f"TIDEGATE_DEBUG=1 to see where", err=True)
                sys.exit(1)

        return wrapper  # type: ignore[return-value]

    return wrap


def open_session(rpc_url: str, key: str, provider_url: str | None,
                 metadata_url: str | None) -> Session:
    from tidegate.consumer.chain import Wallet
    from tidegate.consumer.http import http_client
    from tidegate.consumer.ordering import Session

    wallet = Wallet(key)
    if not rpc_url.strip().startswith(("http://", "https://")):
        raise UsageProblem("--rpc must be an http:// or https:// URL")
    return Session(http_client(), wallet, rpc_url.strip(), provider_url, metadata_url)


def print_order(outcome: OrderOutcome) -> None:
    width = max(len(label) for label, _ in outcome.describe())
    for label, text in outcome.describe():
        click.echo(f"  {label.ljust(width)}  {text}")


@click.command("order", epilog=ENVIRONMENT_HELP)
@click.argument("did")
@consumer_options
@run_command("order")
def order_command(did: str, rpc_url: str, key: str, provider_url: str | None,
                  metadata_url: str | None, service_id: str | None) -> None:
    """Order an access service of DID: pay for it unless a still-valid order exists.

    Resolves the DDO, asks the provider's initialize for a quote, buys one datatoken
    from the asset's fixed-rate exchange or takes it from its dispenser when the
    consumer holds none, and calls startOrder with the provider fee. Prints the order
    transaction and what it cost.
    """
    from tidegate.consumer.ordering import order_access

    session = open_session(rpc_url, key, provider_url, metadata_url)
    with session.http:
        ref, outcome = order_access(session, did, service_id)
    click.echo(f"Service {ref.id} of {did} ({ref.name}) for {session.wallet.address}: "
               f"{outcome.summary}")
    print_order(outcome)


@click.command("download", epilog=ENVIRONMENT_HELP)
@click.argument("did")
@click.option("--out", "out_dir", required=True, metavar="DIR",
              type=click.Path(path_type=Path, file_okay=False),
              help="Directory to save the files in (created if needed)")
@click.option("--file-index", type=click.IntRange(min=0), default=None, metavar="N",
              help="Only the file at this index (default: every file of the service)")
@consumer_options
@run_command("download")
def download_command(did: str, out_dir: Path, file_index: int | None, rpc_url: str, key: str,
                     provider_url: str | None, metadata_url: str | None,
                     service_id: str | None) -> None:
    """Download the files of DID's access service into DIR, ordering it first if needed.

    A file arrives as DIR/<name>.part and is renamed when complete (and its sha256
    checked, when the provider's fileinfo gives one); an interrupted download resumes
    from the .part file when the command is run again. The progress bar goes to
    stderr when it is a terminal.
    """
    from rich.console import Console

    from tidegate.consumer.download import download_all, plan_files
    from tidegate.consumer.ordering import order_access

    session = open_session(rpc_url, key, provider_url, metadata_url)
    with session.http:
        ref, outcome = order_access(session, did, service_id)
        click.echo(f"Service {ref.id} of {did}: {outcome.summary}")
        print_order(outcome)
        provider = session.provider_for(ref)
        targets = plan_files(provider, ref, file_index)
        saved = download_all(provider, session.wallet, ref, outcome.tx, targets, out_dir,
                             Console(stderr=True))
    for item in saved:
        check = "sha256 verified" if item.verified else "no checksum to verify"
        resumed = f", resumed at {item.resumed_from} bytes" if item.resumed_from else ""
        click.echo(f"Saved {item.path} ({item.size} bytes, {check}{resumed}; "
                   f"sha256 {item.sha256})")


@click.command("compute", epilog=ENVIRONMENT_HELP)
@click.argument("did")
@click.option("--algorithm", "algorithm_did", required=True, metavar="ALGO_DID",
              help="DID of the published algorithm to run on the dataset")
@click.option("--algorithm-service", default=None, metavar="ID",
              help="Service id of the algorithm (default: its first access service)")
@click.option("--env", "env_id", default=None, metavar="ID",
              help="Compute environment id (default: the provider's first free one, else "
                   "its first)")
@click.option("--duration", type=click.IntRange(min=1), default=None, metavar="SECONDS",
              help="How long the job may run; the provider fee is quoted for it (default: "
                   "the environment's maxJobDuration)")
@click.option("--out", "out_dir", required=True, metavar="DIR",
              type=click.Path(path_type=Path, file_okay=False),
              help="Directory for the job's results and logs (created if needed)")
@consumer_options
@run_command("compute")
def compute_command(did: str, algorithm_did: str, algorithm_service: str | None,
                    env_id: str | None, duration: int | None, out_dir: Path, rpc_url: str,
                    key: str, provider_url: str | None, metadata_url: str | None,
                    service_id: str | None) -> None:
    """Run the algorithm ALGO_DID on DID's compute service and fetch the results into DIR.

    Orders the dataset and the algorithm for the environment's compute address unless
    still-valid orders exist (initializeCompute), starts the job with a signed request,
    shows its status live until it ends, then downloads every result (output and logs)
    with signed computeResult requests. Exit code 1 if the job did not complete.
    """
    from rich.console import Console

    from tidegate.consumer.compute import run_job

    session = open_session(rpc_url, key, provider_url, metadata_url)

    def on_order(label: str, outcome: OrderOutcome) -> None:
        click.echo(f"{label.capitalize()}: {outcome.summary}")
        print_order(outcome)

    def on_start(job_id: str) -> None:
        click.echo(f"Started job {job_id}")

    with session.http:
        outcome = run_job(session, did, algorithm_did, service_id=service_id,
                          algorithm_service=algorithm_service, env_id=env_id,
                          duration=duration, out_dir=out_dir, console=Console(stderr=True),
                          on_order=on_order, on_start=on_start)
    for path, size, kind in outcome.saved:
        click.echo(f"Saved {path} ({kind}, {size} bytes)")
    if not outcome.succeeded:
        detail = f" ({outcome.detail})" if outcome.detail else ""
        logs = f"; its logs are in {out_dir}" if outcome.saved else ""
        raise ConsumerError(f"job {outcome.job_id} ended: {outcome.status_text}{detail}{logs}")
    click.echo(f"Job {outcome.job_id}: {outcome.status_text}")

"""The ``tidegate`` command: serve, dev, publish; order, download, compute (consumers)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, cast

import click
import uvicorn

from tidegate import __version__
from tidegate.api.uvicorn_protocol import HTTP_PROTOCOL
from tidegate.consumer.cli import compute_command, download_command, order_command
from tidegate.errors import ConfigurationError
from tidegate.logs import FIELDS_EXTRA, configure_logging
from tidegate.settings import Settings

if TYPE_CHECKING:
    from tidegate.startup import StartupReport


def load_settings() -> Settings:
    """Settings from the environment, or exit 2 with the problems listed."""
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        click.echo(f"tidegate: {exc}", err=True)
        sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="tidegate")
def main() -> None:
    """Tidegate: a wire-compatible Ocean Protocol Provider."""


main.add_command(order_command)
main.add_command(download_command)
main.add_command(compute_command)


_SERVE_ENV = ("Environment: PROVIDER_PRIVATE_KEY, NETWORK_URL, ADDRESS_FILE, AQUARIUS_URL, "
              "TIDEGATE_DATA_DIR, TIDEGATE_DATABASE_URL, LOG_LEVEL and the rest of "
              "docs/configuration.md.")


def _port_problem(host: str, port: int, option: str = "--port") -> str | None:
    """Why ``host:port`` cannot be listened on (taken, not ours), else None."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return f"--host {host} {option} {port}: cannot listen there ({exc.strerror})"
    return None


def run_startup_checks(settings: Settings, host: str | None = None,
                       port: int | None = None) -> StartupReport:
    """The start-up checks, or exit 2 with each problem on its own line."""
    from tidegate.startup import StartupError, check_startup

    problems: list[str] = []
    if host is not None and port is not None:
        taken = _port_problem(host, port)
        if taken:
            problems.append(taken)
    try:
        report = asyncio.run(check_startup(settings))
    except StartupError as exc:
        problems += exc.problems
    if problems:
        click.echo("tidegate: cannot start:", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)
    return report


@main.command(epilog=_SERVE_ENV)
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a server
@click.option("--port", default=8030, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 256))
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API; all other configuration comes from the environment.

    Before listening it opens the store and every chain once and stops (exit status
    2, each problem named) if a setting is wrong or something it names cannot work.
    """
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    report = run_startup_checks(settings, host, port)
    log = logging.getLogger("tidegate.startup")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
    url = f"http://{shown_host}:{port}"
    # One structured record on stderr (JSON-only), one human line on stdout.
    log.info("Tidegate %s starting on %s", __version__, url, extra={FIELDS_EXTRA: {
        "version": __version__, "url": url, "docs": url + settings.root_path + "/docs",
        "workers": workers, **report.fields()}})
    for warning in report.warnings:
        log.warning("%s", warning)
    click.echo(f"Tidegate {__version__} on {url} ({workers} worker(s)): "
               + "; ".join(report.lines(with_warnings=False))
               + f"; API docs {url}{settings.root_path}/docs")
    uvicorn.run(
        "tidegate.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        # uvicorn's httptools protocol with header/body timeouts, size limits and JSON
        # errors (api/uvicorn_protocol.py; the limits come from the app's settings).
        http=HTTP_PROTOCOL,
        access_log=False,
        log_config=None,
        proxy_headers=False,
        timeout_keep_alive=30,
    )


@main.command(epilog=_SERVE_ENV)
def check() -> None:
    """Run serve's start-up checks without serving: exit 0 and print what would be
    served, or exit 2 naming each problem (a bad setting, or a resource that cannot be
    used)."""
    settings = load_settings()
    configure_logging("ERROR")
    report = run_startup_checks(settings)
    click.echo(f"tidegate {__version__}: the configuration works.")
    for line in report.lines():
        click.echo(f"  {line}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8030, show_default=True, type=click.IntRange(0, 65535),
              help="Tidegate's port (0: any free port)")
@click.option("--rpc-port", default=8545, show_default=True, type=int,
              help="JSON-RPC port of the dev chain, as barge's (0: any free port)")
@click.option("--data-dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              envvar="TIDEGATE_DATA_DIR",
              help="Keep the chain (with anvil), the index and Tidegate's state here "
                   "(or TIDEGATE_DATA_DIR; default: a fresh temporary directory)")
@click.option("--chain", "chain", type=click.Choice(["auto", "anvil", "embedded"]),
              default="auto", show_default=True,
              help="auto: anvil if installed, else the in-process chain; anvil; "
                   "embedded: the in-process eth-tester chain")
@click.option("--fresh", is_flag=True,
              help="Discard the chain state and the index kept in --data-dir first")
@click.option("--anvil", "anvil", type=click.Path(path_type=Path, dir_okay=False),
              default=None, envvar="TIDEGATE_ANVIL",
              help="The anvil executable (or TIDEGATE_ANVIL; default: `anvil` on PATH, "
                   "then tools/anvil/node_modules)")
def dev(host: str, port: int, rpc_port: int, data_dir: Path | None, chain: str,
        fresh: bool, anvil: Path | None) -> None:
    """Dev chain + Ocean contracts + demo asset + Tidegate: barge for dApp developers.

    Reads the same environment as `serve` (PROVIDER_PRIVATE_KEY, gateways, compute
    settings, LOG_LEVEL ...); dev defaults fill in what is unset (docs/dev.md).
    """
    from tidegate.dev.dev_state import DevModeError
    from tidegate.dev.devmode import ChainChoice, run_dev

    taken = [f"{problem} (another `tidegate dev` or barge running? choose another with "
             f"{option}, or {option} 0 for any free port)"
             for option, number in (("--port", port), ("--rpc-port", rpc_port))
             if number and (problem := _port_problem(host if option == "--port" else
                                                     "127.0.0.1", number, option))]
    if taken:
        for problem in taken:
            click.echo(f"tidegate dev: {problem}", err=True)
        sys.exit(1)
    if port == 0:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
    configure_logging("WARNING")  # until the settings are read
    try:
        with contextlib.suppress(KeyboardInterrupt):
            # The process environment, as `serve` reads it: dev mode layers its defaults
            # under it before Settings reads it (the one place besides settings.py).
            asyncio.run(run_dev(host, port, rpc_port, data_dir, environ=dict(os.environ),
                                chain=cast("ChainChoice", chain), fresh=fresh, anvil=anvil))
    except DevModeError as exc:
        click.echo(f"tidegate dev: {exc}", err=True)
        sys.exit(1)
    except ConfigurationError as exc:
        click.echo(f"tidegate dev: {exc}", err=True)
        sys.exit(2)


@main.command("deploy-contracts")
@click.option("--rpc", "rpc_url", required=True, help="JSON-RPC URL of the node (anvil, ganache)")
@click.option("--key", "key", required=True, envvar="TIDEGATE_DEPLOYER_KEY",
              help="Deployer private key, 0x hex (or TIDEGATE_DEPLOYER_KEY); pays the gas "
                   "and owns OCEAN and the router")
@click.option("--address-file", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Barge-layout address file to write (other networks in it are kept)")
@click.option("--network", default="development", show_default=True,
              help="Network name of the new entry")
def deploy_contracts(rpc_url: str, key: str, address_file: Path, network: str) -> None:
    """Deploy the Ocean v4 contracts to a dev node and write its ADDRESS_FILE."""
    import json

    from eth_account import Account
    from web3 import Web3
    from web3.exceptions import Web3Exception

    from tidegate.chain.contracts import write_address_file
    from tidegate.dev.deploy import DeploymentError, deploy_ocean_contracts

    try:
        deployer = Account.from_key(key)
    except (ValueError, TypeError):
        raise click.BadParameter("not a private key", param_hint="--key") from None
    w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 60}))
    try:
        chain_id = int(w3.eth.chain_id)
        addresses = deploy_ocean_contracts(w3, deployer)
        write_address_file(address_file, network, chain_id, dict(addresses))
    except DeploymentError as exc:
        click.echo(f"tidegate: deployment failed: {exc}", err=True)
        sys.exit(1)
    except (OSError, ValueError, Web3Exception) as exc:  # the node or the file failed
        # The type only: the text of a connection error can carry the RPC URL (and key).
        click.echo(f"tidegate: deployment failed ({type(exc).__name__})", err=True)
        sys.exit(1)
    click.echo(f"Deployed the Ocean contracts on chain {chain_id} from {deployer.address}; "
               f"wrote {network!r} to {address_file}")
    click.echo(json.dumps(addresses, indent=2))


def _publish_epilog() -> str:
    from tidegate.dev.publishing import DESCRIPTION_KEYS

    # \b keeps click from re-wrapping the table.
    def row(key: str, default: str, meaning: str) -> str:
        when = f"({default})" if default.startswith("required") else f"(default: {default})"
        return textwrap.fill(f"{meaning} {when}", width=79, initial_indent=f"  {key:<12} ",
                             subsequent_indent=" " * 15)

    keys = "\n".join(row(key, *about) for key, about in DESCRIPTION_KEYS.items())
    return ("\b\nKeys of the description file (any other key is refused):\n" + keys
            + "\n\nMore: docs/publishing.md")


def _mint_amount(ctx: click.Context, param: click.Parameter, value: str | None) -> int:
    from tidegate.dev.publishing import token_amount

    if value is None:
        return 0
    try:
        return token_amount(value, "--mint")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


class _PublishCommand(click.Command):
    """``publish``, whose help lists the description keys: read from ``dev/`` only when
    the help is shown, so that importing the CLI (``serve``) never loads the dev wing."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        self.epilog = _publish_epilog()
        super().format_epilog(ctx, formatter)


@main.command(cls=_PublishCommand)
@click.argument("description", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--rpc", "rpc_url", required=True, help="JSON-RPC URL of the chain")
@click.option("--key", "key", required=True, envvar="TIDEGATE_PUBLISHER_KEY",
              help="Publisher private key, 0x hex (or TIDEGATE_PUBLISHER_KEY, better: "
                   "command lines are visible to other users); pays the gas and owns the "
                   "data NFT")
@click.option("--provider-url", required=True,
              help="The provider that encrypts the files and DDO (and serves them)")
@click.option("--address-file", type=click.Path(path_type=Path, dir_okay=False, exists=True),
              default=None, help="Barge-layout address file (default: ocean-contracts' own)")
@click.option("--mint", "mint", default=None, metavar="N", callback=_mint_amount,
              help="Mint N datatokens (a decimal number) to the publisher after publishing; "
                   "any pricing (default: none)")
@click.option("--json", "as_json", is_flag=True,
              help="Print the ids as one JSON object instead of labelled lines")
def publish(description: Path, rpc_url: str, key: str, provider_url: str,
            address_file: Path | None, mint: int, as_json: bool) -> None:
    """Publish an asset described by a JSON file: data NFT, datatoken (with its
    fixed-rate exchange or dispenser), encrypted files, DDO on chain.

    Prints the DID, the NFT and datatoken addresses, the exchange id or the dispenser,
    and the transaction hashes.
    """
    import json

    from eth_account import Account

    from tidegate.dev.publisher import (
        PublishError,
        dumps,
        publish_from_description,
        published_text,
    )
    from tidegate.dev.publishing import AssetDescription, DescriptionError

    try:
        raw = json.loads(description.read_text(encoding="utf-8"))
    except (OSError, UnicodeError) as exc:
        click.echo(f"tidegate publish: {description}: cannot be read ({exc})", err=True)
        sys.exit(2)
    except json.JSONDecodeError as exc:
        click.echo(f"tidegate publish: {description}: not JSON ({exc})", err=True)
        sys.exit(2)
    try:
        parsed = AssetDescription.from_json(raw)
    except DescriptionError as exc:
        click.echo(f"tidegate publish: {description} cannot be published:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(2)
    provider = provider_url.strip().rstrip("/")
    if not provider.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http:// or https:// URL",
                                 param_hint="--provider-url")
    try:
        asset = publish_from_description(parsed, rpc_url=rpc_url, key=key,
                                         provider_url=provider, address_file=address_file,
                                         mint=mint)
    except PublishError as exc:
        click.echo(f"tidegate publish: {exc}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(dumps(asset))
    else:
        click.echo(published_text(asset, provider, Account.from_key(key).address))

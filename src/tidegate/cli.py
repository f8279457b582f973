"""The ``tidegate`` command: serve, dev, publish."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from pathlib import Path

import click
import uvicorn

from tidegate.errors import ConfigurationError
from tidegate.logs import configure_logging
from tidegate.settings import Settings


def load_settings() -> Settings:
    """Settings from the environment, or exit 2 with the problems listed."""
    try:
        return Settings.from_env()
    except ConfigurationError as exc:
        click.echo(f"tidegate: {exc}", err=True)
        sys.exit(2)


@click.group()
def main() -> None:
    """Tidegate: a wire-compatible Ocean Protocol Provider."""


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)  # noqa: S104 - a server
@click.option("--port", default=8030, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Serve the API; all other configuration comes from the environment."""
    settings = load_settings()
    configure_logging(settings.log_level)
    uvicorn.run(
        "tidegate.app:app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        proxy_headers=False,
        timeout_keep_alive=30,
    )


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8030, show_default=True, type=int)
@click.option("--rpc-port", default=8545, show_default=True, type=int,
              help="JSON-RPC port of the embedded chain (0: any free port)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Keep Tidegate's state here (default: a fresh temporary directory)")
def dev(host: str, port: int, rpc_port: int, data_dir: Path | None) -> None:
    """Embedded dev chain + contracts + demo asset + Tidegate, in one process."""
    from tidegate.devmode import run_dev  # imports py-evm: only for this command

    configure_logging("WARNING")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_dev(host, port, rpc_port, data_dir))

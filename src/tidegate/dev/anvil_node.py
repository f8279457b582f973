"""anvil (Foundry's dev node) for ``tidegate dev``, and a chain facade over its JSON-RPC.

anvil is a real dev node: it signs for its unlocked accounts (``eth_sign``,
``personal_sign``, ``eth_signTypedData_v4``), has ``evm_snapshot``/``evm_revert``/
``evm_mine``/``evm_increaseTime``, stamps blocks with the wall clock, and with
``--state <file>`` loads a chain from a file and dumps it there on exit (and every
``--state-interval`` seconds). It comes from npm (``make anvil-setup``:
``tools/anvil/node_modules``); :func:`find_anvil` also honours an explicit path
(``tidegate dev --anvil``, or ``TIDEGATE_ANVIL``) and ``anvil`` on ``PATH``.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3

from tidegate.dev import deploy
from tidegate.dev.barge import BARGE_HD_PATH, BARGE_MNEMONIC, DEV_CHAIN_ID
from tidegate.dev.deploy import OceanAddresses

_NODE_MODULES = Path("tools") / "anvil" / "node_modules"
# src/tidegate/dev/anvil_node.py -> the repository (in a checkout; harmless otherwise).
_REPO_ROOT = Path(__file__).resolve().parents[3]
START_TIMEOUT = 20.0


class AnvilError(RuntimeError):
    """anvil could not be found, could not start, or stopped answering."""


def find_anvil(
    override: str | Path | None = None, roots: Iterable[Path] | None = None
) -> Path | None:
    """The anvil executable to run, or ``None`` when there is none.

    In order: ``override`` (``--anvil`` or ``TIDEGATE_ANVIL``; returned even if it does
    not exist, so that the caller reports the user's mistake), ``anvil`` on ``PATH``,
    then what ``make
    anvil-setup`` installs under ``tools/anvil/node_modules`` of the repository or
    of the current directory (the platform package's ELF binary before the node
    wrapper: stopping the binary's PID stops anvil itself).
    """
    if override is not None and str(override).strip():
        return Path(str(override).strip()).expanduser()
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    search = list(roots) if roots is not None else [_REPO_ROOT, Path.cwd()]
    for root in dict.fromkeys(path.resolve() for path in search):
        modules = root / _NODE_MODULES
        for candidate in sorted(modules.glob("@foundry-rs/anvil-*/bin/anvil")):
            if os.access(candidate, os.X_OK):
                return candidate
        wrapper = modules / ".bin" / "anvil"
        if os.access(wrapper, os.X_OK):
            return wrapper
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (for tests and ``--rpc-port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


class AnvilNode:
    """A running anvil process; ``close()`` stops it by its PID (SIGTERM: it dumps state).

    ``state_file``: anvil's ``--state`` (load it if it exists, dump to it on exit),
    plus ``--state-interval`` seconds so that a killed session loses at most that much.
    ``log_file`` receives anvil's output (otherwise a temporary file does).
    """

    def __init__(
        self,
        binary: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 8545,
        mnemonic: str = BARGE_MNEMONIC,
        accounts: int = 10,
        balance_eth: int = 10_000,
        state_file: Path | None = None,
        state_interval: int = 2,
        log_file: Path | None = None,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if port == 0:
            port = free_port(host)
        elif port_in_use(host, port):
            raise AnvilError(
                f"port {port} on {host} is already in use (barge's ganache, another node or "
                "an earlier `tidegate dev`?): stop it or choose another --rpc-port"
            )
        self.host, self.port = host, port
        connect_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104
        self.url = f"http://{connect_host}:{port}"
        self.state_file = state_file
        command = [
            str(binary),
            "--host", host,
            "--port", str(port),
            "--chain-id", str(DEV_CHAIN_ID),
            "--mnemonic", mnemonic,
            "--accounts", str(accounts),
            "--balance", str(balance_eth),
        ]
        if state_file is not None:
            command += ["--state", str(state_file), "--state-interval", str(state_interval)]
        self._log: IO[bytes] = (
            log_file.open("a+b") if log_file is not None else _temporary_log()
        )
        try:
            self.process = subprocess.Popen(  # noqa: S603 - our own argument list
                command, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                # Its own session: a terminal's Ctrl-C reaches Tidegate only, which then
                # stops its indexer before it stops anvil (so the saved state is complete).
                start_new_session=True,
                preexec_fn=_die_with_parent(),  # one prctl call: see there
            )
        except OSError as exc:
            self._log.close()
            raise AnvilError(f"cannot run anvil at {binary}: {exc.strerror or exc}") from exc
        problem = self._wait_until_ready(start_timeout)
        if problem:
            self._stop()
            output = self._output_tail()
            self._log.close()
            raise AnvilError(f"anvil ({binary}) did not start: {problem}\n{output}".rstrip())

    def _wait_until_ready(self, timeout: float) -> str:
        """'' once ``eth_chainId`` answers 8996; otherwise why not."""
        w3 = Web3(Web3.HTTPProvider(self.url, request_kwargs={"timeout": 1}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"it exited with status {self.process.returncode}"
            try:
                chain_id = int(w3.eth.chain_id)
            except Exception:  # not listening yet
                time.sleep(0.02)
                continue
            return "" if chain_id == DEV_CHAIN_ID else f"it answers chain id {chain_id}"
        return f"no answer within {timeout:.0f} s"

    def _output_tail(self) -> str:
        try:
            self._log.flush()
            self._log.seek(0, os.SEEK_END)
            size = self._log.tell()
            self._log.seek(max(size - 2000, 0))
            return self._log.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def close(self) -> None:
        """Stop anvil (SIGTERM, so it dumps ``state_file``; SIGKILL after 10 s). Idempotent."""
        self._stop()
        self._log.close()

    def kill(self) -> None:
        """Stop anvil at once, without letting it save its state (SIGKILL). Idempotent."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=5)
        self._log.close()

    def _stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that makes the kernel SIGTERM anvil when we die.

    Without it a Tidegate killed with SIGKILL would leave anvil running: holding the
    RPC port and still dumping its state into the data directory. The function only
    makes one ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` call through a pointer looked up
    before the fork, which is safe in a forked child of a threaded process. The
    signal comes when the *thread* that started anvil ends: start it from a thread
    that lives as long as the node (the main thread, or asyncio's executor).
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return set_parent_death_signal


def _temporary_log() -> IO[bytes]:
    import tempfile

    return tempfile.TemporaryFile()  # closed by AnvilNode.close()


def mnemonic_accounts(mnemonic: str, count: int) -> list[LocalAccount]:
    """The first ``count`` accounts of ``mnemonic`` on barge's HD path (anvil's too)."""
    seed = seed_from_mnemonic(mnemonic, "")
    return [
        Account.from_key(key_from_seed(seed, f"{BARGE_HD_PATH}/{i}")) for i in range(count)
    ]


class NodeChain:
    """What ``tidegate dev`` uses of a chain, over a node's JSON-RPC (anvil).

    The same surface as :class:`~tidegate.dev.devchain.DevChain`: accounts derived
    locally from the mnemonic (the ones anvil funds and unlocks), every transaction
    signed locally, OCEAN minted by the deployer (the token's owner).
    """

    def __init__(
        self, url: str, *, num_accounts: int = 10, mnemonic: str = BARGE_MNEMONIC
    ) -> None:
        self.url = url
        self.w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 60}))
        self.accounts = mnemonic_accounts(mnemonic, num_accounts)
        self.addresses: OceanAddresses | None = None

    @property
    def chain_id(self) -> int:
        return DEV_CHAIN_ID

    def private_key(self, index: int) -> HexStr:
        """The ``0x`` hex private key of mnemonic account ``index``."""
        return HexStr("0x" + bytes(self.accounts[index].key).hex())

    def rpc(self, method: str, *params: Any) -> Any:
        """One raw JSON-RPC call; raises ``AnvilError`` with the node's error."""
        response = self.w3.provider.make_request(method, list(params))  # type: ignore[arg-type]
        if "error" in response:
            raise AnvilError(f"{method}: {response['error']}")
        return response["result"]

    def snapshot(self) -> int:
        return int(self.rpc("evm_snapshot"), 16)

    def revert(self, snapshot_id: int) -> None:
        """``evm_revert``; ``KeyError`` for an unknown (or used) snapshot id."""
        if self.rpc("evm_revert", hex(snapshot_id)) is not True:
            raise KeyError(snapshot_id)

    def mine(self, timestamp: int | None = None) -> None:
        if timestamp is None:
            self.rpc("evm_mine")
            return
        if timestamp <= self.latest_timestamp():
            raise ValueError("a new block's timestamp must be after the latest block's")
        self.rpc("evm_mine", timestamp)

    def latest_timestamp(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def deploy_ocean_contracts(self, deployer_index: int = 0) -> OceanAddresses:
        """Deploy the Ocean contracts with :mod:`tidegate.dev.deploy`, once."""
        if self.addresses is not None:
            raise RuntimeError("the Ocean contracts are already deployed on this chain")
        self.addresses = deploy.deploy_ocean_contracts(self.w3, self.accounts[deployer_index])
        return self.addresses

    def mint_ocean(self, to: str, amount_wei: int, owner_index: int = 0) -> None:
        """Mint OCEAN to ``to`` (the deployer owns the token)."""
        if self.addresses is None:
            raise RuntimeError("deploy_ocean_contracts() first")
        deploy.mint_ocean(
            self.w3, self.accounts[owner_index], self.addresses["Ocean"], to, amount_wei
        )

"""Every command in README.md and docs/*.md is executed (#14 item 8: docs that are true).

The shell blocks (```` ```sh ````, ``bash``, ``shell``, ``console``, and untagged blocks
whose lines start with ``$ ``, a transcript) are extracted and run with bash
(``-euo pipefail``) against a dev stack this module starts (``tidegate dev`` on free
ports: chain, contracts, demo asset, Tidegate), each in a fresh directory holding
``address.json`` (the stack's) and ``asset.json`` (docs/publishing.md's example).
The placeholders a reader replaces are replaced with the stack's values
(:func:`substitutions`); a block left with an unknown ``…`` placeholder fails.

An HTML comment on the line before a block says how to run it (``<!-- docs-test: MODE
ARGS -->``):

- no comment: run it; ``consumer``: with ``TIDEGATE_CONSUMER_KEY`` and
  ``TIDEGATE_RPC_URL`` exported first (examples that say they assume so);
- ``server [TEXT]``: a long-running command: started, ``GET /health`` on its ``--port``
  must answer 200 (and TEXT be printed, when given), then it is stopped (SIGINT) and
  must exit cleanly;
- ``make``: ``make -n`` for each ``make`` line (the target exists and parses; running
  it would install the toolchain or, for ``make test``, run this suite);
- ``data-dir``: ``/var/lib/tidegate`` is a data directory with a real store; these
  blocks share one directory, in document order (a restore restores the backup);
- ``postgres``: ``TIDEGATE_DATABASE_URL`` is a fresh PostgreSQL database with the
  schema, dropped afterwards (never the shared ``test`` database itself);
- ``skip REASON``: not run (root, systemd, Docker); the reason is required.
"""

from __future__ import annotations

import asyncio
import json
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from eth_account import Account
from pydantic import SecretStr

from tests.conftest import PG_ADMIN_URL
from tidegate.dev.barge import BARGE_HD_PATH, BARGE_MNEMONIC, DEV_CHAIN_ID
from tidegate.dev.demo_origin import serve_directory
from tidegate.dev.devmode import CONSUMER, DEV_PROVIDER_KEY, PUBLISHER

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL_INFO = frozenset({"sh", "bash", "shell", "console"})
MODES = frozenset({"run", "consumer", "server", "make", "data-dir", "postgres", "skip"})
FENCE = re.compile(r"^```(?P<info>[\w-]*)[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.S | re.M)
MARKER = re.compile(r"^<!--\s*docs-test:\s*(?P<mode>[\w-]+)\s*(?P<arg>.*?)\s*-->\s*$")
BLOCK_TIMEOUT = 300.0

DATA_DIR_PLACEHOLDER = "/var/lib/tidegate"

Account.enable_unaudited_hdwallet_features()


def dev_key(index: int) -> str:
    """The private key of barge mnemonic account ``index``."""
    account = Account.from_mnemonic(BARGE_MNEMONIC, account_path=f"{BARGE_HD_PATH}/{index}")
    return "0x" + bytes(account.key).hex()


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    info: str
    body: str
    mode: str
    arg: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def transcript(self) -> bool:
        return self.info in ("", "console") and any(
            line.startswith("$ ") for line in self.body.splitlines())

    def script(self) -> str:
        """The commands: a transcript's ``$`` lines, else the whole block."""
        if self.transcript:
            return "\n".join(line[2:] for line in self.body.splitlines()
                             if line.startswith("$ "))
        return self.body


def extract_blocks(path: Path) -> list[Block]:
    """The shell blocks of one markdown file, with the marker before each, if any."""
    text = path.read_text(encoding="utf-8")
    found: list[Block] = []
    for match in FENCE.finditer(text):
        info, body = match.group("info"), match.group("body")
        if info not in SHELL_INFO and not (
                info == "" and any(line.startswith("$ ") for line in body.splitlines())):
            continue
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        marker = MARKER.match(before)
        mode, arg = (marker.group("mode"), marker.group("arg")) if marker else ("run", "")
        found.append(Block(path, text[:match.start()].count("\n") + 1, info, body, mode, arg))
    return found


BLOCKS = [block for doc in DOCS for block in extract_blocks(doc)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment() -> dict[str, str]:
    """The test's environment without any Tidegate or Provider setting of the caller."""
    dropped = ("TIDEGATE_", "PROVIDER_", "NETWORK_URL", "ADDRESS_FILE", "AQUARIUS_URL",
               "OPERATOR_SERVICE_URL", "LOG_", "IPFS_GATEWAY", "ARWEAVE_GATEWAY",
               "ALLOW_NON_PUBLIC_IP", "UNIVERSAL_PRIVATE_KEY", "AUTHORIZED_DECRYPTERS")
    env = {k: v for k, v in os.environ.items() if not k.startswith(dropped)}
    if "TIDEGATE_ANVIL" in os.environ:  # where CI installed anvil, for `tidegate dev`
        env["TIDEGATE_ANVIL"] = os.environ["TIDEGATE_ANVIL"]
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT / "src"), *filter(None, [os.environ.get("PYTHONPATH")])])
    return env


def read_lines(stream: Any, into: queue.Queue[str]) -> None:
    for line in iter(stream.readline, ""):
        into.put(line)


def stop(process: subprocess.Popen[str], wait: float = 30) -> int:
    """SIGINT to the process group we started (as Ctrl-C would), SIGKILL if it hangs."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(wait)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    return int(process.returncode)


_readers: dict[int, threading.Thread] = {}


def stop_dev_stack(process: subprocess.Popen[str]) -> None:
    """Stop ``tidegate dev``, let its output reader see the end, close the pipe."""
    stop(process)
    reader = _readers.pop(process.pid, None)
    if reader is not None:
        reader.join(10)
    if process.stdout is not None:
        process.stdout.close()


@dataclass(frozen=True)
class DevStack:
    provider_url: str
    rpc_url: str
    address_file: Path
    demo_did: str
    algorithm_did: str
    bin_dir: Path
    env: dict[str, str]
    data_dir_work: Path

    @property
    def consumer_key(self) -> str:
        return dev_key(CONSUMER)


def start_dev_stack(workdir: Path, env: dict[str, str],
                    *extra: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """``tidegate dev`` on free ports; returns the process and its printed summary.

    Stop it with :func:`stop_dev_stack`.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "tidegate", "dev", "--port", "0", "--rpc-port", "0", *extra],
        cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=read_lines, args=(process.stdout, lines), daemon=True)
    reader.start()
    _readers[process.pid] = reader
    summary: dict[str, str] = {}
    seen: list[str] = []
    deadline = time.monotonic() + 180
    while "resolve it:" not in summary:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            stop_dev_stack(process)
            pytest.fail("tidegate dev did not start:\n" + "".join(seen))
        seen.append(line)
        if process.poll() is not None and lines.empty():
            stop_dev_stack(process)
            pytest.fail("tidegate dev exited:\n" + "".join(seen))
        parts = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        if len(parts) == 2:
            summary[parts[0]] = parts[1]
    return process, summary


def wait_for_ddo(url: str, did: str, wait: float = 60) -> None:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if httpx.get(f"{url}/api/aquarius/assets/ddo/{did}", timeout=10).status_code == 200:
            return
        time.sleep(0.3)
    pytest.fail(f"{did} was not indexed")


ALGORITHM = b"""import json, os, pathlib
did = json.loads(os.environ['DIDS'])[0]
data = pathlib.Path(f'/data/inputs/{did}/0').read_bytes()
pathlib.Path('/data/outputs/result.txt').write_bytes(b'lines=%d' % data.count(b'\\n'))
print('counted')
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    """The dev stack the blocks run against, and an algorithm published on it."""
    base = tmp_path_factory.mktemp("docs-stack")
    bin_dir = base / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "tidegate"  # the tidegate of this checkout, whatever is installed
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tidegate "$@"\n')
    shim.chmod(0o755)
    env = clean_environment()
    process, summary = start_dev_stack(base, env)
    files = base / "files"
    files.mkdir()
    (files / "count.py").write_bytes(ALGORITHM)
    origin, origin_url = serve_directory(files)
    try:
        provider_url = summary["provider URL"]
        rpc_url = summary["RPC URL"].split()[0]
        description = base / "algorithm.json"
        description.write_text(json.dumps({
            "name": "docs test algorithm", "type": "algorithm", "pricing": "dispenser",
            "files": [{"type": "url", "url": origin_url + "/count.py"}],
            "algorithm": {"language": "python", "version": "1", "container": {
                "entrypoint": "python $ALGO", "image": "python", "tag": "3.11",
                "checksum": "sha256:" + "ab" * 32}}}))
        published = subprocess.run(
            [sys.executable, "-m", "tidegate", "publish", str(description), "--json",
             "--rpc", rpc_url, "--provider-url", provider_url,
             "--address-file", summary["address file"]],
            env={**env, "TIDEGATE_PUBLISHER_KEY": dev_key(PUBLISHER)},
            capture_output=True, text=True, timeout=180, check=False)
        assert published.returncode == 0, published.stderr
        algorithm_did = json.loads(published.stdout)["did"]
        wait_for_ddo(provider_url, algorithm_did)
        yield DevStack(provider_url, rpc_url, Path(summary["address file"]),
                       summary["demo DID"], algorithm_did, bin_dir, env, base / "data-dir-work")
    finally:
        origin.shutdown()
        origin.server_close()
        stop_dev_stack(process)


def substitutions(stack: DevStack, workdir: Path, *, server: bool) -> list[tuple[str, str]]:
    """(placeholder regex, value): what a reader puts in place of the docs' examples.

    In a ``server`` block the example ports are ports to listen on (free ones); elsewhere
    the example URLs are the dev stack's.
    """
    ports = [(r"--port 8030\b", f"--port {free_port()}"),
             (r"--rpc-port 8545\b", f"--rpc-port {free_port()}")] if server else []
    return [
        *ports,
        (r"0x…publisher-key…", dev_key(PUBLISHER)),
        (r"(?<=TIDEGATE_CONSUMER_KEY=)0x…", stack.consumer_key),
        (r"(?<=PROVIDER_PRIVATE_KEY=)0x…", DEV_PROVIDER_KEY),
        (r"--algorithm did:op:[0-9a-f]*…", "--algorithm " + stack.algorithm_did),
        (r"did:op:[0-9a-f]*…", stack.demo_did),
        (r"https://rpc\.example\b", stack.rpc_url),
        (r"/path/address\.json", str(workdir / "address.json")),
        (r"http://127\.0\.0\.1:8030\b", stack.provider_url),
        (r"http://127\.0\.0\.1:8545\b", stack.rpc_url),
        (re.escape(DATA_DIR_PLACEHOLDER), str(workdir / "var-lib-tidegate")),
    ]


def prepared_script(block: Block, stack: DevStack, workdir: Path) -> str:
    script = block.script()
    for pattern, value in substitutions(stack, workdir, server=block.mode == "server"):
        script = re.sub(pattern, value.replace("\\", "\\\\"), script)
    unknown = sorted(set(re.findall(r"\S*…\S*", script)))
    assert not unknown, f"{block.id}: placeholders the docs test cannot fill: {unknown}"
    return script


def publishing_example() -> str:
    """docs/publishing.md's description file (its JSON block)."""
    text = (ROOT / "docs" / "publishing.md").read_text(encoding="utf-8")
    match = next(m for m in FENCE.finditer(text) if m.group("info") == "json")
    return match.group("body")


def block_workdir(base: Path, stack: DevStack) -> Path:
    workdir = base / "work"
    (workdir / "home").mkdir(parents=True)
    shutil.copy(stack.address_file, workdir / "address.json")
    (workdir / "asset.json").write_text(publishing_example())
    return workdir


def block_env(stack: DevStack, workdir: Path, block: Block) -> dict[str, str]:
    env = {**stack.env, "HOME": str(workdir / "home"),
           "PATH": f"{stack.bin_dir}{os.pathsep}{stack.env.get('PATH', '')}"}
    if block.mode == "consumer":
        env.update(TIDEGATE_CONSUMER_KEY=stack.consumer_key, TIDEGATE_RPC_URL=stack.rpc_url)
    return env


def run_bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=BLOCK_TIMEOUT, check=False)


def run_server(block: Block, script: str, cwd: Path, env: dict[str, str]) -> None:
    """Start the block, wait for ``/health`` on its ``--port``, stop it with SIGINT."""
    ready_text = block.arg  # printed once it is really ready (a dev stack: its summary)
    port = re.search(r"--port (\d+)", script)
    assert port, f"{block.id}: a server block needs --port"
    log = cwd / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=cwd,
                                   env=env, stdout=out, stderr=subprocess.STDOUT,
                                   text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, f"{block.id} exited:\n{log.read_text()}"
            try:
                health = httpx.get(f"http://127.0.0.1:{port.group(1)}/health", timeout=5)
                if health.status_code == 200 and ready_text in log.read_text():
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"{block.id} never answered:\n{log.read_text()}"
            time.sleep(0.3)
    finally:
        code = stop(process)
    assert code in (0, 130, -signal.SIGINT), f"{block.id} exited {code}:\n{log.read_text()}"


def prepare_data_dir(directory: Path) -> None:
    """A data directory as `tidegate serve` leaves it: a migrated store, a compute dir."""
    from tidegate.stores.factory import build_store

    async def create() -> None:
        store = build_store(None, directory / "tidegate.db")
        await store.open()
        await store.close()

    directory.mkdir(parents=True)
    (directory / "compute").mkdir()
    (directory / "compute" / "job.log").write_text("a job's log\n")
    asyncio.run(create())


def fresh_database() -> tuple[str, str]:
    """A new database (name, URL) with Tidegate's schema; drop it with drop_database."""
    import asyncpg

    from tidegate.stores.factory import build_store

    name = "tg_docs_" + secrets.token_hex(4)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name

    async def create() -> None:
        try:
            admin = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        except (OSError, asyncpg.PostgresError) as exc:
            pytest.skip(f"PostgreSQL not reachable on 127.0.0.1:5432: {exc}")
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        store = build_store(SecretStr(url), Path("unused"))
        await store.open()
        await store.close()

    asyncio.run(create())
    return name, url


def drop_database(name: str) -> None:
    import asyncpg

    async def drop() -> None:
        admin = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()

    asyncio.run(drop())


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.mode != "skip"],
                         ids=lambda b: b.id)
def test_documented_commands_run(block: Block, stack: DevStack, tmp_path: Path) -> None:
    workdir = block_workdir(tmp_path, stack)
    env = block_env(stack, workdir, block)
    if block.mode == "make":
        for line in block.script().splitlines():
            command = line.split("#", 1)[0].strip()
            if not command:
                continue
            assert command.startswith("make "), f"{block.id}: not a make line: {command}"
            done = run_bash(command.replace("make ", "make -n ", 1), ROOT, env)
            assert done.returncode == 0, f"{block.id}: {command}\n{done.stdout}{done.stderr}"
        return
    script = prepared_script(block, stack, workdir)
    database = None
    if block.mode == "data-dir":
        # One data directory (and its backup/) for the data-dir blocks, in document
        # order: a restore block restores what the backup block saved.
        shared = stack.data_dir_work
        if not (shared / "var-lib-tidegate").exists():
            prepare_data_dir(shared / "var-lib-tidegate")
        workdir = shared
        script = prepared_script(block, stack, workdir)
    if block.mode == "postgres":
        database, env["TIDEGATE_DATABASE_URL"] = fresh_database()
    try:
        if block.mode == "server":
            run_server(block, script, workdir, env)
            return
        done = run_bash(script, workdir, env)
    finally:
        if database:
            drop_database(database)
    assert done.returncode == 0, (f"{block.id} failed ({done.returncode}):\n{script}\n"
                                  f"--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}")
    assert "Traceback" not in done.stdout + done.stderr, f"{block.id}:\n{done.stderr}"


def test_every_block_has_a_known_mode_and_skips_say_why() -> None:
    assert BLOCKS, "no shell blocks found"
    for block in BLOCKS:
        assert block.mode in MODES, f"{block.id}: unknown docs-test mode {block.mode!r}"
        if block.mode == "skip":
            assert len(block.arg.split()) >= 3, f"{block.id}: a skip needs a reason"
    skipped = [b for b in BLOCKS if b.mode == "skip"]
    assert len(skipped) <= len(BLOCKS) // 3, f"skip sparingly: {[b.id for b in skipped]}"


def test_blocks_are_found_in_every_form() -> None:
    """The extraction itself: tagged blocks, transcripts, markers."""
    sample = ROOT / "docs" / "cli.md"
    forms = {(b.info, b.transcript) for b in extract_blocks(sample)}
    assert ("", True) in forms and ("sh", False) in forms
    assert any(b.mode == "server" for b in BLOCKS)
    assert any(b.mode == "make" for b in BLOCKS)


def test_the_default_compute_environment_is_as_documented(stack: DevStack) -> None:
    """docs/compute.md's table of the free local environment, against the dev stack's
    `computeEnvironments` (the dev stack sets no compute configuration)."""
    text = (ROOT / "docs" / "compute.md").read_text(encoding="utf-8")
    table = text.split("every configured chain gets one **free local\nenvironment**:", 1)[1]
    rows = [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in table.strip().split("\n\n", 1)[0].splitlines()[2:]]
    assert len(rows) >= 10
    root = httpx.get(stack.provider_url + "/", timeout=10).json()
    environments = httpx.get(stack.provider_url + "/api/services/computeEnvironments",
                             timeout=10).json()
    chain_id = str(DEV_CHAIN_ID)
    env = environments[chain_id][0]
    ocean = json.loads(stack.address_file.read_text())["development"]["Ocean"]
    for field, documented in rows:
        name = field.strip("`")
        assert name in env, f"compute.md documents {name}, which the answer does not have"
        first = documented.split()[0].strip("`")
        if name == "feeToken":  # PROVIDER_FEE_TOKEN is unset: the chain's OCEAN
            assert env[name] == ocean
        elif name == "consumerAddress":
            assert env[name] == root["providerAddresses"][chain_id]
        elif name in ("id", "desc"):
            assert env[name] == documented.strip("`").split("` (")[0].split("`")[0], name
        else:
            assert float(env[name]) == float(first), name

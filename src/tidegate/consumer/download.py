"""Signed downloads: streamed to disk, resumable, with a progress bar and a checksum.

Each request is signed like ocean.py's: EIP-191 over ``keccak(did + nonce)`` with
``nonce`` = the provider's ``GET /nonce`` + 1. The body goes to ``DIR/<name>.part`` in
chunks (bounded memory); a ``.part`` left by an interrupted run is resumed with a
``Range`` request. When the provider's ``fileinfo`` gives a sha256, the finished file
is checked against it before it is renamed to ``DIR/<name>``.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from tidegate.auth.signatures import download_message
from tidegate.consumer.chain import Wallet
from tidegate.consumer.errors import ConsumerError, ProviderRefusedError
from tidegate.consumer.http import Provider, TransferInterruptedError
from tidegate.consumer.ordering import ServiceRef

CHUNK = 256 * 1024
"""Read size when hashing a finished file."""
RETRIES = 3
"""Automatic resumes after a broken connection, per file."""
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")
_DISPOSITION_NAME = re.compile(r"filename\*?=(?:UTF-8'')?\"?([^\";]+)\"?", re.IGNORECASE)


@dataclass
class FileTarget:
    """One file of the service: where it goes and what it should be."""

    index: int
    name: str
    size: int | None = None
    sha256: str | None = None
    named_by_provider: bool = False


@dataclass
class Saved:
    path: Path
    size: int
    sha256: str
    verified: bool
    resumed_from: int


def safe_name(name: object) -> str | None:
    """A plain file name (no directory part, no leading dot), else None."""
    if not isinstance(name, str):
        return None
    text = name.strip()
    if (not text or len(text) > 200 or text.startswith(".") or "/" in text or "\\" in text
            or any(ord(c) < 32 for c in text)):
        return None
    return text


def disposition_name(header: str | None) -> str | None:
    match = _DISPOSITION_NAME.search(header or "")
    return safe_name(match.group(1)) if match else None


def _int_or_none(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def plan_files(provider: Provider, ref: ServiceRef, file_index: int | None) -> list[FileTarget]:
    """The files to fetch, with names, sizes and sha256 from ``fileinfo`` when it gives them."""
    try:
        infos: Any = provider.json("fileinfo", "to describe the files", json={
            "did": ref.did, "serviceId": ref.id, "checksum": True})
    except ProviderRefusedError:
        infos = None  # a provider that cannot describe its files may still serve them
    if not isinstance(infos, list) or not infos:
        return [FileTarget(file_index or 0, f"file{file_index or 0}")]
    targets = []
    for position, info in enumerate(infos):
        if not isinstance(info, dict):
            continue
        index = _int_or_none(info.get("index"))
        index = position if index is None else index
        if file_index is not None and index != file_index:
            continue
        name = safe_name(info.get("filename"))
        checksum = info.get("checksum")
        sha = (checksum.lower().removeprefix("sha256:")
               if isinstance(checksum, str) and info.get("checksumType", "sha256") == "sha256"
               and re.fullmatch(r"(sha256:)?[0-9a-fA-F]{64}", checksum) else None)
        targets.append(FileTarget(index, name or f"file{index}", _int_or_none(
            info.get("contentLength")) or None, sha, named_by_provider=name is not None))
    if not targets:
        raise ConsumerError(f"service {ref.id} of {ref.did} has {len(infos)} file"
                            f"{'s' if len(infos) != 1 else ''}: there is no file index "
                            f"{file_index}")
    return targets


def progress_bar(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def save_stream(response: Any, path: Path, progress: Progress, label: str) -> int:
    """Write a streamed body to ``path`` (through ``path.part``); returns its size."""
    part = path.with_name(path.name + ".part")
    total = _int_or_none(response.headers.get("content-length"))
    task = progress.add_task(label, total=total)
    size = 0
    try:
        with part.open("wb") as handle:
            for chunk in response.iter_bytes():
                handle.write(chunk)
                size += len(chunk)
                progress.advance(task, len(chunk))
        os.replace(part, path)
    except OSError as exc:
        raise ConsumerError(f"cannot write {path}: {exc.strerror}") from None
    progress.update(task, total=size, completed=size)
    return size


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _signed_get(provider: Provider, wallet: Wallet, params: dict[str, str],
                did: str, offset: int) -> Iterator[Any]:
    nonce = str(provider.nonce(wallet.address) + 1)
    signed = {**params, "nonce": nonce, "signature": wallet.sign(download_message(did) + nonce)}
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with provider.stream("download", "the download", signed, headers,
                         ok=(200, 206, 416)) as response:
        yield response


def download_file(provider: Provider, wallet: Wallet, ref: ServiceRef, order_tx: str,
                  target: FileTarget, out_dir: Path, progress: Progress) -> Saved:
    """Fetch one file into ``out_dir``, resuming ``<name>.part`` if it is there."""
    part = out_dir / (target.name + ".part")
    final_name = target.name
    params = {"documentId": ref.did, "serviceId": ref.id, "consumerAddress": wallet.address,
              "transferTxId": order_tx, "fileIndex": str(target.index)}
    resumed_from = part.stat().st_size if part.exists() else 0
    task: TaskID | None = None
    total = target.size
    for attempt in range(RETRIES + 1):
        have = part.stat().st_size if part.exists() else 0
        if total is not None and have > total:
            part.unlink()
            have = resumed_from = 0
        if total is not None and have == total and have > 0:
            break  # a previous run fetched everything but stopped before renaming
        try:
            with _signed_get(provider, wallet, params, ref.did, have) as response:
                if response.status_code == 416:
                    unsatisfied = _UNSATISFIED_RANGE.search(
                        response.headers.get("content-range", ""))
                    if unsatisfied and int(unsatisfied.group(1)) == have:
                        total = have
                        break  # the .part was already complete
                    part.unlink(missing_ok=True)  # the file changed: start over
                    resumed_from = 0
                    continue
                mode = "wb"
                if response.status_code == 206:
                    match = _CONTENT_RANGE.search(response.headers.get("content-range", ""))
                    if not match or int(match.group(1)) != have:
                        raise ConsumerError("the provider answered the resume request with "
                                            "another range; delete the .part file to restart")
                    mode = "ab"
                    if match.group(3) != "*":
                        total = int(match.group(3))
                else:
                    have = resumed_from = 0
                    length = _int_or_none(response.headers.get("content-length"))
                    total = length if length is not None else total
                if not target.named_by_provider and have == 0:
                    final_name = disposition_name(
                        response.headers.get("content-disposition")) or final_name
                if task is None:
                    task = progress.add_task(final_name, total=total, completed=have)
                else:
                    progress.update(task, total=total, completed=have)
                with part.open(mode) as handle:
                    # Chunks as they arrive (at most a socket read each): what came before
                    # a broken connection is on disk, and the resume starts after it.
                    for chunk in response.iter_bytes():
                        handle.write(chunk)
                        progress.advance(task, len(chunk))
        except TransferInterruptedError as exc:
            if attempt == RETRIES:
                got = part.stat().st_size if part.exists() else 0
                raise ConsumerError(f"{exc}; {got} bytes are in {part}: run the same command "
                                    f"again to resume") from None
            continue
        have = part.stat().st_size
        if total is None or have == total:
            break
        if attempt == RETRIES:
            raise ConsumerError(f"the provider sent {have} of {total} bytes; run the same "
                                f"command again to resume from {part}")
    size = part.stat().st_size
    digest = sha256_of(part)
    if target.sha256 and digest != target.sha256:
        part.unlink()
        raise ConsumerError(f"{final_name}: the sha256 of the downloaded bytes ({digest}) is "
                            f"not the provider's ({target.sha256}); the file was removed")
    if task is None:
        task = progress.add_task(final_name, total=size, completed=size)
    progress.update(task, total=size, completed=size)
    path = out_dir / final_name
    os.replace(part, path)
    return Saved(path, size, digest, target.sha256 is not None, resumed_from)


def download_all(provider: Provider, wallet: Wallet, ref: ServiceRef, order_tx: str,
                 targets: list[FileTarget], out_dir: Path, console: Console) -> list[Saved]:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConsumerError(f"cannot create {out_dir}: {exc.strerror}") from None
    saved = []
    with progress_bar(console) as progress:
        for target in targets:
            try:
                saved.append(download_file(provider, wallet, ref, order_tx, target, out_dir,
                                           progress))
            except OSError as exc:
                raise ConsumerError(f"cannot write {out_dir / target.name}: "
                                    f"{exc.strerror}") from None
    return saved

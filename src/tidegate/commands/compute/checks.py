"""Compute admission rules shared by initializeCompute and compute start.

Every refusal is a 400 with a stable code (the reference's resource/message pairs
become ``code``s: ``no_raw_algo_allowed``, ``not_trusted_algo``, ...).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tidegate.assets.ddo import Asset, Service
from tidegate.errors import BadRequestError
from tidegate.files.info import file_info
from tidegate.files.objects import StorageContext, parse_file_object
from tidegate.files.service_files import decrypt_service_files


class ComputeRefusedError(BadRequestError):
    code = "compute_refused"


def refuse(code: str, message: str) -> ComputeRefusedError:
    """A 400 whose ``error`` text starts with the reference's code.

    ocean.py surfaces only ``error``, and callers (its own tests among them) look for
    the reference's code (``no_raw_algo_allowed``, ``not_trusted_algo``, ...) in it; the
    same code is also the stable ``code`` field.
    """
    return ComputeRefusedError(f"{code}: {message}", code=code)


@dataclass(frozen=True)
class AlgorithmRef:
    """The algorithm of a request: a published asset, or raw ``meta``."""

    asset: Asset | None
    service: Service | None
    meta: Mapping[str, Any] | None

    @property
    def container(self) -> Mapping[str, Any]:
        if self.asset is not None:
            algorithm = self.asset.metadata.get("algorithm") or {}
            container = algorithm.get("container") if isinstance(algorithm, Mapping) else None
        else:
            container = (self.meta or {}).get("container")
        if not isinstance(container, Mapping):
            raise refuse("missing_container", "The algorithm has no container.")
        return container


def check_container_fields(container: Mapping[str, Any]) -> None:
    """``validateContainer`` rules: entrypoint, image and a ``sha256:`` checksum."""
    if not all(container.get(k) for k in ("entrypoint", "image", "checksum")):
        raise refuse("missing_entrypoint_image_checksum",
                     "The container needs entrypoint, image and checksum.")
    if not str(container["checksum"]).startswith("sha256:"):
        raise refuse("checksum_prefix", "The container checksum must start with sha256:.")


def container_checksum(container: Mapping[str, Any]) -> str:
    """sha256 of entrypoint + checksum (what publishers pin as containerSectionChecksum)."""
    text = str(container.get("entrypoint", "")) + str(container.get("checksum", ""))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


async def files_checksum(algorithm: AlgorithmRef, provider_key: str,
                         storage: StorageContext) -> str:
    """Concatenated sha256 of the algorithm's files (for filesChecksum pins)."""
    assert algorithm.asset is not None and algorithm.service is not None
    files = decrypt_service_files(algorithm.asset, algorithm.service, provider_key)
    digests = []
    for index, raw in enumerate(files):
        info = await file_info(parse_file_object(raw), storage, index, True)
        if not info.get("valid") or not info.get("checksum"):
            raise refuse("file_unavailable", "The algorithm's files cannot be checksummed.")
        digests.append(str(info["checksum"]))
    return "".join(digests).lower()


async def check_algorithm_allowed(
    service: Service, algorithm: AlgorithmRef, provider_key: str, storage: StorageContext
) -> None:
    """Apply the dataset's compute rules to the algorithm."""
    rules = service.compute
    if algorithm.asset is None:
        if not rules.get("allowRawAlgorithm"):
            raise refuse("no_raw_algo_allowed", "This dataset does not allow raw algorithms.")
        return
    publishers = rules.get("publisherTrustedAlgorithmPublishers") or []
    trusted = rules.get("publisherTrustedAlgorithms") or []
    if publishers and algorithm.asset.nft_owner not in publishers:
        raise refuse("not_trusted_algo_publisher",
                     "The algorithm's publisher is not trusted by this dataset.")
    if not trusted:
        return
    if any(not isinstance(t, Mapping) or "did" not in t for t in trusted):
        # The reference's code for a trusted-algorithm list it cannot read.
        raise refuse("no_publisherTrustedAlgorithms",
                     "An entry of publisherTrustedAlgorithms has no did.")
    entry = next((t for t in trusted if t.get("did") == algorithm.asset.did), None)
    if entry is None:
        raise refuse("not_trusted_algo", "The algorithm is not trusted by this dataset.")
    if entry.get("containerSectionChecksum") and (
            str(entry["containerSectionChecksum"]).lower()
            != container_checksum(algorithm.container)):
        raise refuse("algorithm_container_checksum_mismatch",
                     "The algorithm's container differs from the trusted one.")
    if entry.get("filesChecksum"):
        actual = await files_checksum(algorithm, provider_key, storage)
        if str(entry["filesChecksum"]).lower() != actual:
            raise refuse("algorithm_file_checksum_mismatch",
                         "The algorithm's files differ from the trusted ones.")


def check_dataset_service(index: int, service: Service) -> None:
    if service.type not in ("access", "compute"):
        raise refuse("service_not_access_compute", "The service is neither access nor compute.")
    if index == 0 and service.type != "compute":
        raise refuse("main_service_compute", "The first dataset must use a compute service.")

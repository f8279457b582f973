"""Aquarius' way of calling /api/services/decrypt (driver: aquarius/decrypt_driver.py).

Assets: the dev demo (published by Tidegate's dev mode), ocean.py's plain asset (LZMA,
flags 3) and ocean.js's asset (JSON, flags 2) when those clients ran.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import DriverRun

pytestmark = pytest.mark.e2e


def _assets(run: DriverRun) -> list[str]:
    if "decrypt" not in run.services:
        pytest.skip("Tidegate does not serve decrypt yet (GET / serviceEndpoints)")
    labels = sorted({name.split(".")[0] for name in run.report["steps"]})
    assert labels, "the decrypt driver checked no asset"
    return labels


def _check(run: DriverRun, name: str) -> dict[str, Any]:
    result = run.report["steps"].get(name)
    assert result is not None, f"no step {name}"
    assert result["ok"], f"{name}: {result}"
    return result


def test_every_asset_has_its_metadata_event_on_chain(aquarius_decrypt: DriverRun) -> None:
    for label in _assets(aquarius_decrypt):
        _check(aquarius_decrypt, f"{label}.event")
    flags = {aquarius_decrypt.report["steps"][f"{label}.event"]["flags"]
             for label in _assets(aquarius_decrypt)}
    assert "03" in flags  # at least one LZMA-compressed and encrypted document


def test_compat_transaction_id_nanosecond_nonce_v01_answers_201_exact_bytes(
    aquarius_decrypt: DriverRun,
) -> None:
    """Aquarius: nonce = time_ns() (above 2**53), eth_keys signature with v = 0/1,
    success only on 201 with sha256(body) == the on-chain metaDataHash."""
    for label in _assets(aquarius_decrypt):
        result = _check(aquarius_decrypt, f"{label}.transactionId")
        assert result["status"] == 201 and result["sha256_matches"]
        assert result["content_type"].startswith("text/plain")


def test_encrypted_document_variant_answers_201(aquarius_decrypt: DriverRun) -> None:
    """Ocean Node's indexer sends the document, flags and hash instead of the tx id."""
    for label in _assets(aquarius_decrypt):
        assert _check(aquarius_decrypt, f"{label}.encryptedDocument")["status"] == 201


def test_replayed_nonce_is_refused(aquarius_decrypt: DriverRun) -> None:
    for label in _assets(aquarius_decrypt):
        assert _check(aquarius_decrypt, f"{label}.replayed_nonce")["status"] == 401


def test_signature_by_another_key_is_refused(aquarius_decrypt: DriverRun) -> None:
    for label in _assets(aquarius_decrypt):
        assert _check(aquarius_decrypt, f"{label}.wrong_signer")["status"] == 401

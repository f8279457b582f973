"""Call Tidegate's ``/api/services/decrypt`` the way Aquarius (and Ocean Node's indexer) do.

Run with ``.venv-oceanpy/bin/python`` (web3 6, eth_keys, requests: Aquarius' own
stack); this script does not import tidegate. For each DID it finds the
``MetadataCreated`` event on chain by itself (the DDO's ``event.tx`` only tells it
which transaction to read), then, like Aquarius' decryptor:

- body ``{transactionId, chainId, decrypterAddress, dataNftAddress, signature, nonce}``
  with ``nonce = str(time.time_ns())`` (a ~19-digit integer) and
  ``signature`` = eth_keys over the EIP-191 prefixed keccak of
  ``txid + decrypterAddress + chainId + nonce``, ``v`` = 0/1, timeout 4 s;
- success is HTTP 201 and ``sha256(body) == metaDataHash`` from the event.

It also tries Ocean Node's variant (``encryptedDocument + flags + documentHash``
instead of ``transactionId``), a replayed nonce and a signature by another key.

Environment: E2E_PROVIDER_URL, E2E_RPC_URL, E2E_DECRYPTER_KEY, E2E_OTHER_KEY,
E2E_DIDS (comma-separated). Writes a JSON report to argv[1].
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import requests
from eth_keys import keys
from eth_utils import keccak
from web3 import Web3

PREFIX = b"\x19Ethereum Signed Message:\n32"
TIMEOUT = 4  # Aquarius' timeout for the decrypt call


def sign(message: str, key: keys.PrivateKey) -> str:
    """Aquarius' recipe: keccak(utf8(message)), EIP-191 prefix over the 32 bytes, v = 0/1."""
    digest = keccak(message.encode("utf-8"))
    signature = key.sign_msg_hash(keccak(PREFIX + digest))
    return "0x" + signature.to_bytes().hex()


def metadata_created(w3: Web3, abi: list[dict[str, Any]], tx: str) -> dict[str, Any]:
    receipt = w3.eth.get_transaction_receipt(tx)
    contract = w3.eth.contract(abi=abi)
    from web3.logs import DISCARD

    events = contract.events.MetadataCreated().process_receipt(receipt, errors=DISCARD)
    assert len(events) == 1, f"{len(events)} MetadataCreated events in {tx}"
    event = events[0]
    return {
        "nft": event["address"],
        "flags": bytes(event["args"]["flags"]),
        "data": bytes(event["args"]["data"]),
        "hash": bytes(event["args"]["metaDataHash"]).hex(),
    }


def main(out_path: str) -> int:
    env = os.environ
    provider = env["E2E_PROVIDER_URL"].rstrip("/")
    w3 = Web3(Web3.HTTPProvider(env["E2E_RPC_URL"]))
    chain_id = str(w3.eth.chain_id)
    decrypter = keys.PrivateKey(Web3.to_bytes(hexstr=env["E2E_DECRYPTER_KEY"]))
    other = keys.PrivateKey(Web3.to_bytes(hexstr=env["E2E_OTHER_KEY"]))
    decrypter_address = decrypter.public_key.to_checksum_address()
    import artifacts  # ocean-contracts, installed with ocean-lib

    abi_path = Path(artifacts.__file__).parent / "ERC721Template.json"
    abi = json.loads(abi_path.read_text())["abi"]
    url = provider + "/api/services/decrypt"
    steps: dict[str, dict[str, Any]] = {}

    def post(body: dict[str, Any]) -> requests.Response:
        return requests.post(url, json=body, timeout=TIMEOUT)

    for n, did in enumerate(d for d in env["E2E_DIDS"].split(",") if d):
        label = f"asset{n}"
        try:
            ddo = requests.get(f"{provider}/api/aquarius/assets/ddo/{did}", timeout=TIMEOUT).json()
            tx = ddo["event"]["tx"]
            event = metadata_created(w3, abi, tx)
        except Exception as exc:
            steps[f"{label}.event"] = {"ok": False, "did": did, "error": repr(exc),
                                       "traceback": traceback.format_exc()[-3000:]}
            continue
        steps[f"{label}.event"] = {"ok": True, "did": did, "tx": tx,
                                   "flags": event["flags"].hex()}

        def check(name: str, body: dict[str, Any], expect_ok: bool = True) -> None:
            started = time.monotonic()
            try:
                response = post(body)
            except Exception as exc:
                steps[name] = {"ok": False, "error": repr(exc)}
                return
            result: dict[str, Any] = {
                "status": response.status_code,
                "seconds": round(time.monotonic() - started, 3),
                "content_type": response.headers.get("content-type"),
            }
            if expect_ok:
                digest = hashlib.sha256(response.content).hexdigest()
                result["sha256_matches"] = digest == event["hash"]
                try:
                    result["ddo_id"] = json.loads(response.content)["id"]
                except Exception:
                    result["ddo_id"] = None
                result["ok"] = (response.status_code == 201 and result["sha256_matches"]
                                and result["ddo_id"] == did)
            else:
                result["ok"] = response.status_code != 201
                result["body"] = response.text[:300]
            if not result["ok"]:
                result["body"] = response.text[:300]
            steps[name] = result

        def body_for(nonce: str, key: keys.PrivateKey = decrypter) -> dict[str, Any]:
            return {
                "transactionId": tx,
                "chainId": chain_id,
                "decrypterAddress": decrypter_address,
                "dataNftAddress": event["nft"],
                "signature": sign(tx + decrypter_address + chain_id + nonce, key),
                "nonce": nonce,
            }

        nonce = str(time.time_ns())
        check(f"{label}.transactionId", body_for(nonce))
        check(f"{label}.replayed_nonce", body_for(nonce), expect_ok=False)
        check(f"{label}.wrong_signer", body_for(str(time.time_ns()), other), expect_ok=False)

        # Ocean Node's indexer: the document itself instead of the transaction id; the
        # message starts with the data NFT address (what the reference Provider signs).
        nonce = str(time.time_ns())
        check(f"{label}.encryptedDocument", {
            "encryptedDocument": "0x" + event["data"].hex(),
            "flags": int.from_bytes(event["flags"], "big"),
            "documentHash": "0x" + event["hash"],
            "chainId": chain_id,
            "decrypterAddress": decrypter_address,
            "dataNftAddress": event["nft"],
            "signature": sign(event["nft"] + decrypter_address + chain_id + nonce, decrypter),
            "nonce": nonce,
        })

    Path(out_path).write_text(json.dumps({"decrypter": decrypter_address, "steps": steps},
                                         indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

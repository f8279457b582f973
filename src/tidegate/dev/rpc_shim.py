"""Serve a :class:`DevChain` over HTTP JSON-RPC so outside clients can use it.

Wallets, ocean.py (web3 6), ocean.js/ethers and web3 8's ``AsyncHTTPProvider`` speak
standard JSON-RPC; eth-tester answers with Python values. This module re-encodes them
(ints -> ``0x`` quantities, ``logsBloom`` -> 256-byte hex, bytes -> hex, snake_case
keys of nested transactions -> camelCase) and maps failures to JSON-RPC errors, with
reverts in geth's shape (``code`` 3, ``execution reverted: <reason>``, ``data``) so
that web3 clients raise ``ContractLogicError``.

Like anvil, it signs for the chain's unlocked accounts: ``eth_sign``, ``personal_sign``
and ``eth_signTypedData_v4`` (what ethers' ``JsonRpcSigner`` and so ocean.js send), and
it offers ``evm_snapshot``/``evm_revert``/``evm_mine``/``evm_increaseTime``.

Stdlib ``ThreadingHTTPServer`` with keep-alive; Nagle is disabled, because otherwise
every keep-alive request waits about 40 ms for a delayed ACK (measured).
"""

from __future__ import annotations

import ast
import json
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from eth_abi import abi
from eth_utils import keccak, to_bytes

from tidegate.dev.devchain import DevChain

_MAX_BODY = 32 * 1024 * 1024
_STATE_METHODS = {
    "eth_call": 1,
    "eth_estimateGas": 1,
    "eth_getBalance": 1,
    "eth_getCode": 1,
    "eth_getTransactionCount": 1,
    "eth_getStorageAt": 2,
}
_TX_KEYS = {
    "access_list": "accessList",
    "blob_versioned_hashes": "blobVersionedHashes",
    "block_hash": "blockHash",
    "block_number": "blockNumber",
    "chain_id": "chainId",
    "gas_price": "gasPrice",
    "max_fee_per_blob_gas": "maxFeePerBlobGas",
    "max_fee_per_gas": "maxFeePerGas",
    "max_priority_fee_per_gas": "maxPriorityFeePerGas",
    "transaction_index": "transactionIndex",
    "y_parity": "yParity",
    "data": "input",
}


class RpcError(Exception):
    """A JSON-RPC error to send back as ``{"code", "message", "data"?}``."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def as_dict(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            error["data"] = self.data
        return error


def to_wire(value: Any, key: str | None = None) -> Any:
    """Encode a tester value for JSON-RPC: ints as quantities, bytes as hex, recursively."""
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        if key == "logsBloom":
            return "0x" + value.to_bytes(256, "big").hex()
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {k: to_wire(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(item) for item in value]
    raise TypeError(f"cannot encode {type(value).__name__} for JSON-RPC")


def _logs_bloom(logs: Sequence[Mapping[str, Any]]) -> int:
    """The 2048-bit bloom of a receipt's logs (yellow paper §4.3.1)."""
    bloom = 0
    for log in logs:
        for item in [log["address"], *log["topics"]]:
            digest = keccak(to_bytes(hexstr=item))
            for i in (0, 2, 4):
                bloom |= 1 << (((digest[i] << 8) | digest[i + 1]) & 2047)
    return bloom


def _fix_transaction(tx: Any) -> Any:
    if not isinstance(tx, Mapping):
        return tx  # a bare hash in a block without full transactions
    fixed = {_TX_KEYS.get(k, k): v for k, v in tx.items()}
    if fixed.get("to") == "":
        fixed["to"] = None  # contract creation
    return fixed


def _fix_log(log: Mapping[str, Any]) -> dict[str, Any]:
    fixed = {k: v for k, v in log.items() if k != "type"}
    fixed.setdefault("removed", False)
    return fixed


def _fix_result(method: str, result: Any) -> Any:
    """Bring eth-tester's shapes to the JSON-RPC spec where clients notice."""
    if not isinstance(result, Mapping | list):
        return result
    if method in ("eth_getBlockByNumber", "eth_getBlockByHash") and isinstance(result, Mapping):
        return {**result, "transactions": [_fix_transaction(t) for t in result["transactions"]]}
    if method == "eth_getTransactionByHash":
        return _fix_transaction(result)
    if method == "eth_getTransactionReceipt" and isinstance(result, Mapping):
        receipt = {k: v for k, v in result.items() if k != "state_root"}
        if receipt.get("to") == "":
            receipt["to"] = None
        logs = [_fix_log(log) for log in receipt.get("logs", [])]
        receipt["logs"] = logs
        receipt["logsBloom"] = _logs_bloom(logs)
        return receipt
    if method in ("eth_getLogs", "eth_getFilterLogs", "eth_getFilterChanges") and isinstance(
        result, list
    ):
        return [_fix_log(log) if isinstance(log, Mapping) else log for log in result]
    return result


def _revert_error(exc: Exception) -> RpcError:
    """Turn eth-tester's ``TransactionFailed("execution reverted: ...")`` into geth's shape."""
    text = str(exc.args[0]) if exc.args else ""
    reason = text.removeprefix("execution reverted").removeprefix(": ")
    if reason[:2] in ("b'", 'b"'):
        # Not an Error(string): eth-tester gives the raw revert bytes as their repr.
        try:
            raw = ast.literal_eval(reason)
        except (ValueError, SyntaxError):
            raw = None
        if isinstance(raw, bytes):
            return RpcError(3, "execution reverted", "0x" + raw.hex())
    if not reason:
        return RpcError(3, "execution reverted", "0x")
    data = "0x08c379a0" + abi.encode(["string"], [reason]).hex()
    return RpcError(3, f"execution reverted: {reason}", data)


class RpcDispatcher:
    """Decode JSON-RPC bodies, run them against a chain, encode the answers."""

    def __init__(self, chain: DevChain) -> None:
        self.chain = chain
        self._local: dict[str, Callable[[list[Any]], Any]] = {
            "evm_snapshot": self._snapshot,
            "evm_revert": self._revert,
            "evm_mine": self._mine,
            "evm_increaseTime": self._increase_time,
            "eth_feeHistory": self._fee_history,
            "eth_sign": self._eth_sign,
            "personal_sign": self._personal_sign,
            "eth_signTypedData": self._sign_typed_data,
            "eth_signTypedData_v4": self._sign_typed_data,
        }

    def handle_body(self, body: bytes) -> bytes | None:
        """Answer a request body (single or batch); ``None`` when nothing is owed."""
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return _dump(_error_response(None, RpcError(-32700, "parse error")))
        if isinstance(payload, list):
            if not payload:
                return _dump(_error_response(None, RpcError(-32600, "empty batch")))
            answers = [a for a in (self.handle_one(item) for item in payload) if a is not None]
            return _dump(answers) if answers else None
        answer = self.handle_one(payload)
        return None if answer is None else _dump(answer)

    def handle_one(self, request: Any) -> dict[str, Any] | None:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return _error_response(None, RpcError(-32600, "invalid request"))
        request_id = request.get("id")
        params = request.get("params") or []
        try:
            if not isinstance(params, list):
                raise RpcError(-32602, "params must be an array")
            result = self.call(request["method"], params)
        except RpcError as exc:
            answer = _error_response(request_id, exc)
        else:
            answer = {"jsonrpc": "2.0", "id": request_id, "result": result}
        # A request without "id" is a notification: it gets no answer.
        return answer if "id" in request else None

    def call(self, method: str, params: list[Any]) -> Any:
        """Run one method; return its wire-encoded result or raise ``RpcError``."""
        from eth_tester.exceptions import TransactionFailed
        from eth_tester.exceptions import ValidationError as TesterValidationError
        from eth_utils.exceptions import ValidationError
        from web3.exceptions import ContractLogicError

        try:
            if method in self._local:
                return self._local[method](params)
            response = self.chain.request(method, _normalise_params(method, params))
        except RpcError:
            raise
        except TransactionFailed as exc:
            raise _revert_error(exc) from exc
        except ContractLogicError as exc:  # panics and CCIP lookups, raised by web3
            data = exc.data if isinstance(exc.data, str) else None
            raise RpcError(3, str(exc.message or "execution reverted"), data) from exc
        except (ValidationError, TesterValidationError) as exc:
            raise RpcError(-32000, str(exc)) from exc
        except (TypeError, ValueError, KeyError, IndexError) as exc:
            raise RpcError(-32602, f"invalid params: {exc}") from exc
        except Exception as exc:  # a dev node reports, it does not die
            raise RpcError(-32603, f"internal error: {type(exc).__name__}: {exc}") from exc
        if "error" in response:
            error = response["error"]
            if isinstance(error, Mapping):
                code = error.get("code", -32603)
                raise RpcError(code if isinstance(code, int) else -32603, str(error.get("message")))
            raise RpcError(-32603, str(error))
        return to_wire(_fix_result(method, response.get("result")))

    def _snapshot(self, params: list[Any]) -> str:
        return hex(self.chain.snapshot())

    def _revert(self, params: list[Any]) -> bool:
        snapshot_id = _quantity(params, 0)
        try:
            self.chain.revert(snapshot_id)
        except KeyError:
            return False
        return True

    def _mine(self, params: list[Any]) -> str:
        # Hardhat and ganache accept an optional timestamp for the new block.
        timestamp = _quantity(params, 0) if params and params[0] is not None else None
        self.chain.mine(timestamp)
        return "0x0"

    def _increase_time(self, params: list[Any]) -> int:
        # As on anvil and ganache: the offset applies from the next block on, and the
        # answer is the total offset in seconds, as a JSON number.
        seconds = _quantity(params, 0)
        if seconds < 0:
            raise RpcError(-32602, "evm_increaseTime needs a non-negative number")
        return self.chain.increase_time(seconds)

    def _eth_sign(self, params: list[Any]) -> str:
        # eth_sign(address, data): EIP-191 "\x19Ethereum Signed Message:\n" + len + data.
        return self._sign(_param(params, 0), _param(params, 1))

    def _personal_sign(self, params: list[Any]) -> str:
        # personal_sign(data, address); some wallets' clients send the two swapped.
        data, address = _param(params, 0), _param(params, 1)
        if _is_address(data) and not _is_address(address):
            data, address = address, data
        return self._sign(address, data)

    def _sign(self, address: Any, data: Any) -> str:
        if not isinstance(address, str) or not _is_address(address):
            raise RpcError(-32602, "the signer must be an address")
        if not isinstance(data, str):
            raise RpcError(-32602, "the message must be a string")
        message = bytes.fromhex(data[2:]) if _is_hex(data) else data.encode()
        self._unlocked(address)
        return "0x" + self.chain.sign_message(address, message).hex()

    def _sign_typed_data(self, params: list[Any]) -> str:
        address, typed = _param(params, 0), _param(params, 1)
        if not isinstance(address, str) or not _is_address(address):
            raise RpcError(-32602, "the signer must be an address")
        if isinstance(typed, str):
            try:
                typed = json.loads(typed)
            except ValueError as exc:
                raise RpcError(-32602, "typed data must be a JSON object") from exc
        if not isinstance(typed, dict):
            raise RpcError(-32602, "typed data must be a JSON object")
        self._unlocked(address)
        return "0x" + self.chain.sign_typed_data(address, typed).hex()

    def _unlocked(self, address: str) -> None:
        try:
            self.chain.account(address)
        except KeyError as exc:
            # geth's and anvil's wording, so clients show the familiar message.
            raise RpcError(-32000, f"no such account: {address} is not unlocked") from exc

    def _fee_history(self, params: list[Any]) -> dict[str, Any]:
        # eth-tester's own answer has a wrong oldestBlock and no rewards; build it here.
        count = min(_quantity(params, 0), 1024)
        newest_tag = params[1] if len(params) > 1 else "latest"
        percentiles = params[2] if len(params) > 2 and isinstance(params[2], list) else []
        with self.chain.lock:
            newest = self._block(newest_tag if newest_tag != "pending" else "latest")
            oldest = max(int(newest["number"]) - count + 1, 0)
            blocks = [self._block(hex(n)) for n in range(oldest, int(newest["number"]) + 1)]
            upcoming = self._block("pending")
        answer: dict[str, Any] = {
            "oldestBlock": hex(oldest),
            "baseFeePerGas": [hex(b["baseFeePerGas"]) for b in [*blocks, upcoming]],
            "gasUsedRatio": [b["gasUsed"] / b["gasLimit"] for b in blocks],
        }
        if percentiles:
            # Every dev transaction tips the same; a flat reward is the honest summary.
            answer["reward"] = [[hex(10**9)] * len(percentiles) for _ in blocks]
        return answer

    def _block(self, tag: str) -> Mapping[str, Any]:
        block = self.chain.request("eth_getBlockByNumber", [tag, False]).get("result")
        if not isinstance(block, Mapping):
            raise RpcError(-32602, f"unknown block {tag}")
        return block


def _quantity(params: list[Any], index: int) -> int:
    try:
        value = params[index]
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return int(value, 16) if value.startswith("0x") else int(value)
    except (IndexError, ValueError):
        pass
    raise RpcError(-32602, f"parameter {index} must be a quantity")


def _param(params: list[Any], index: int) -> Any:
    if len(params) <= index:
        raise RpcError(-32602, f"missing parameter {index}")
    return params[index]


def _is_hex(value: str) -> bool:
    if not value.startswith(("0x", "0X")) or len(value) % 2:
        return False
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        return False
    return True


def _is_address(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 42 and _is_hex(value)


def _normalise_params(method: str, params: list[Any]) -> list[Any]:
    """Accept what common clients send that eth-tester would refuse."""
    params = list(params)
    if params and isinstance(params[0], dict) and "input" in params[0]:
        # ethers and newer clients may send "input" instead of "data".
        tx = dict(params[0])
        tx.setdefault("data", tx.pop("input"))
        params[0] = tx
    position = _STATE_METHODS.get(method)
    # Every transaction is mined at once, so the pending state is the latest state.
    if position is not None and len(params) > position and params[position] == "pending":
        params[position] = "latest"
    return params


def _error_response(request_id: Any, error: RpcError) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": error.as_dict()}


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    server: _RpcHttpServer

    def do_POST(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._reply(411, b'{"error":"Content-Length required"}')
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY:
            self.close_connection = True
            self._reply(413, b'{"error":"bad Content-Length"}')
            return
        answer = self.server.dispatcher.handle_body(self.rfile.read(length))
        self._reply(200, answer if answer is not None else b"")

    def do_OPTIONS(self) -> None:
        # Browser dapps (ocean.js in a page) preflight their JSON POSTs.
        self._reply(204, b"")

    def do_GET(self) -> None:
        self._reply(405, b'{"error":"use POST with a JSON-RPC body"}')

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Headers", "Content-Type")
        self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silence per-request logging: a dev node serves thousands of polls."""


class _RpcHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], dispatcher: RpcDispatcher) -> None:
        super().__init__(address, _Handler)
        self.dispatcher = dispatcher

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up on its request (a timeout, a cancelled task) is normal.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class RpcServer:
    """A running JSON-RPC server; ``close()`` stops it (also usable as a context manager)."""

    def __init__(self, server: _RpcHttpServer, thread: threading.Thread) -> None:
        self._server = server
        self._thread = thread
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])
        self.url = f"http://{self.host}:{self.port}"

    def close(self) -> None:
        """Stop serving and release the port. Idempotent."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self) -> RpcServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def start_rpc_server(chain: DevChain, host: str = "127.0.0.1", port: int = 0) -> RpcServer:
    """Serve ``chain`` on ``http://host:port`` from a daemon thread (port 0: pick a free one).

    Meant for loopback: the dev accounts are unlocked for ``eth_sendTransaction``.
    """
    server = _RpcHttpServer((host, port), RpcDispatcher(chain))
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name=f"tidegate-devchain-rpc-{server.server_address[1]}",
        daemon=True,
    )
    thread.start()
    return RpcServer(server, thread)

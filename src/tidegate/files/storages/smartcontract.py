"""``smartcontract`` files: the JSON result of a view/pure function, by ``eth_call``.

``{"type": "smartcontract", "chainId": 8996, "address": "0x…", "abi": {one function}}``;
the function's arguments come from the consumer's userdata, by input name (address
inputs are checksummed). The result is JSON-encoded as the reference's
``json.dumps`` does (bytes as ``0x`` hex, tuples as lists).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Final

from eth_utils import is_address, to_checksum_address
from web3.exceptions import BadFunctionCallOutput

from tidegate.chain.clients import ChainConfig
from tidegate.chain.rpc import ContractCallError, rpc
from tidegate.errors import BadRequestError
from tidegate.files.storages import FileObject, FileObjectError, StorageContext, shown
from tidegate.types import digits_value

_READ_ONLY: Final = frozenset({"view", "pure"})
_INVALID_ABI: Final = "invalid abi"


def _abi_params(raw: object, *, named: bool) -> list[dict[str, Any]]:
    """An ABI ``inputs``/``outputs`` list; every entry needs a ``type`` (and a ``name``)."""
    if not isinstance(raw, list):
        raise FileObjectError(_INVALID_ABI)
    params: list[dict[str, Any]] = []
    for entry in raw:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("type"), str):
            raise FileObjectError(_INVALID_ABI)
        if named and (not isinstance(entry.get("name"), str) or not entry["name"]):
            raise FileObjectError(_INVALID_ABI)  # inputs are looked up in userdata by name
        params.append(dict(entry))
    return params


def _chain_id(raw: object) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, int) and not isinstance(raw, bool) and raw >= 0:
        return raw
    value = digits_value(raw.strip()) if isinstance(raw, str) else None
    if value is not None:  # ASCII digits only: "²" passes isdigit() but not int()
        return value
    raise FileObjectError("malformed smartcontract type, invalid chainId")


def _json_ready(value: Any) -> Any:
    """web3's decoded result as JSON-compatible values."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, list | tuple):
        return [_json_ready(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _json_ready(item) for key, item in value.items()}
    return value


async def _call_checked(call: Awaitable[Any]) -> Any:
    try:
        return await call
    except BadFunctionCallOutput as exc:
        # Not an outage: no contract there, or it returned something else than the abi says.
        raise ContractCallError("The contract returned no valid result.") from exc


@dataclass(frozen=True)
class SmartContractFile(FileObject):
    """A read-only contract call. ``chain_id`` ``None``: the only configured chain."""

    type: ClassVar[str] = "smartcontract"

    chain_id: int | None
    address: str
    abi: Mapping[str, Any]
    name: str
    inputs: tuple[Mapping[str, Any], ...]
    userdata: Mapping[str, Any] | None

    @classmethod
    def parse(
        cls, raw: Mapping[str, Any], userdata: Mapping[str, Any] | None
    ) -> SmartContractFile:
        """Validate as the reference (same messages, same order of checks)."""
        address = raw.get("address")
        if not address:
            raise FileObjectError("malformed smartcontract type, missing contract address")
        if not isinstance(address, str) or not is_address(address):
            raise FileObjectError("malformed smartcontract type, invalid contract address")
        chain_id = _chain_id(raw.get("chainId"))
        abi = raw.get("abi")
        if not isinstance(abi, Mapping) or abi.get("inputs") is None or abi.get("type") != (
            "function"
        ):
            raise FileObjectError(_INVALID_ABI)
        inputs = _abi_params(abi["inputs"], named=True)
        outputs = _abi_params(abi.get("outputs", []), named=False)
        mutability = abi.get("stateMutability")
        if mutability is None and abi.get("constant") is True:
            mutability = "view"  # pre-0.5 ABIs say "constant" instead
        if mutability not in _READ_ONLY:
            raise FileObjectError("only view or pure functions are allowed")
        name = abi.get("name")
        if not isinstance(name, str) or not name:
            raise FileObjectError("missing name")
        if inputs and userdata is None:
            raise FileObjectError("Missing parameters")
        for item in inputs:
            if userdata is None or userdata.get(item["name"]) is None:
                raise FileObjectError(f"Missing userparam: {shown(item['name'])}")
        clean_abi = {**abi, "inputs": inputs, "outputs": outputs, "stateMutability": mutability}
        return cls(chain_id=chain_id, address=to_checksum_address(address), abi=clean_abi,
                   name=name, inputs=tuple(inputs), userdata=userdata)

    def _chain(self, ctx: StorageContext) -> ChainConfig:
        if self.chain_id is not None:
            return ctx.chains.get(self.chain_id)  # unknown chain: 400 unsupported_chain
        if len(ctx.chains.by_id) == 1:
            return next(iter(ctx.chains.by_id.values()))
        raise BadRequestError("The smartcontract file has no chainId.",
                              code="invalid_file_object")

    def _args(self) -> list[Any]:
        userdata = self.userdata or {}
        args: list[Any] = []
        for item in self.inputs:
            value = userdata[item["name"]]
            if item["type"] == "address":
                value = to_checksum_address(value)
            args.append(value)
        return args

    async def call(self, ctx: StorageContext) -> bytes:
        """``eth_call`` the function; the JSON-encoded result (ASCII).

        Raises :class:`ContractCallError` (400) when the arguments do not fit the abi,
        the call reverts or returns nothing decodable; a 400 for an unconfigured
        chain; 503 when the chain RPC is unavailable.
        """
        chain = self._chain(ctx)
        try:
            contract = chain.web3.eth.contract(address=to_checksum_address(self.address),
                                               abi=[dict(self.abi)])
            function = contract.functions[self.name](*self._args())
        except Exception as exc:
            # All local validation by web3/eth-abi (types, counts, encodings): the
            # publisher's abi or the consumer's userdata is wrong, not our service.
            raise ContractCallError(
                "The smartcontract parameters do not match its abi."
            ) from exc
        result = await rpc(_call_checked(function.call()), "smartcontract file call")
        return json.dumps(_json_ready(result)).encode("ascii")

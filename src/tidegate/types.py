"""Shared vocabulary: the values every layer speaks of, each parsed by one rule.

Every request value Tidegate reads (an address, a nonce, a chain id, a file index,
userdata, a timestamp...) has one type here. Each is usable as a pydantic field type
(the API's request models are built from them, and OpenAPI is generated from the same
annotations, so the schema is the behaviour) and each rule is also a plain function.

Failures raise :class:`pydantic_core.PydanticCustomError` of type ``"tidegate"``
whose context names the stable error ``code`` clients see (``invalid_nonce``,
``invalid_address``, ``validation_error``...). Messages contain ``{field}``, which the
edge (:func:`tidegate.api.params.parse_model`) replaces by the field's name;
:func:`parse_field` does the same for code that parses outside a model.

Numbers have one strict parser, :func:`digits_value`: a JSON integer, or 1 to 20 ASCII
digits. ``str.isdigit`` also accepts "²" and "١", and ``int()`` of thousands of
digits is slow or raises: neither may reach a request path.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Annotated, Any, Final, NoReturn

import orjson
from eth_utils import is_address as eth_is_address
from eth_utils import to_checksum_address
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler, PlainValidator, WithJsonSchema
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from tidegate.errors import BadRequestError, ValidationError

# --- constants -------------------------------------------------------------------------

ZERO_ADDRESS: Final = "0x" + "0" * 40
"""The zero address (no token, no market fee collector)."""
HEX_DATA: Final = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
"""JSON-RPC ``DATA``: ``0x`` then whole bytes (possibly none). Use with ``fullmatch``."""
HEX_BYTES: Final = re.compile(r"(?:0x)?(?:[0-9a-fA-F]{2})*")
"""Bytes as hex, ``0x`` optional (what publishers and Ocean Node send). ``fullmatch``."""
TX_HASH_TEXT: Final = re.compile(r"0x[0-9a-fA-F]{64}")
"""A transaction hash: ``0x`` and 32 bytes of hex. Use with ``fullmatch``."""
DID_TEXT: Final = re.compile(r"did:ope?:[0-9a-fA-F]{1,64}")
"""An Ocean DID: ``did:op:`` (``did:ope:`` for a 5.x DDO) and hex (64 digits when
computed by :func:`assets.ddo.did_for`)."""

INT_TEXT_MAX: Final = 20
"""Longest integer text parsed (2**64 has 20 digits): ``int()`` never sees more."""
INT64_MAX: Final = 2**63 - 1
MAX_NONCE: Final = INT64_MAX
"""The largest nonce accepted: its integer part is reported as a JSON integer, which
every client (and orjson) keeps exactly up to int64; nanosecond timestamps (~1.8e18)
fit."""
NONCE_FRACTION_MAX: Final = 18
"""Fraction digits a nonce may have (the store compares 18; float seconds have 6)."""
FILE_INDEX_LIMIT: Final = 2**31
"""File indexes are below this (a DDO lists a handful of files)."""
TIMESTAMP_MAX: Final = 253_402_300_799
"""9999-12-31T23:59:59Z: the latest UNIX time every client and library can represent."""
_ADDRESS_TEXT_MAX: Final = 42  # "0x" + 40 hex digits
_NONCE_TEXT: Final = re.compile(r"([0-9]{1,19})(?:\.([0-9]{1,18}))?")


# --- the failure of one rule ---------------------------------------------------------


def fail(code: str, message: str) -> NoReturn:
    """Raise the validation failure of a field: ``message`` says ``{field}`` for its name."""
    raise PydanticCustomError("tidegate", message, {"code": code})


def parse_field(rule: Callable[[Any], Any], raw: object, field: str) -> Any:
    """Apply ``rule`` outside a model; a failure becomes the client error it stands for."""
    try:
        return rule(raw)
    except PydanticCustomError as exc:
        code = str((exc.context or {}).get("code", "validation_error"))
        message = exc.message().replace("{field}", field)
        if code == "validation_error":
            raise ValidationError({field: message}) from None
        raise BadRequestError(message, code=code) from None


# --- numbers ---------------------------------------------------------------------------


def digits_value(raw: object) -> int | None:
    """The integer ``raw`` spells, or None: a non-negative JSON integer (not a bool) or
    1-20 ASCII digits.

    The one integer parser for request values: no sign, no spaces, no Unicode digits,
    no exponent, no fraction (a JSON number with a fraction is refused; an integral one,
    ``7.0``, is the integer JSON Schema says it is).
    """
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw if raw >= 0 else None
    if isinstance(raw, float) and raw.is_integer() and raw >= 0:
        # JSON (and its Schema) has one number type: 7.0 is the integer 7.
        return int(raw)
    if isinstance(raw, str) and 0 < len(raw) <= INT_TEXT_MAX and raw.isascii() \
            and raw.isdigit():
        return int(raw)
    return None


def _padded_at_most(limit: str) -> str:
    """Exactly ``len(limit)`` digits spelling at most ``limit`` (leading zeros allowed)."""
    head, rest = int(limit[0]), limit[1:]
    if not rest:
        return f"[0-{head}]"
    branches = [f"[0-{head - 1}][0-9]{{{len(rest)}}}"] if head > 0 else []
    branches.append(f"{head}{_padded_at_most(rest)}")
    return "(?:" + "|".join(branches) + ")"


def _one_to(limit: str) -> str:
    """The numerals from 1 to ``limit``, without leading zeros."""
    head, rest = int(limit[0]), limit[1:]
    if not rest:
        return f"[1-{head}]"
    branches = [f"[1-9][0-9]{{0,{len(rest) - 1}}}"]  # fewer digits than the limit
    if head > 1:
        branches.append(f"[1-{head - 1}][0-9]{{{len(rest)}}}")
    branches.append(f"{head}{_padded_at_most(rest)}")
    return "(?:" + "|".join(branches) + ")"


def digits_pattern(minimum: int, maximum: int) -> str:
    """The JSON Schema pattern of the digit text :func:`digits_value` reads as an integer
    from ``minimum`` (0 or 1) to ``maximum``: leading zeros allowed (the length is
    ``maxLength``: :data:`INT_TEXT_MAX`), the value bounded exactly."""
    if minimum not in (0, 1):
        raise ValueError(minimum)
    numeral = f"0*{_one_to(str(maximum))}"
    return f"^(?:0+|{numeral})$" if minimum == 0 else f"^{numeral}$"


def _int_schema(minimum: int, maximum: int, description: str,
                example: int | None = None) -> dict[str, Any]:
    """A JSON integer, or its ASCII digits: what :func:`digits_value` accepts."""
    return {"anyOf": [{"type": "integer", "minimum": minimum, "maximum": maximum},
                      {"type": "string", "pattern": digits_pattern(minimum, maximum),
                       "maxLength": INT_TEXT_MAX}],
            "description": description + " Digit text is bounded as the integer.",
            "examples": [minimum if example is None else example]}


@dataclass(frozen=True)
class Numeral:
    """An integer that is also signed as text: ``text`` exactly as received, ``value``."""

    text: str
    value: int


def _file_index(raw: object) -> int:
    value = digits_value(raw)
    if value is None or value < 0:
        fail("invalid_file_index", "The {field} must be a non-negative integer.")
    if value >= FILE_INDEX_LIMIT:
        fail("invalid_file_index", f"The {{field}} must be less than {FILE_INDEX_LIMIT}.")
    return value


FileIndex = Annotated[int, PlainValidator(_file_index), WithJsonSchema(_int_schema(
    0, FILE_INDEX_LIMIT - 1, "Position of the file in the service's files (from 0)."))]


def _chain_id(raw: object) -> Numeral:
    value = digits_value(raw)
    if value is None or not 0 < value <= INT64_MAX:
        fail("invalid_chain_id", "The {field} must be an integer.")
    return Numeral(raw if isinstance(raw, str) else str(raw), value)


ChainIdParam = Annotated[Numeral, PlainValidator(_chain_id), WithJsonSchema(_int_schema(
    1, INT64_MAX, "An EVM chain id (positive int64)."))]
"""A chain id as received (``text`` is what a signed message contains)."""
ChainId = int
"""A parsed chain id (positive)."""


def _result_index(raw: object) -> Numeral:
    value = digits_value(raw)
    if value is None or value >= FILE_INDEX_LIMIT:
        fail("validation_error", "The {field} must be a non-negative integer.")
    return Numeral(raw if isinstance(raw, str) else str(raw), value)


ResultIndex = Annotated[Numeral, PlainValidator(_result_index), WithJsonSchema(_int_schema(
    0, FILE_INDEX_LIMIT - 1, "Position of the result in the job's results (from 0)."))]


def _flags(raw: object) -> int:
    value = digits_value(raw)
    if value is None or value > 255:
        fail("invalid_flags", "The {field} must be an integer 0-255.")
    return value


Flags = Annotated[int, PlainValidator(_flags), WithJsonSchema(_int_schema(
    0, 255, "Metadata flags: bit 0 LZMA-compressed, bit 1 ECIES-encrypted."))]


def _timestamp(code: str, malformed: str, past: str) -> Callable[[Any], int]:
    def rule(raw: object) -> int:
        value = digits_value(raw)
        if value is None or value > TIMESTAMP_MAX:
            fail(code, malformed)
        if value <= time.time():
            fail(code, past)
        return value

    return rule


_FUTURE: Final = _int_schema(1, TIMESTAMP_MAX, "A UNIX time in seconds, in the future.",
                             example=4_102_444_800)
ValidUntil = Annotated[int, PlainValidator(_timestamp(
    "invalid_valid_until", "The {field} value is not correct.",
    "The {field} value is not correct.")), WithJsonSchema(_FUTURE)]
def _millis(raw: object) -> int:
    value = digits_value(raw)
    if value is None or value > TIMESTAMP_MAX * 1000:
        fail("invalid_valid_until", "The {field} must be a time in milliseconds.")
    return value


TimestampMillis = Annotated[int, PlainValidator(_millis), WithJsonSchema(_int_schema(
    0, TIMESTAMP_MAX * 1000, "Milliseconds since 1970 (Ocean Node's validUntil)."))]
Expiration = Annotated[int, PlainValidator(_timestamp(
    "invalid_expiration", "The {field} must be an integer timestamp.",
    "Invalid timestamp provided: {field} must be in the future.")), WithJsonSchema(_FUTURE)]


# --- nonces ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Nonce:
    """A request nonce: ``text`` exactly as received (it ends the signed message) and
    its exact decimal ``value``.

    Nonces in the wild are counters, millisecond and nanosecond timestamps (above
    2**53) and float seconds: ASCII decimal digits, an optional fraction, at most
    :data:`MAX_NONCE`. Compared as exact decimals, never floats.
    """

    text: str
    value: Decimal

    @classmethod
    def parse(cls, raw: object) -> Nonce:
        """The nonce ``raw`` (text, or a JSON number) spells; 400 ``invalid_nonce`` if none."""
        parsed: Nonce = parse_field(_nonce, raw, "nonce")
        return parsed

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(_nonce)

    @classmethod
    def __get_pydantic_json_schema__(cls, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        return {"anyOf": [{"type": "integer", "minimum": 0, "maximum": MAX_NONCE},
                          {"type": "string", "pattern": NONCE_PATTERN}],
                "description": "Greater than the last nonce used by the signer (GET /nonce, "
                               f"then add 1), at most {MAX_NONCE}: a JSON integer, or decimal "
                               "text (integer part bounded as the integer).",
                "examples": ["1"]}


NONCE_PATTERN: Final = (
    # What _NONCE_TEXT reads with a value at most MAX_NONCE: 1-18 digits (any value),
    # 19 digits below MAX_NONCE with any fraction, or MAX_NONCE with a zero fraction.
    rf"^(?:(?:[0-9]{{1,18}}|{_padded_at_most(str(MAX_NONCE - 1))})(?:\.[0-9]{{1,18}})?"
    rf"|{MAX_NONCE}(?:\.0{{1,18}})?)$")


def _nonce(raw: object) -> Nonce:
    if isinstance(raw, Nonce):
        return raw
    # A JSON float with a fraction is refused: the client signed its own rendering of it, which
    # need not be Python's ("1e-7"); integers render the same everywhere.
    if isinstance(raw, float) and raw.is_integer() and raw >= 0:
        raw = int(raw)  # JSON has one number type: 7.0 is the integer 7
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        fail("invalid_nonce", "The {field} must be a number.")
    text = raw if isinstance(raw, str) else str(raw)
    match = _NONCE_TEXT.fullmatch(text) if text.isascii() else None
    if match is None:
        fail("invalid_nonce", "The {field} must be a non-negative decimal number.")
    value = Decimal(text)
    if value > MAX_NONCE:
        fail("invalid_nonce", f"The {{field}} is too large (at most {MAX_NONCE}).")
    return Nonce(text, value)


# --- addresses, hashes, identifiers --------------------------------------------------


@lru_cache(maxsize=16384)
def checksum_address(value: str) -> str:
    """EIP-55 form of ``value`` (cached: checksumming hashes with keccak every time).

    Raises ``ValueError`` when ``value`` is not a 20-byte hex address; only valid
    results are cached, so the cache holds at most ``maxsize`` real addresses.
    """
    return str(to_checksum_address(value))


def is_address(value: str) -> bool:
    """Whether ``value`` is 20 bytes of hex (eth_utils' rule: any letter case), cached."""
    # Only strings short enough to be an address reach the cache: it stays small.
    return len(value) <= _ADDRESS_TEXT_MAX and _is_address(value)


@lru_cache(maxsize=16384)
def _is_address(value: str) -> bool:
    return bool(eth_is_address(value))


def _address_text(raw: object) -> str:
    if not isinstance(raw, str) or not is_address(raw):
        fail("invalid_address", "The {field} is not an Ethereum address.")
    return raw


_ADDRESS_SCHEMA: Final = {
    "type": "string", "pattern": "^(0x)?[0-9a-fA-F]{40}$",
    "description": "An Ethereum address, in any letter case (as eth_utils reads it).",
    "examples": ["0x" + "ab" * 20]}
def _checksum(raw: object) -> str:
    return checksum_address(_address_text(raw))


ChecksumAddress = Annotated[str, PlainValidator(_checksum), WithJsonSchema(_ADDRESS_SCHEMA)]
"""An address in any letter case in, its EIP-55 form out."""
AddressText = Annotated[str, PlainValidator(_address_text), WithJsonSchema(_ADDRESS_SCHEMA)]
"""An address exactly as received (validated): signed messages contain it as sent."""


def _tx_hash(code: str) -> Callable[[Any], str]:
    def rule(raw: object) -> str:
        if not isinstance(raw, str) or not TX_HASH_TEXT.fullmatch(raw):
            fail(code, "The {field} is not a transaction hash.")
        return raw

    return rule


_TX_SCHEMA: Final = {"type": "string", "pattern": "^0x[0-9a-fA-F]{64}$",
                     "examples": ["0x" + "ab" * 32]}
TxHash = Annotated[str, PlainValidator(_tx_hash("invalid_transaction")),
                   WithJsonSchema(_TX_SCHEMA)]
OrderTxHash = Annotated[str, PlainValidator(_tx_hash("order_invalid")), WithJsonSchema({
    **_TX_SCHEMA, "description": "The startOrder (or reuseOrder) transaction."})]
"""A transaction hash naming an order (refused as ``order_invalid``, as a bad order)."""


def _did(raw: object) -> str:
    if not isinstance(raw, str) or not DID_TEXT.fullmatch(raw):
        fail("validation_error", "The {field} format is invalid.")
    return raw


Did = Annotated[str, PlainValidator(_did),
                WithJsonSchema({"type": "string", "pattern": "^did:ope?:[0-9a-fA-F]{1,64}$",
                                "examples": ["did:op:" + "ab" * 32]})]


def hex_bytes(raw: object) -> bytes:
    """Bytes given as hex text (``0x`` optional), or 400 ``invalid_hex``."""
    if not isinstance(raw, str) or not HEX_BYTES.fullmatch(raw):
        fail("invalid_hex", "Failed to convert input args to bytes ({field}).")
    return bytes.fromhex(raw.removeprefix("0x"))


def _bytes32(raw: object) -> bytes:
    value = hex_bytes(raw)
    if len(value) != 32:
        fail("invalid_hex", "The {field} must be 32 bytes.")
    return value


HexBytes = Annotated[bytes, PlainValidator(hex_bytes), WithJsonSchema({
    "type": "string", "pattern": "^(0x)?([0-9a-fA-F]{2})*$", "examples": ["0x00"]})]
Bytes32 = Annotated[bytes, PlainValidator(_bytes32), WithJsonSchema({
    "type": "string", "pattern": "^(0x)?[0-9a-fA-F]{64}$", "examples": ["0x" + "00" * 32]})]


# --- userdata ------------------------------------------------------------------------------


def userdata_object(raw: object) -> dict[str, Any] | None:
    """The consumer's ``userdata`` as an object, or ``None``: the one rule everywhere.

    An object is used as is; text is JSON-decoded. Text that does not decode to an
    object is dropped (``None``), as the reference's download does; empty means none.
    """
    if isinstance(raw, str | bytes):
        try:
            raw = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            return None
    if isinstance(raw, Mapping) and raw:
        return dict(raw)
    return None


def _userdata(raw: object) -> dict[str, Any] | None:
    if raw is not None and not isinstance(raw, str | Mapping):
        fail("validation_error", "The {field} must be a JSON object or a JSON string.")
    return userdata_object(raw)


Userdata = Annotated[dict[str, Any] | None, PlainValidator(_userdata), WithJsonSchema({
    "anyOf": [{"type": "object"}, {"type": "string"}],
    "description": "Consumer parameters: an object, or its JSON text (text that is not "
                   "an object is ignored).", "examples": [{"rows": 5}]})]

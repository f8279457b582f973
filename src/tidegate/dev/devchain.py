"""An in-process EVM with the Ocean v4 contracts: the embedded dev chain and test chain.

Built on web3's ``EthereumTesterProvider`` over eth-tester's py-evm backend, adjusted to
behave like barge's chain: chain id 8996 everywhere, the barge
mnemonic and HD path (so addresses match barge, anvil and ganache), a quick gas
estimator, and one lock around every access because eth-tester is not thread-safe.

Like a real dev node it signs for its unlocked accounts (:meth:`DevChain.sign_message`,
:meth:`DevChain.sign_typed_data`, with eth_account) and its blocks follow the wall
clock: a block is stamped when it is built, ``max(clock + offset, parent + 1)``
(py-evm demands strictly increasing timestamps, so only a burst of more than one
block per second runs ahead, and the chain falls back to the clock when it idles).
``increase_time`` moves the offset, as ``evm_increaseTime`` does on anvil.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct, encode_typed_data
from eth_account.signers.local import LocalAccount
from eth_typing import HexStr
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider
from web3.types import RPCEndpoint, RPCResponse

from tidegate.dev import deploy
from tidegate.dev.barge import BARGE_HD_PATH, BARGE_MNEMONIC, DEV_CHAIN_ID
from tidegate.dev.deploy import OceanAddresses as OceanAddresses  # re-exported

# Requests that build a block or run code against the pending block: stamp it first.
_STAMPED_METHODS = frozenset(
    {"eth_sendRawTransaction", "eth_sendTransaction", "eth_call", "eth_estimateGas"}
)


def _quick_gas_estimator(fallback: Callable[[Any, Any], int]) -> Callable[[Any, Any], int]:
    """A py-evm gas estimator that needs two EVM runs instead of about thirteen.

    It runs the transaction once with the whole block gas limit, pads the gas consumed
    (before refunds; padded for the 63/64 rule of nested calls) and verifies the padded
    value once. Anything unusual falls back to py-evm's binary search, which also
    produces the proper revert error.
    """
    from eth.vm.spoof import SpoofTransaction

    def estimate(state: Any, transaction: Any) -> int:
        def run(gas: int) -> Any:
            snapshot = state.snapshot()
            try:
                return state.apply_transaction(SpoofTransaction(transaction, gas=gas, gas_price=0))
            finally:
                state.revert(snapshot)

        limit = int(state.gas_limit)
        probe = run(limit)
        if probe.is_error:
            return fallback(state, transaction)
        consumed = int(transaction.intrinsic_gas) + int(probe.get_gas_used())
        padded = min(limit, consumed * 5 // 4 + 25_000)
        if run(padded).is_error:
            return fallback(state, transaction)
        return padded

    return estimate


class _LockedTesterProvider(EthereumTesterProvider):
    """The tester provider, with every request serialised by the chain's lock."""

    def __init__(
        self,
        tester: Any,
        api_endpoints: Any,
        lock: threading.RLock,
        stamp: Callable[[], None],
    ) -> None:
        super().__init__(tester, api_endpoints=api_endpoints)
        self._lock = lock
        self._stamp = stamp

    def make_request(self, method: RPCEndpoint, params: Any) -> RPCResponse:
        with self._lock:
            if method in _STAMPED_METHODS:
                self._stamp()
            return super().make_request(method, params)


class DevChain:
    """An in-process chain with funded barge accounts, chain id 8996.

    All access (``w3``, ``request``, snapshots) is serialised by ``lock``, a
    re-entrant lock that callers may also hold to group several calls.
    """

    def __init__(
        self,
        num_accounts: int = 10,
        mnemonic: str = BARGE_MNEMONIC,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        from eth.estimators.gas import binary_gas_search_intrinsic_tolerance
        from eth_tester import EthereumTester, PyEVMBackend
        from web3.datastructures import NamedElementOnion
        from web3.providers.eth_tester.defaults import API_ENDPOINTS, static_return

        if num_accounts < 1:
            raise ValueError("num_accounts must be at least 1")
        self.lock = threading.RLock()
        self._clock = clock
        self._time_offset = 0
        self._snapshot_offsets: dict[int, int] = {}
        backend = PyEVMBackend.from_mnemonic(
            mnemonic, num_accounts=num_accounts, hd_path=BARGE_HD_PATH
        )
        chain_class = type(backend.chain)
        # Class attributes: revert_to_snapshot may rebuild the chain from its class.
        chain_class.chain_id = DEV_CHAIN_ID
        estimator = _quick_gas_estimator(binary_gas_search_intrinsic_tolerance)
        chain_class.gas_estimator = staticmethod(estimator)
        backend.chain.gas_estimator = estimator  # the live instance cached the default
        # deepcopy of API_ENDPOINTS fails on cytoolz curries; two levels are enough.
        endpoints = {namespace: dict(methods) for namespace, methods in API_ENDPOINTS.items()}
        endpoints["eth"]["chainId"] = static_return(DEV_CHAIN_ID)
        endpoints["net"]["version"] = static_return(str(DEV_CHAIN_ID))
        self._backend = backend
        self._tester = EthereumTester(backend)
        self.provider = _LockedTesterProvider(
            self._tester, endpoints, self.lock, self._stamp_pending_block
        )
        self.w3 = Web3(self.provider)
        # The provider's own formatting middleware only: wire-format in, camelCase out.
        self._raw_request = self.provider.request_func(self.w3, NamedElementOnion([]))
        self.accounts: list[LocalAccount] = [
            Account.from_key(key.to_bytes()) for key in backend.account_keys
        ]
        self.addresses: OceanAddresses | None = None

    @property
    def chain_id(self) -> int:
        return DEV_CHAIN_ID

    def private_key(self, index: int) -> HexStr:
        """The ``0x`` hex private key of mnemonic account ``index``."""
        return HexStr("0x" + bytes(self.accounts[index].key).hex())

    # -- signing for the unlocked accounts ------------------------------------------

    def account(self, address: str) -> LocalAccount:
        """The unlocked account with ``address``; ``KeyError`` if it is not one of ours."""
        wanted = address.lower()
        for account in self.accounts:
            if account.address.lower() == wanted:
                return account
        raise KeyError(address)

    def sign_message(self, address: str, message: bytes) -> bytes:
        """EIP-191 personal signature (``eth_sign``/``personal_sign``): 65 bytes, v 27/28."""
        signed = self.account(address).sign_message(encode_defunct(primitive=message))
        return bytes(signed.signature)

    def sign_typed_data(self, address: str, typed_data: Mapping[str, Any]) -> bytes:
        """EIP-712 signature of a full typed-data message (``eth_signTypedData_v4``)."""
        message = encode_typed_data(full_message=dict(typed_data))
        return bytes(self.account(address).sign_message(message).signature)

    def request(self, method: str, params: Sequence[Any]) -> RPCResponse:
        """Run one JSON-RPC request given in wire format (hex quantities).

        Returns the tester's response dict: camelCase keys, but quantities still as
        ints (``rpc_shim`` re-encodes them). Reverts raise eth-tester's
        ``TransactionFailed``; invalid transactions raise a ``ValidationError``.
        """
        with self.lock:
            return self._raw_request(RPCEndpoint(method), list(params))

    # -- time and snapshots -------------------------------------------------------

    def snapshot(self) -> int:
        """Record the current head (and clock offset); ``revert(id)`` returns to it (5 ms)."""
        with self.lock:
            snapshot_id = int(self._tester.take_snapshot())
            self._snapshot_offsets[snapshot_id] = self._time_offset
            return snapshot_id

    def revert(self, snapshot_id: int) -> None:
        """Return to a snapshot. Raises ``KeyError`` for an unknown id."""
        from eth_tester.exceptions import SnapshotNotFound

        with self.lock:
            try:
                self._tester.revert_to_snapshot(snapshot_id)
            except SnapshotNotFound as exc:
                raise KeyError(snapshot_id) from exc
            # As anvil does: the clock offset goes back too (evm_increaseTime is undone).
            self._time_offset = self._snapshot_offsets.get(snapshot_id, self._time_offset)

    def mine(self, timestamp: int | None = None) -> None:
        """Mine one empty block, at ``timestamp`` if given (else on the clock).

        Raises ``ValueError`` unless ``timestamp`` is after the latest block's.
        """
        with self.lock:
            if timestamp is None:
                self._stamp_pending_block()
            else:
                if timestamp <= self.latest_timestamp():
                    raise ValueError("a new block's timestamp must be after the latest block's")
                chain = self._backend.chain
                chain.header = chain.header.copy(timestamp=timestamp)
            self._tester.mine_blocks(1)

    def increase_time(self, seconds: int) -> int:
        """Move the chain's clock ``seconds`` ahead of the wall clock (from the next block
        on, like ``evm_increaseTime``); returns the total offset in seconds."""
        if seconds < 0:
            raise ValueError("the time can only move forward")
        with self.lock:
            self._time_offset += int(seconds)
            return self._time_offset

    def latest_timestamp(self) -> int:
        """The timestamp of the latest mined block."""
        with self.lock:
            return int(self._tester.get_block_by_number("latest")["timestamp"])

    def _stamp_pending_block(self) -> None:
        """Give the block being built ``max(clock + offset, parent + 1)``.

        py-evm stamps the next header when the previous block is mined: an idle chain
        would then mine its next block in the past, and a busy one would not follow the
        clock. The pending block of this auto-mining chain holds no transactions, so
        changing its timestamp is safe.
        """
        chain = self._backend.chain
        parent = chain.get_canonical_head()
        target = max(int(self._clock()) + self._time_offset, int(parent.timestamp) + 1)
        if chain.header.timestamp != target:
            chain.header = chain.header.copy(timestamp=target)

    # -- Ocean contracts ----------------------------------------------------------

    def deploy_ocean_contracts(self, deployer_index: int = 0) -> OceanAddresses:
        """Deploy OCEAN, the fee collector, router, FRE, dispenser, templates and factory.

        Thirteen transactions in the order of the contracts repo's deploy script for a
        development chain (``deploy.deploy_ocean_contracts``), so the addresses equal
        barge's for the same mnemonic and a fresh deployer. ERC20 template 1 is
        ``ERC20Template`` and template 2 ``ERC20TemplateEnterprise``. The deployer owns
        OCEAN and the router and collects OPF fees. Call it once per chain.
        """
        with self.lock:
            if self.addresses is not None:
                raise RuntimeError("the Ocean contracts are already deployed on this chain")
            self.addresses = deploy.deploy_ocean_contracts(
                self.w3, self.accounts[deployer_index]
            )
            return self.addresses

    def mint_ocean(self, to: str, amount_wei: int, owner_index: int = 0) -> None:
        """Mint OCEAN to ``to`` (the deployer owns the token; the cap is 1.41e9 OCEAN)."""
        if self.addresses is None:
            raise RuntimeError("deploy_ocean_contracts() first")
        with self.lock:
            deploy.mint_ocean(
                self.w3, self.accounts[owner_index], self.addresses["Ocean"], to, amount_wei
            )

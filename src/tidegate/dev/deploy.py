"""Deploy the Ocean v4 contracts to any EVM node: the dev chain, anvil, ganache.

The contract set that the contracts repo's ``scripts/deploy-contracts.js`` deploys
for an unknown ("development") chain, which is what barge runs, with its constructor
arguments and its address-file key names. 29 transactions:

- the core, unchanged since the first version (13 transactions, so a fresh
  deployer's first nine contract addresses stay what they were): OCEAN, the OPF fee
  collector, router, FixedRateExchange, Dispenser, ERC20 templates 1 and 2, ERC721
  template 1, ERC721Factory, ``addTokenTemplate``, and the router's ``addFactory``,
  ``addFixedRateContract`` and ``addDispenserContract``;
- then, in the script's relative order (15 transactions): the DAI and USDC mocks,
  ERC20Template3 (the predictoor template, ERC20 template 3), the veOCEAN set with
  the SmartWalletChecker set on veOCEAN, and DFRewards with DFStrategyV1 registered;
- then the newer script's ``Escrow`` (1 transaction, appended last so that every
  earlier address stays what it was): the compute-payment contract of Ocean Node's
  C2D v2, built as the script builds it, on the router with no OPC collector of its
  own (the router's collector takes the OPC fee of each claim).

Not deployed (barge does): vesting (Splitter, VestingWallet0, Distribute),
PredictoorHelper, and the newer script's other extras (ERC20Template4,
EnterpriseFeeCollector, FixedRateExchangeEnterprise, BatchPayments, AccessListFactory). barge also
mints OCEAN to its accounts; here :func:`mint_ocean` does that on request. Because the
order differs from the script's, only the OCEAN address (the deployer's nonce 0)
equals barge's.

Every transaction is signed locally by the deployer's key (no unlocked node accounts
are needed), nonces are counted locally from the deployer's pending nonce, and gas
limits are fixed (an estimate costs a round trip and, on py-evm, extra EVM runs).
Fees follow the node's current gas price, so a 1 gwei EIP-1559 base fee (anvil)
works as well as eth-tester's. With a fresh deployer the contract addresses depend
only on the deployer's address, so they are the same on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from eth_abi.abi import encode as abi_encode
from eth_account.signers.local import LocalAccount
from eth_utils import (
    function_abi_to_4byte_selector,
    get_abi_input_types,
    keccak,
    to_checksum_address,
)
from hexbytes import HexBytes
from web3 import Web3
from web3.types import TxReceipt

from tidegate.chain.contracts import load_artifact
from tidegate.types import ZERO_ADDRESS

# Required by FactoryRouter (non-zero) but unused: we deploy no balancer pools.
BPOOL_TEMPLATE = "0x000000000000000000000000000000000000dEaD"
# The largest deployment (ERC20Template3) takes 5.42 M gas.
DEPLOY_GAS = 6_000_000
CALL_GAS = 300_000
RECEIPT_TIMEOUT = 120.0
# barge's mocks: key -> MockERC20Decimals(name, symbol, decimals).
MOCK_TOKENS: dict[str, tuple[str, str, int]] = {
    "MockDAI": ("DAI", "DAI", 18),
    "MockUSDC": ("USDC", "USDC", 6),
}
VE_OCEAN_ARGS = ("veOCEAN", "veOCEAN", "0.1.0")  # name, symbol, version
VE_DELEGATION_ARGS = ("Voting Escrow Boost Delegation", "veDelegation", "")  # name, symbol, URI


class OceanAddresses(TypedDict):
    """Deployed contract addresses under the barge key names (a JSON-ready dict).

    ``ERC20Template`` maps the factory's template index ("1", "2", "3") to the
    template; ``ERC721Template`` has "1" only.
    """

    chainId: int
    Ocean: str
    MockDAI: str
    MockUSDC: str
    OPFCommunityFeeCollector: str
    startBlock: int
    Router: str
    FixedPrice: str
    ERC20Template: dict[str, str]
    ERC721Template: dict[str, str]
    Dispenser: str
    ERC721Factory: str
    veOCEAN: str
    veAllocate: str
    veDelegation: str
    veFeeDistributor: str
    veFeeEstimate: str
    SmartWalletChecker: str
    DFRewards: str
    DFStrategyV1: str
    Escrow: str


class DeploymentError(RuntimeError):
    """A deployment transaction could not be sent or was mined with status 0."""


class _Sender:
    """Signs and sends transactions for one account with locally counted nonces.

    :meth:`deploy` and :meth:`call` only send: a contract's address follows from the
    sender and the nonce, so nothing needs to wait for a receipt until :meth:`settle`,
    which collects them all in order and fails on the first that reverted. This
    saves a receipt round trip (and a poll interval) per transaction.
    """

    def __init__(self, w3: Web3, account: LocalAccount, timeout: float) -> None:
        self.w3 = w3
        self.account = account
        self.timeout = timeout
        self.chain_id = int(w3.eth.chain_id)
        gas_price = int(w3.eth.gas_price)
        # Twice the current price absorbs base-fee drift; dev chains mostly lower it.
        self.priority_fee = min(10**9, gas_price)
        self.max_fee = 2 * gas_price + self.priority_fee
        self.nonce = int(w3.eth.get_transaction_count(account.address, "pending"))
        # (what, tx hash, the contract address a deployment must report)
        self._pending: list[tuple[str, HexBytes, str | None]] = []

    def _send(self, what: str, to: str | None, data: bytes, gas: int) -> HexBytes:
        tx: dict[str, Any] = {
            "chainId": self.chain_id,
            "nonce": self.nonce,
            "gas": gas,
            "maxFeePerGas": self.max_fee,
            "maxPriorityFeePerGas": self.priority_fee,
            "value": 0,
            "data": data,
        }
        if to is not None:
            tx["to"] = to
        signed = self.account.sign_transaction(tx)
        try:
            tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Exception as exc:  # the node's own error types differ
            raise DeploymentError(f"{what}: sending failed: {exc}") from exc
        self.nonce += 1
        return tx_hash

    def _receipt(self, what: str, tx_hash: HexBytes) -> TxReceipt:
        receipt = self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=self.timeout, poll_latency=0.01
        )
        if receipt["status"] != 1:
            raise DeploymentError(f"{what} reverted in tx {tx_hash.to_0x_hex()}")
        return receipt

    def deploy(self, name: str, *args: Any) -> str:
        """Send the deployment of the artifact ``name``; return its EIP-55 address."""
        artifact = load_artifact(name)
        ctor = next((e for e in artifact.abi if e["type"] == "constructor"), None)
        data = bytes.fromhex(artifact.bytecode[2:])
        if ctor is not None:
            data += abi_encode(get_abi_input_types(ctor), args)
        elif args:
            raise TypeError(f"{name} has no constructor arguments")
        address = create_address(self.account.address, self.nonce)
        what = f"deploying {name}"
        self._pending.append((what, self._send(what, None, data, DEPLOY_GAS), address))
        return address

    def call(self, name: str, address: str, fn: str, args: Sequence[Any]) -> None:
        """Send ``fn(*args)`` to the ``name`` contract at ``address``."""
        what = f"{name}.{fn}"
        data = _call_data(name, fn, args)
        self._pending.append((what, self._send(what, address, data, CALL_GAS), None))

    def settle(self) -> list[TxReceipt]:
        """Wait for every transaction sent so far; return their receipts in order."""
        pending, self._pending = self._pending, []
        receipts = []
        for what, tx_hash, address in pending:
            receipt = self._receipt(what, tx_hash)
            reported = receipt["contractAddress"]
            if address is not None and (reported is None or reported.lower() != address.lower()):
                raise DeploymentError(f"{what}: the node created {reported}, not {address}")
            receipts.append(receipt)
        return receipts

    def transact(self, name: str, address: str, fn: str, args: Sequence[Any]) -> TxReceipt:
        """Send ``fn(*args)`` to ``address`` and wait for its receipt."""
        what = f"{name}.{fn}"
        return self._receipt(what, self._send(what, address, _call_data(name, fn, args), CALL_GAS))


def _call_data(name: str, fn: str, args: Sequence[Any]) -> bytes:
    """The calldata of ``fn(*args)`` on the artifact ``name`` (first overload that fits)."""
    for entry in load_artifact(name).abi:
        if (entry["type"] == "function" and entry["name"] == fn
                and len(entry["inputs"]) == len(args)):
            types = get_abi_input_types(entry)
            return function_abi_to_4byte_selector(entry) + abi_encode(types, args)
    raise ValueError(f"{name} has no function {fn} taking {len(args)} arguments")


def create_address(sender: str, nonce: int) -> str:
    """The EIP-55 address of the contract that ``sender`` creates with ``nonce`` (CREATE)."""
    # keccak(rlp([sender, nonce]))[12:]; both items are short, so the list is too.
    if nonce == 0:
        encoded_nonce = b"\x80"
    elif nonce < 0x80:
        encoded_nonce = bytes([nonce])
    else:
        raw = nonce.to_bytes((nonce.bit_length() + 7) // 8, "big")
        encoded_nonce = bytes([0x80 + len(raw)]) + raw
    payload = b"\x94" + bytes.fromhex(sender[2:]) + encoded_nonce
    return to_checksum_address(keccak(bytes([0xC0 + len(payload)]) + payload)[12:])


def deploy_ocean_contracts(
    w3: Web3, deployer: LocalAccount, *, timeout: float = RECEIPT_TIMEOUT
) -> OceanAddresses:
    """Deploy barge's development contract set (see the module's docstring).

    ERC20 template 1 is ``ERC20Template``, 2 ``ERC20TemplateEnterprise`` and 3
    ``ERC20Template3``. The deployer owns OCEAN, the router, the factory, veOCEAN, the
    fee distributor and DFRewards, and collects OPF fees (also the OPC fee of escrow
    claims); each mock token mints 10e25
    base units to it (1e8 DAI, 1e20 USDC). Each call deploys a new, independent set
    (the router accepts one factory). ``chainId`` is the node's and ``startBlock`` the
    block of the first transaction. Transactions are sent without waiting, then their
    receipts are checked in order.
    Raises :class:`DeploymentError` when a transaction fails, and web3's errors when
    the node cannot be reached.

    Nonces are counted from the deployer's pending nonce: nothing else may send from
    the deployer's account meanwhile.
    """
    tx = _Sender(w3, deployer, timeout)
    now = int(w3.eth.get_block("latest")["timestamp"])
    core = _send_core(tx)
    mocks = {key: tx.deploy("MockERC20Decimals", *args) for key, args in MOCK_TOKENS.items()}
    erc20_templates = {**core["ERC20Template"], "3": tx.deploy("ERC20Template3")}
    tx.call("ERC721Factory", core["ERC721Factory"], "addTokenTemplate", [erc20_templates["3"]])
    ve = _send_ve(tx, core["Ocean"], now)
    df_rewards = tx.deploy("DFRewards")
    df_strategy = tx.deploy("DFStrategyV1", df_rewards)
    tx.call("DFRewards", df_rewards, "addStrategy", [df_strategy])
    # Appended after everything else: the addresses above must not move.
    escrow = tx.deploy("Escrow", core["Router"], ZERO_ADDRESS)
    receipts = tx.settle()
    # The key order of barge's address file.
    return OceanAddresses(
        chainId=tx.chain_id,
        Ocean=core["Ocean"],
        MockDAI=mocks["MockDAI"],
        MockUSDC=mocks["MockUSDC"],
        OPFCommunityFeeCollector=core["OPFCommunityFeeCollector"],
        startBlock=int(receipts[0]["blockNumber"]),
        Router=core["Router"],
        FixedPrice=core["FixedPrice"],
        ERC20Template=erc20_templates,
        ERC721Template=core["ERC721Template"],
        Dispenser=core["Dispenser"],
        ERC721Factory=core["ERC721Factory"],
        veOCEAN=ve["veOCEAN"],
        veAllocate=ve["veAllocate"],
        veDelegation=ve["veDelegation"],
        veFeeDistributor=ve["veFeeDistributor"],
        veFeeEstimate=ve["veFeeEstimate"],
        SmartWalletChecker=ve["SmartWalletChecker"],
        DFRewards=df_rewards,
        DFStrategyV1=df_strategy,
        Escrow=escrow,
    )


def _send_core(tx: _Sender) -> dict[str, Any]:
    """The first 13 transactions; their order fixes the core contracts' addresses."""
    me = tx.account.address
    ocean = tx.deploy("OceanToken", me)
    opf = tx.deploy("OPFCommunityFeeCollector", me, me)
    router = tx.deploy("FactoryRouter", me, ocean, BPOOL_TEMPLATE, opf, [])
    fre = tx.deploy("FixedRateExchange", router)
    dispenser = tx.deploy("Dispenser", router)
    erc20 = tx.deploy("ERC20Template")
    erc20_enterprise = tx.deploy("ERC20TemplateEnterprise")
    erc721 = tx.deploy("ERC721Template")
    factory = tx.deploy("ERC721Factory", erc721, erc20, router)
    tx.call("ERC721Factory", factory, "addTokenTemplate", [erc20_enterprise])
    tx.call("FactoryRouter", router, "addFactory", [factory])
    tx.call("FactoryRouter", router, "addFixedRateContract", [fre])
    tx.call("FactoryRouter", router, "addDispenserContract", [dispenser])
    return {
        "Ocean": ocean,
        "OPFCommunityFeeCollector": opf,
        "Router": router,
        "FixedPrice": fre,
        "Dispenser": dispenser,
        "ERC20Template": {"1": erc20, "2": erc20_enterprise},
        "ERC721Template": {"1": erc721},
        "ERC721Factory": factory,
    }


def _send_ve(tx: _Sender, ocean: str, now: int) -> dict[str, str]:
    """veOCEAN (locks OCEAN), veAllocate, veDelegation, the fee distributor and estimate.

    As the deploy script does: the fee distributor starts ``now`` (the contract rounds
    it down to a week) and pays OCEAN, with the deployer as admin and emergency-return
    address; a SmartWalletChecker is committed and applied on veOCEAN (it allows no
    contract to lock until a manager allows one; EOAs need no check).
    """
    me = tx.account.address
    ve_ocean = tx.deploy("veOCEAN", ocean, *VE_OCEAN_ARGS)
    ve_allocate = tx.deploy("veAllocate")
    ve_delegation = tx.deploy("veDelegation", *VE_DELEGATION_ARGS, ve_ocean)
    fee_distributor = tx.deploy("veFeeDistributor", ve_ocean, now, ocean, me, me)
    fee_estimate = tx.deploy("veFeeEstimate", ve_ocean, fee_distributor)
    checker = tx.deploy("SmartWalletChecker")
    tx.call("veOCEAN", ve_ocean, "commit_smart_wallet_checker", [checker])
    tx.call("veOCEAN", ve_ocean, "apply_smart_wallet_checker", [])
    return {
        "veOCEAN": ve_ocean,
        "veAllocate": ve_allocate,
        "veDelegation": ve_delegation,
        "veFeeDistributor": fee_distributor,
        "veFeeEstimate": fee_estimate,
        "SmartWalletChecker": checker,
    }


def mint_ocean(
    w3: Web3,
    owner: LocalAccount,
    ocean: str,
    to: str,
    amount_wei: int,
    *,
    timeout: float = RECEIPT_TIMEOUT,
) -> TxReceipt:
    """Mint ``amount_wei`` of the OCEAN token at ``ocean`` to ``to``; return the receipt.

    Only the token's owner (the deployer) may mint; the cap is 1.41e9 OCEAN. Raises
    :class:`DeploymentError` if the mint fails.
    """
    tx = _Sender(w3, owner, timeout)
    return tx.transact("OceanToken", ocean, "mint", [Web3.to_checksum_address(to), amount_wei])

"""Deploy the Ocean v4 contracts to any EVM node: the dev chain, anvil, ganache.

Thirteen transactions in the order of the contracts repo's deploy script for an
unknown ("development") chain (``/work/shared/spec/chain-setup.md`` §2). Every
transaction is signed locally by the deployer's key (no unlocked node accounts are
needed), nonces are counted locally from the deployer's pending nonce, and gas limits
are fixed (an estimate costs a round trip and, on py-evm, extra EVM runs). Fees follow
the node's current gas price, so a 1 gwei EIP-1559 base fee (anvil) works as well as
eth-tester's.

With a fresh deployer the contract addresses depend only on the deployer's address,
so the barge mnemonic's account 0 gives barge's addresses on every backend.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypedDict

from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.types import TxReceipt

from tidegate.chain.contracts import load_artifact

# Required by FactoryRouter (non-zero) but unused: we deploy no balancer pools.
BPOOL_TEMPLATE = "0x000000000000000000000000000000000000dEaD"
# The largest deployment (ERC20TemplateEnterprise) takes 5.32 M gas.
DEPLOY_GAS = 6_000_000
CALL_GAS = 300_000
RECEIPT_TIMEOUT = 120.0


class OceanAddresses(TypedDict):
    """Deployed contract addresses under the barge key names (a JSON-ready dict)."""

    Ocean: str
    OPFCommunityFeeCollector: str
    Router: str
    FixedPrice: str
    Dispenser: str
    ERC20Template: dict[str, str]
    ERC721Template: dict[str, str]
    ERC721Factory: str
    chainId: int
    startBlock: int


class DeploymentError(RuntimeError):
    """A deployment transaction could not be sent or was mined with status 0."""


class _Sender:
    """Signs and sends transactions for one account with locally counted nonces."""

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

    def transact(self, what: str, to: ChecksumAddress | None, data: str, gas: int) -> TxReceipt:
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
        receipt = self.w3.eth.wait_for_transaction_receipt(
            tx_hash, timeout=self.timeout, poll_latency=0.01
        )
        if receipt["status"] != 1:
            raise DeploymentError(f"{what} reverted in tx {tx_hash.to_0x_hex()}")
        return receipt

    def deploy(self, name: str, *args: Any) -> tuple[str, int]:
        """Deploy the artifact ``name``; return its EIP-55 address and block number."""
        artifact = load_artifact(name)
        factory = self.w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
        data = factory.constructor(*args).data_in_transaction
        receipt = self.transact(f"deploying {name}", None, data, DEPLOY_GAS)
        address = receipt["contractAddress"]
        if address is None:
            raise DeploymentError(f"deploying {name}: the receipt has no contract address")
        return Web3.to_checksum_address(address), int(receipt["blockNumber"])

    def call(self, name: str, address: str, fn: str, args: Sequence[Any]) -> TxReceipt:
        """Send ``fn(*args)`` to the ``name`` contract at ``address``."""
        target = self.w3.eth.contract(
            address=Web3.to_checksum_address(address), abi=load_artifact(name).abi
        )
        data = target.encode_abi(fn, list(args))
        return self.transact(f"{name}.{fn}", target.address, data, CALL_GAS)


def deploy_ocean_contracts(
    w3: Web3, deployer: LocalAccount, *, timeout: float = RECEIPT_TIMEOUT
) -> OceanAddresses:
    """Deploy OCEAN, the fee collector, router, FRE, dispenser, templates and factory.

    ERC20 template 1 is ``ERC20Template``, template 2 ``ERC20TemplateEnterprise``. The
    deployer owns OCEAN and the router and collects OPF fees. Each call deploys a new,
    independent set (the router accepts one factory). ``chainId`` is the node's and
    ``startBlock`` the block of the first transaction. Raises :class:`DeploymentError`
    when a transaction fails, and web3's errors when the node cannot be reached.

    Nonces are counted from the deployer's pending nonce: nothing else may send from
    the deployer's account meanwhile.
    """
    return _deploy_all(_Sender(w3, deployer, timeout))


def _deploy_all(tx: _Sender) -> OceanAddresses:
    me = tx.account.address
    ocean, start_block = tx.deploy("OceanToken", me)
    opf, _ = tx.deploy("OPFCommunityFeeCollector", me, me)
    router, _ = tx.deploy("FactoryRouter", me, ocean, BPOOL_TEMPLATE, opf, [])
    fre, _ = tx.deploy("FixedRateExchange", router)
    dispenser, _ = tx.deploy("Dispenser", router)
    erc20, _ = tx.deploy("ERC20Template")
    erc20_enterprise, _ = tx.deploy("ERC20TemplateEnterprise")
    erc721, _ = tx.deploy("ERC721Template")
    factory, _ = tx.deploy("ERC721Factory", erc721, erc20, router)
    tx.call("ERC721Factory", factory, "addTokenTemplate", [erc20_enterprise])
    tx.call("FactoryRouter", router, "addFactory", [factory])
    tx.call("FactoryRouter", router, "addFixedRateContract", [fre])
    tx.call("FactoryRouter", router, "addDispenserContract", [dispenser])
    return OceanAddresses(
        Ocean=ocean,
        OPFCommunityFeeCollector=opf,
        Router=router,
        FixedPrice=fre,
        Dispenser=dispenser,
        ERC20Template={"1": erc20, "2": erc20_enterprise},
        ERC721Template={"1": erc721},
        ERC721Factory=factory,
        chainId=tx.chain_id,
        startBlock=start_block,
    )


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
    return tx.call("OceanToken", ocean, "mint", [Web3.to_checksum_address(to), amount_wei])

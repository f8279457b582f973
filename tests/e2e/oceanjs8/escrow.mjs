// The consumer's side of a paid compute v2 job with the real ocean.js 8.6.2: its
// ConfigHelper finds the Escrow contract in the address file `tidegate dev` wrote, and
// its EscrowContract.verifyFundsForEscrowPayment approves, deposits and authorizes the
// provider from the `payment` object Tidegate quotes (as ocean.js's ComputeFlow test
// calls it: twice the amount offered as deposit, the amount, minLockSeconds, 10 locks).
//
// Environment: E2E_RPC_URL, ADDRESS_FILE, E2E_CONSUMER_KEY, E2E_PAYMENT (the quote's
// JSON). Writes {"client": {...}, "steps": {name: {ok, detail | error}}} to argv[2].
import fs from 'fs'
import { ethers } from 'ethers'
import { ConfigHelper, EscrowContract, unitsToAmount } from '@oceanprotocol/lib'

const env = process.env
const steps = {}
const state = {}

async function step (name, needs, fn) {
  const missing = needs.filter((n) => !(steps[n] && steps[n].ok))
  if (missing.length) {
    steps[name] = { ok: false, blocked_by: missing }
    return
  }
  try {
    steps[name] = { ok: true, detail: (await fn()) || {} }
  } catch (err) {
    steps[name] = { ok: false, error: String(err && err.message ? err.message : err).slice(0, 4000) }
  }
}

async function main () {
  const rpc = new ethers.JsonRpcProvider(env.E2E_RPC_URL)
  // ocean.js sends approve, deposit and authorize back to back; a plain Wallet asks the
  // node for the pending nonce each time and, right after a receipt, sometimes gets the
  // previous one ("nonce too low", which ocean.js logs and swallows). A dApp's wallet
  // counts its own nonces: ethers' NonceManager does.
  const consumer = new ethers.NonceManager(new ethers.Wallet(env.E2E_CONSUMER_KEY, rpc))
  const address = await consumer.getAddress()
  const payment = JSON.parse(env.E2E_PAYMENT)

  await step('config', [], async () => {
    state.config = new ConfigHelper().getConfig(8996)
    return { escrow: state.config.escrow, ocean: state.config.oceanTokenAddress }
  })
  await step('verify_funds', ['config'], async () => {
    state.escrow = new EscrowContract(ethers.getAddress(state.config.escrow), consumer, 8996,
      state.config)
    const amountToDeposit = (payment.amount * 2).toString()
    const result = await state.escrow.verifyFundsForEscrowPayment(
      payment.token, payment.payee,
      await unitsToAmount(consumer, payment.token, amountToDeposit),
      payment.amount.toString(), payment.minLockSeconds.toString(), '10')
    if (!result.isValid) throw new Error('not valid: ' + result.message)
    return result
  })
  await step('read_back', ['verify_funds'], async () => {
    const funds = await state.escrow.getUserFunds(address, payment.token)
    const auths = await state.escrow.getAuthorizations(payment.token, address, payment.payee)
    return {
      available: funds[0].toString(),
      locked: funds[1].toString(),
      payees: auths.map((a) => a[0])
    }
  })
  fs.writeFileSync(process.argv[2], JSON.stringify({ client: { address }, steps }, null, 1))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

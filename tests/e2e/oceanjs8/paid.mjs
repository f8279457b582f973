// A paid compute v2 job with the real ocean.js 8.6.2, end to end on `tidegate dev`:
// ProviderInstance.initializeCompute quotes the escrow `payment`, EscrowContract
// .verifyFundsForEscrowPayment deposits and authorizes from it (as escrow.mjs), then
// ProviderInstance.computeStart starts the job, paid from that deposit; the job's end
// is settled by Tidegate (the lock claimed for the minutes used).
//
// Environment: E2E_PROVIDER_URL, E2E_RPC_URL, ADDRESS_FILE, E2E_CONSUMER_KEY,
// E2E_ENV_ID. Writes {"client": {...}, "steps": {name: {ok, detail | error}}} to argv[2].
import fs from 'fs'
import { ethers } from 'ethers'
import { ConfigHelper, EscrowContract, ProviderInstance, unitsToAmount } from '@oceanprotocol/lib'

const env = process.env
const providerUrl = env.E2E_PROVIDER_URL.replace(/\/+$/, '')
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
  // A wallet that counts its own nonces (see escrow.mjs).
  const consumer = new ethers.NonceManager(new ethers.Wallet(env.E2E_CONSUMER_KEY, rpc))
  const address = await consumer.getAddress()
  const container = { entrypoint: 'python $ALGO', image: 'python', tag: '3.11',
    checksum: 'sha256:' + 'ab'.repeat(32) }
  const algorithm = { meta: { rawcode: "import time\ntime.sleep(1)\nprint('paid', flush=True)\n",
    container } }
  const duration = 120
  const funds = async () => {
    const f = await state.escrow.getUserFunds(address, state.token)
    return { available: f[0].toString(), locked: f[1].toString() }
  }

  await step('environment', [], async () => {
    const envs = await ProviderInstance.getComputeEnvironments(providerUrl)
    state.env = envs.find((e) => e.id === env.E2E_ENV_ID)
    if (!state.env) throw new Error('no environment ' + env.E2E_ENV_ID)
    state.token = state.env.fees['8996'][0].feeToken
    state.config = new ConfigHelper().getConfig(8996)
    state.escrow = new EscrowContract(ethers.getAddress(state.config.escrow), consumer, 8996,
      state.config)
    return { id: state.env.id, free: state.env.free || null, token: state.token }
  })
  await step('initialize_compute', ['environment'], async () => {
    const result = await ProviderInstance.initializeCompute([], algorithm, state.env.id,
      state.token, duration, providerUrl, address, [], 8996)
    state.payment = result.payment
    return result
  })
  await step('verify_funds', ['initialize_compute'], async () => {
    const p = state.payment
    const result = await state.escrow.verifyFundsForEscrowPayment(
      p.token, p.payee, await unitsToAmount(consumer, p.token, (p.amount * 2).toString()),
      p.amount.toString(), p.minLockSeconds.toString(), '10')
    if (!result.isValid) throw new Error('not valid: ' + result.message)
    return { before: await funds() }
  })
  await step('compute_start', ['verify_funds'], async () => {
    const jobs = await ProviderInstance.computeStart(providerUrl, consumer, state.env.id, [],
      algorithm, duration, state.token, [], 8996)
    const job = Array.isArray(jobs) ? jobs[0] : jobs
    state.jobId = job.jobId
    return { jobId: job.jobId, isFree: job.isFree, agreementId: job.agreementId,
      funds: await funds() }
  })
  await step('finished_and_settled', ['compute_start'], async () => {
    const deadline = Date.now() + 120 * 1000
    let job
    for (;;) {
      const jobs = await ProviderInstance.computeStatus(providerUrl, consumer, state.jobId)
      job = Array.isArray(jobs) ? jobs[0] : jobs
      const now = await funds()
      if (job && [31, 32, 70].includes(job.status) && now.locked === '0') {
        return { status: job.status, funds: now }
      }
      if (Date.now() > deadline) throw new Error(JSON.stringify({ job, funds: now }))
      await new Promise((resolve) => setTimeout(resolve, 500))
    }
  })
  fs.writeFileSync(process.argv[2], JSON.stringify({ client: { address }, steps }, null, 1))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

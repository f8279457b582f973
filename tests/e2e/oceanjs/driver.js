// Drive the real ocean.js 3.4.6 client (ethers v5) against a running Tidegate.
//
// Every call that reaches Tidegate is made by ocean.js's own code: ProviderInstance
// (getEndpoints, isValidProvider, encrypt, checkDidFiles, getFileInfo, initialize,
// getDownloadUrl), Aquarius (validate, waitForIndexer, resolve), the createAsset
// publishing helper, Datatoken (mint, startOrder) and downloadFile. This script only
// chains them and records what happened.
//
// Compute: getComputeEnvironments, initializeCompute, Datatoken.startOrder for the
// environment's consumerAddress, computeStart, computeStatus, getComputeResultUrl
// (fetched here, as ocean.js leaves the GET to its caller), computeStop and
// computeDelete. Stop and delete are expected to be refused (ocean.js 3.4.6 signs stop
// without the nonce and sends delete without one); those steps record what Tidegate
// answered, read from ocean.js's own error log (status) and its thrown error (body).
//
// Environment: E2E_PROVIDER_URL (also the Aquarius URL), E2E_RPC_URL, ADDRESS_FILE
// (ocean.js's ConfigHelper reads it for chain 8996), E2E_FILE_URL, E2E_FILE_SHA256,
// E2E_ALGO_URL (the compute algorithm), E2E_PUBLISHER_KEY, E2E_CONSUMER_KEY,
// E2E_COMPUTE (0 skips the compute steps), E2E_ALGO_IMAGE, E2E_ALGO_TAG,
// E2E_ALGO_ENTRYPOINT, E2E_ALGO_CHECKSUM, E2E_ALGO_LANGUAGE, E2E_ALGO_VERSION (the
// algorithm's container; default python / 3.11 / `python $ALGO`), E2E_DOCKER_PROBES (a JSON
// list of {name, url, container, env, expect: run | refused | expire}: after the compute
// steps, one more algorithm and job each, on the dataset above; for the Docker engine's
// guarantees). Writes a JSON report to the path in argv[2]:
// {"client": {...}, "steps": {name: {ok, seconds, detail | error | blocked_by}}}.
'use strict'

const crypto = require('crypto')
const fs = require('fs')
const { ethers } = require('ethers')
const lib = require('@oceanprotocol/lib')

const env = process.env
const providerUrl = env.E2E_PROVIDER_URL.replace(/\/+$/, '')
const fileUrl = env.E2E_FILE_URL
const fileSha256 = env.E2E_FILE_SHA256
const algoUrl = env.E2E_ALGO_URL
const SERVICE_ID = 'ccb398c50d6abd5b456e8d7242bd856a1767a890b537c2f8c10ba8b8a10e6025'
const COMPUTE_SERVICE_ID = 'c0' + '5e'.repeat(31)
const ALGO_SERVICE_ID = 'a1' + '90'.repeat(31)
const FINISHED = [31, 32, 70] // data / algorithm provisioning failed, completed
const STATUS_TIMEOUT_MS = 60000

const steps = {}
const state = {}

async function step (name, needs, fn) {
  const missing = needs.filter((n) => !(steps[n] && steps[n].ok))
  if (missing.length) {
    steps[name] = { ok: false, blocked_by: missing }
    return
  }
  const started = process.hrtime.bigint()
  const seconds = () => Number(process.hrtime.bigint() - started) / 1e9
  try {
    const detail = await fn()
    steps[name] = { ok: true, seconds: +seconds().toFixed(3), detail: detail || {} }
  } catch (err) {
    steps[name] = {
      ok: false,
      seconds: +seconds().toFixed(3),
      error: String(err && err.message ? err.message : err).slice(0, 4000),
      stack: String(err && err.stack).slice(0, 2000)
    }
  }
}

function sha256 (buffer) {
  return crypto.createHash('sha256').update(Buffer.from(buffer)).digest('hex')
}

async function download (label) {
  // getDownloadUrl signs did + nonce (GET /nonce + 1, ethers signMessage, v = 27/28).
  const url = await lib.ProviderInstance.getDownloadUrl(
    state.did, SERVICE_ID, 0, state.orderTx, providerUrl, state.consumer
  )
  if (!url) throw new Error('getDownloadUrl returned nothing (no download endpoint)')
  // ocean.js's own helper: fetch, !ok → error, filename from content-disposition.
  const result = await lib.downloadFile(url, 0)
  const digest = sha256(result.data)
  if (digest !== fileSha256) throw new Error(`sha256 ${digest} != ${fileSha256}`)
  return { label, bytes: result.data.byteLength, sha256: digest, filename: result.filename }
}

async function main (outPath) {
  const rpc = new ethers.providers.StaticJsonRpcProvider(env.E2E_RPC_URL)
  rpc.pollingInterval = 100
  const publisher = new ethers.Wallet(env.E2E_PUBLISHER_KEY, rpc)
  const consumer = new ethers.Wallet(env.E2E_CONSUMER_KEY, rpc)
  state.consumer = consumer
  const pkg = JSON.parse(fs.readFileSync(require.resolve('@oceanprotocol/lib').replace(/dist[\\/][^\\/]+$/, 'package.json'), 'utf8'))
  const report = {
    client: {
      '@oceanprotocol/lib': pkg.version,
      ethers: ethers.version,
      node: process.version
    },
    steps
  }
  const aquarius = new lib.Aquarius(providerUrl)
  const config = new lib.ConfigHelper().getConfig(8996)

  await step('getEndpoints', [], async () => {
    const root = await lib.ProviderInstance.getEndpoints(providerUrl)
    const valid = await lib.ProviderInstance.isValidProvider(providerUrl)
    if (!valid) throw new Error('isValidProvider() is false')
    const services = await lib.ProviderInstance.getServiceEndpoints(providerUrl, root)
    return { providerAddresses: root.providerAddresses, services: services.map((s) => s.serviceName) }
  })

  await step('getNonce', ['getEndpoints'], async () => {
    // GET with Content-Type: application/json and no body; ocean.js does Number(nonce).
    const nonce = await lib.ProviderInstance.getNonce(providerUrl, consumer.address)
    if (!Number.isInteger(nonce)) throw new Error(`nonce ${nonce} is not an integer`)
    return { nonce }
  })

  await step('encrypt', ['getEndpoints'], async () => {
    // ocean.js never checks the status: a 4xx body would be taken as ciphertext.
    const files = { datatokenAddress: '0x0', nftAddress: '0x0', files: [{ type: 'url', url: fileUrl, method: 'GET' }] }
    const ciphertext = await lib.ProviderInstance.encrypt(files, 8996, providerUrl)
    if (!/^0x[0-9a-f]+$/i.test(ciphertext)) throw new Error(`not a hex ciphertext: ${ciphertext.slice(0, 200)}`)
    return { length: ciphertext.length }
  })

  await step('getFileInfo', ['getEndpoints'], async () => {
    const info = await lib.ProviderInstance.getFileInfo(
      { type: 'url', url: fileUrl, method: 'GET' }, providerUrl
    )
    if (!info.length || info[0].valid !== true) throw new Error(JSON.stringify(info))
    return { files: info }
  })

  await step('publish', ['encrypt'], async () => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
    const ddo = {
      '@context': ['https://w3id.org/did/v1'],
      id: '',
      version: '4.1.0',
      chainId: 8996,
      nftAddress: '0x0',
      metadata: {
        created: now,
        updated: now,
        type: 'dataset',
        name: 'tidegate-e2e-oceanjs',
        description: 'Published by the ocean.js e2e driver',
        tags: ['e2e'],
        author: 'tidegate',
        license: 'MIT',
        additionalInformation: { termsAndConditions: true }
      },
      services: [{
        id: SERVICE_ID,
        type: 'access',
        files: '',
        datatokenAddress: '0x0',
        serviceEndpoint: providerUrl,
        timeout: 3600
      }]
    }
    const files = { datatokenAddress: '0x0', nftAddress: '0x0', files: [{ type: 'url', url: fileUrl, method: 'GET' }] }
    // createAsset: NFT + datatoken, encrypt files and DDO (JSON, flags 2), Aquarius
    // validate for the hash, setMetadata.
    const did = await lib.createAsset(
      'tidegate-e2e', 'TGE2E', publisher, files, 1, ddo, true, providerUrl,
      lib.ZERO_ADDRESS, aquarius
    )
    if (!did) throw new Error('createAsset returned nothing (see stderr)')
    state.did = did
    return { did }
  })

  await step('resolve', ['publish'], async () => {
    const asset = await aquarius.waitForIndexer(state.did, undefined, undefined, 200, 150)
    if (!asset) throw new Error('the DDO never appeared in Tidegate\'s Aquarius API (30 s)')
    state.asset = asset
    state.datatoken = asset.services[0].datatokenAddress
    return { did: asset.id, datatoken: state.datatoken, event: asset.event }
  })

  await step('waitForIndexer_txid', ['resolve'], async () => {
    // ocean.js 3.4.6 compares ddo.event.txid with the txid it is given; Aquarius (and
    // Tidegate) name that field event.tx, so the comparison never matches.
    const asset = await aquarius.waitForIndexer(state.did, state.asset.event.tx, undefined, 50, 2)
    return { matched: Boolean(asset), eventKeys: Object.keys(state.asset.event || {}) }
  })

  await step('querySearch', ['resolve'], async () => {
    // Aquarius.resolve, getAssetMetadata and querySearch; the Ocean Market filters by the
    // Elasticsearch document id (_id = the DID).
    const resolved = await aquarius.resolve(state.did)
    const metadata = await aquarius.getAssetMetadata(state.did)
    const ids = async (query) =>
      (await aquarius.querySearch(query)).hits.hits.map((hit) => hit._source.id)
    const byId = await ids({ query: { bool: { filter: [{ terms: { _id: [state.did] } }] } } })
    const byNft = await ids({ query: { term: { nftAddress: state.asset.nftAddress } } })
    if (resolved.id !== state.did) throw new Error(`resolve -> ${resolved.id}`)
    if (metadata.name !== 'tidegate-e2e-oceanjs') throw new Error(`metadata -> ${JSON.stringify(metadata)}`)
    if (byId.length !== 1 || byId[0] !== state.did) throw new Error(`terms _id -> ${JSON.stringify(byId)}`)
    if (byNft.length !== 1 || byNft[0] !== state.did) throw new Error(`term nftAddress -> ${JSON.stringify(byNft)}`)
    return { byId, byNft }
  })

  await step('checkDidFiles', ['resolve'], async () => {
    const info = await lib.ProviderInstance.checkDidFiles(state.did, SERVICE_ID, providerUrl, false)
    if (info.length !== 1 || info[0].valid !== true) throw new Error(JSON.stringify(info))
    return { files: info }
  })

  await step('initialize', ['resolve'], async () => {
    const init = await lib.ProviderInstance.initialize(
      state.did, SERVICE_ID, 0, consumer.address, providerUrl
    )
    if (!init || !init.providerFee) throw new Error(`no providerFee in ${JSON.stringify(init)}`)
    state.providerFee = init.providerFee
    return { initialize: init }
  })

  await step('startOrder', ['initialize'], async () => {
    const asPublisher = new lib.Datatoken(publisher, 8996, config)
    const minted = await asPublisher.mint(state.datatoken, publisher.address, '1', consumer.address)
    if (!minted) throw new Error('Datatoken.mint failed (ocean.js returned null; see stderr)')
    const asConsumer = new lib.Datatoken(consumer, 8996, config)
    const tx = await asConsumer.startOrder(state.datatoken, consumer.address, 0, state.providerFee)
    if (!tx) throw new Error('Datatoken.startOrder failed (ocean.js returned null; see stderr)')
    const receipt = await rpc.getTransactionReceipt(tx.hash)
    if (receipt.status !== 1) throw new Error(`order reverted: ${tx.hash}`)
    state.orderTx = tx.hash
    return { orderTx: tx.hash }
  })

  await step('download', ['startOrder'], () => download('first'))
  await step('redownload', ['download'], () => download('again'))

  // A free asset (dispenser) ordered with ocean.js's orderAsset, which reads the DDO's
  // indexer fields: datatokens[0].address and stats.price.tokenAddress.
  await step('free.publish', ['encrypt'], async () => {
    const ddo = ddoTemplate('tidegate-e2e-oceanjs-free', 'dataset', { id: SERVICE_ID, type: 'access' })
    ddo.stats = { price: { value: '0' } } // createAsset: value "0" creates a dispenser
    const files = { datatokenAddress: '0x0', nftAddress: '0x0', files: [{ type: 'url', url: fileUrl, method: 'GET' }] }
    const did = await lib.createAsset(
      'tidegate-e2e-free', 'TGFREE', publisher, files, 1, ddo, true, providerUrl,
      lib.ZERO_ADDRESS, aquarius
    )
    if (!did) throw new Error('createAsset returned nothing (see stderr)')
    state.freeDid = did
    return { did }
  })

  await step('free.resolve', ['free.publish'], async () => {
    const asset = await aquarius.waitForIndexer(state.freeDid, undefined, undefined, 200, 150)
    if (!asset) throw new Error('the DDO never appeared in Tidegate\'s Aquarius API (30 s)')
    state.freeAsset = asset
    return { datatokens: asset.datatokens, stats: asset.stats, nft: asset.nft }
  })

  await step('free.orderAsset', ['free.resolve'], async () => {
    const asset = state.freeAsset
    const datatoken = new lib.Datatoken(consumer, 8996, config)
    const tx = await lib.orderAsset(asset, consumer, config, datatoken, providerUrl)
    if (!tx) throw new Error('orderAsset returned nothing (see stderr)')
    const receipt = await (tx.wait ? tx.wait() : rpc.getTransactionReceipt(tx.hash))
    if (receipt.status !== 1) throw new Error(`order reverted: ${tx.hash}`)
    const url = await lib.ProviderInstance.getDownloadUrl(
      asset.id, asset.services[0].id, 0, tx.hash, providerUrl, consumer
    )
    const result = await lib.downloadFile(url, 0)
    const digest = sha256(result.data)
    if (digest !== fileSha256) throw new Error(`sha256 ${digest} != ${fileSha256}`)
    return { orderTx: tx.hash, bytes: result.data.byteLength }
  })

  // A dApp on barge signs through the node: ethers' JsonRpcSigner sends transactions
  // with eth_sendTransaction and signs provider requests with personal_sign, both
  // answered by the dev chain for its unlocked barge accounts.
  const nodeAddress = env.E2E_NODE_SIGNER_ADDRESS
  await step('nodeSigner.signMessage', ['getEndpoints'], async () => {
    const accounts = await rpc.listAccounts() // eth_accounts
    if (!accounts.map((a) => a.toLowerCase()).includes(nodeAddress.toLowerCase())) {
      throw new Error(`eth_accounts lacks ${nodeAddress}: ${accounts}`)
    }
    const signer = rpc.getSigner(nodeAddress)
    const signature = await lib.ProviderInstance.signProviderRequest(signer, 'tidegate e2e')
    const recovered = ethers.utils.verifyMessage(ethers.utils.arrayify(ethers.utils.solidityKeccak256(['bytes'], [ethers.utils.hexlify(ethers.utils.toUtf8Bytes('tidegate e2e'))])), signature)
    if (recovered.toLowerCase() !== nodeAddress.toLowerCase()) {
      throw new Error(`personal_sign signature recovers ${recovered}, not ${nodeAddress}`)
    }
    return { accounts: accounts.length, recovered }
  })

  await step('nodeSigner.download', ['nodeSigner.signMessage', 'startOrder'], async () => {
    const signer = rpc.getSigner(nodeAddress)
    const init = await lib.ProviderInstance.initialize(
      state.did, SERVICE_ID, 0, nodeAddress, providerUrl
    )
    if (!init || !init.providerFee) throw new Error(`no providerFee in ${JSON.stringify(init)}`)
    const asPublisher = new lib.Datatoken(publisher, 8996, config)
    const minted = await asPublisher.mint(state.datatoken, publisher.address, '1', nodeAddress)
    if (!minted) throw new Error('Datatoken.mint failed (see stderr)')
    const asSigner = new lib.Datatoken(signer, 8996, config)
    const tx = await asSigner.startOrder(state.datatoken, nodeAddress, 0, init.providerFee)
    if (!tx) throw new Error('startOrder through the node signer failed (see stderr)')
    const receipt = await rpc.getTransactionReceipt(tx.hash)
    if (receipt.status !== 1) throw new Error(`order reverted: ${tx.hash}`)
    const url = await lib.ProviderInstance.getDownloadUrl(
      state.did, SERVICE_ID, 0, tx.hash, providerUrl, signer
    )
    const result = await lib.downloadFile(url, 0)
    const digest = sha256(result.data)
    if (digest !== fileSha256) throw new Error(`sha256 ${digest} != ${fileSha256}`)
    return { orderTx: tx.hash, bytes: result.data.byteLength, validUntil: init.providerFee.validUntil }
  })

  if (env.E2E_COMPUTE !== '0') {
    const c = await compute(publisher, consumer, aquarius, config)
    if (env.E2E_DOCKER_PROBES) await dockerProbes(c, publisher, consumer, aquarius, config)
  }

  fs.writeFileSync(outPath, JSON.stringify(report, null, 1))
}

function ddoTemplate (name, type, service, extra) {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z')
  return {
    '@context': ['https://w3id.org/did/v1'],
    id: '',
    version: '4.1.0',
    chainId: 8996,
    nftAddress: '0x0',
    metadata: {
      created: now,
      updated: now,
      type,
      name,
      description: `Published by the ocean.js e2e driver (${type})`,
      tags: ['e2e'],
      author: 'tidegate',
      license: 'MIT',
      ...extra
    },
    services: [{
      files: '',
      datatokenAddress: '0x0',
      serviceEndpoint: providerUrl,
      timeout: 3600,
      ...service
    }]
  }
}

// A failed ocean.js provider call logs ("<call> failed: ", status, statusText, body) and
// ("Payload was:", payload) through LoggerInstance.error before it throws: keep them.
const providerLog = []
function watchProviderErrors () {
  const original = lib.LoggerInstance.error.bind(lib.LoggerInstance)
  lib.LoggerInstance.error = (...args) => {
    providerLog.push(args)
    original(...args)
  }
}

async function refusal (label, call) {
  const from = providerLog.length
  let value = null
  let error = null
  try {
    value = await call()
  } catch (err) {
    error = String(err && err.message ? err.message : err)
  }
  const logged = providerLog.slice(from)
  const failed = logged.find((args) => typeof args[1] === 'number')
  const payload = logged.find((args) => args[0] === 'Payload was:')
  let body = null
  try {
    body = error ? JSON.parse(error) : null
  } catch (_) {
    body = null
  }
  return {
    call: label,
    threw: error !== null,
    error,
    status: failed ? failed[1] : null,
    body,
    sent: payload ? Object.keys(payload[1]).sort() : null,
    // What ocean.js logged after the status (statusText, the answer's body), as text.
    logged: failed ? failed.slice(2).map((x) => typeof x === 'string' ? x : JSON.stringify(x)) : null,
    value
  }
}

async function compute (publisher, consumer, aquarius, config) {
  const c = {}
  watchProviderErrors()
  const files = (url) => ({ datatokenAddress: '0x0', nftAddress: '0x0', files: [{ type: 'url', url, method: 'GET' }] })

  await step('compute.publishAlgorithm', ['encrypt'], async () => {
    const ddo = ddoTemplate('tidegate-e2e-oceanjs-algorithm', 'algorithm',
      { id: ALGO_SERVICE_ID, type: 'access' },
      {
        algorithm: {
          language: env.E2E_ALGO_LANGUAGE || 'python',
          version: env.E2E_ALGO_VERSION || '3.11',
          container: {
            entrypoint: env.E2E_ALGO_ENTRYPOINT || 'python $ALGO',
            image: env.E2E_ALGO_IMAGE || 'python',
            tag: env.E2E_ALGO_TAG || '3.11',
            checksum: env.E2E_ALGO_CHECKSUM ||
              'sha256:' + crypto.createHash('sha256').update('tidegate-e2e python:3.11').digest('hex')
          }
        }
      })
    const did = await lib.createAsset('tidegate-e2e-algo', 'TGALG', publisher, files(algoUrl), 1,
      ddo, true, providerUrl, lib.ZERO_ADDRESS, aquarius)
    if (!did) throw new Error('createAsset returned nothing (see stderr)')
    c.algoDid = did
    return { did }
  })

  await step('compute.publishDataset', ['encrypt'], async () => {
    // The dataset trusts every algorithm its publisher published.
    const ddo = ddoTemplate('tidegate-e2e-oceanjs-compute', 'dataset', {
      id: COMPUTE_SERVICE_ID,
      type: 'compute',
      compute: {
        allowRawAlgorithm: false,
        allowNetworkAccess: false,
        publisherTrustedAlgorithmPublishers: [publisher.address],
        publisherTrustedAlgorithms: []
      }
    })
    const did = await lib.createAsset('tidegate-e2e-c2d', 'TGC2D', publisher, files(fileUrl), 1,
      ddo, true, providerUrl, lib.ZERO_ADDRESS, aquarius)
    if (!did) throw new Error('createAsset returned nothing (see stderr)')
    c.did = did
    return { did }
  })

  await step('compute.resolve', ['compute.publishAlgorithm', 'compute.publishDataset'], async () => {
    const algo = await aquarius.waitForIndexer(c.algoDid, undefined, undefined, 200, 150)
    const dataset = await aquarius.waitForIndexer(c.did, undefined, undefined, 200, 150)
    if (!algo || !dataset) throw new Error('a compute DDO never appeared in Tidegate\'s Aquarius API')
    c.algoDatatoken = algo.services[0].datatokenAddress
    c.datatoken = dataset.services[0].datatokenAddress
    return { algorithm: algo.metadata.algorithm, datasetService: dataset.services[0].type }
  })

  await step('compute.getComputeEnvironments', ['getEndpoints'], async () => {
    const envs = await lib.ProviderInstance.getComputeEnvironments(providerUrl)
    const list = envs[8996] || []
    const free = list.find((e) => Number(e.priceMin) === 0)
    if (!free) throw new Error(`no free environment for chain 8996: ${JSON.stringify(envs)}`)
    c.env = free
    return { chains: Object.keys(envs), ids: list.map((e) => e.id), env: free }
  })

  await step('compute.initializeCompute', ['compute.resolve', 'compute.getComputeEnvironments'], async () => {
    c.validUntil = Math.floor(Date.now() / 1000) + 3600
    const init = await lib.ProviderInstance.initializeCompute(
      [{ documentId: c.did, serviceId: COMPUTE_SERVICE_ID }],
      { documentId: c.algoDid, serviceId: ALGO_SERVICE_ID },
      c.env.id, c.validUntil, providerUrl, consumer.address
    )
    if (!init || !init.datasets || !init.datasets[0].providerFee || !init.algorithm) {
      throw new Error(`unexpected initializeCompute answer ${JSON.stringify(init)}`)
    }
    c.init = init
    return { initializeCompute: init }
  })

  await step('compute.startOrder', ['compute.initializeCompute'], async () => {
    // Orders for compute name the environment's consumerAddress as the consumer.
    const asPublisher = new lib.Datatoken(publisher, 8996, config)
    const asConsumer = new lib.Datatoken(consumer, 8996, config)
    const order = async (datatoken, quote) => {
      const minted = await asPublisher.mint(datatoken, publisher.address, '1', consumer.address)
      if (!minted) throw new Error('Datatoken.mint failed (see stderr)')
      await minted.wait()
      const tx = await asConsumer.startOrder(datatoken, c.env.consumerAddress, 0, quote.providerFee)
      if (!tx) throw new Error('Datatoken.startOrder failed (see stderr)')
      const receipt = await tx.wait()
      if (receipt.status !== 1) throw new Error(`order reverted: ${tx.hash}`)
      return tx.hash
    }
    c.datasetTx = await order(c.datatoken, c.init.datasets[0])
    c.algoTx = await order(c.algoDatatoken, c.init.algorithm)
    return { datasetTx: c.datasetTx, algorithmTx: c.algoTx, consumer: c.env.consumerAddress }
  })

  await step('compute.computeStart', ['compute.startOrder'], async () => {
    const jobs = await lib.ProviderInstance.computeStart(
      providerUrl, consumer, c.env.id,
      { documentId: c.did, serviceId: COMPUTE_SERVICE_ID, transferTxId: c.datasetTx },
      { documentId: c.algoDid, serviceId: ALGO_SERVICE_ID, transferTxId: c.algoTx }
    )
    // computeStart returns null instead of throwing on failure.
    const job = Array.isArray(jobs) ? jobs[0] : jobs
    if (!job || !job.jobId) throw new Error(`computeStart returned ${JSON.stringify(jobs)} (see stderr)`)
    c.job = job
    return { jobId: job.jobId, status: job.status, agreementId: job.agreementId }
  })

  await step('compute.computeStop', ['compute.computeStart'], () =>
    // ocean.js 3.4.6 signs consumerAddress + jobId only and sends no documentId.
    refusal('computeStop', () => lib.ProviderInstance.computeStop(
      c.did, consumer.address, c.job.jobId, providerUrl, consumer, c.job.agreementId)))

  await step('compute.computeStatus', ['compute.computeStart'], async () => {
    const seen = []
    const deadline = Date.now() + STATUS_TIMEOUT_MS
    let job
    for (;;) {
      const jobs = await lib.ProviderInstance.computeStatus(providerUrl, consumer.address, c.job.jobId)
      job = Array.isArray(jobs) ? jobs[0] : jobs
      if (!job) throw new Error(`computeStatus returned ${JSON.stringify(jobs)}`)
      if (seen[seen.length - 1] !== job.status) seen.push(job.status)
      if (FINISHED.includes(job.status) || Date.now() > deadline) break
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
    if (job.status !== 70) throw new Error(`the job ended with ${JSON.stringify(job)}`)
    c.results = job.results
    return { statuses: seen, statusText: job.statusText, results: job.results, stopreq: job.stopreq }
  })

  const fetchResult = async (type) => {
    const entry = c.results.find((r) => r.type === type)
    if (!entry) throw new Error(`no ${type} in ${JSON.stringify(c.results)}`)
    // getComputeResultUrl signs consumerAddress + jobId + index + nonce; the caller GETs it.
    const url = await lib.ProviderInstance.getComputeResultUrl(providerUrl, consumer, c.job.jobId, entry.index)
    const response = await fetch(url)
    const text = await response.text()
    if (!response.ok) throw new Error(`computeResult ${response.status}: ${text}`)
    return { index: entry.index, status: response.status, text, disposition: response.headers.get('content-disposition') }
  }

  await step('compute.result', ['compute.computeStatus'], () => fetchResult('output'))
  await step('compute.resultLog', ['compute.computeStatus'], () => fetchResult('algorithmLog'))

  await step('compute.computeDelete', ['compute.result', 'compute.resultLog'], async () => {
    // ocean.js 3.x signs consumerAddress + jobId + did + nonce but sends no nonce.
    const outcome = await refusal('computeDelete', () =>
      lib.ProviderInstance.computeDelete(c.did, consumer, c.job.jobId, providerUrl))
    const after = await lib.ProviderInstance.computeStatus(providerUrl, consumer.address, c.job.jobId)
    outcome.jobsAfter = (Array.isArray(after) ? after : [after]).map((j) => ({ jobId: j.jobId, status: j.status }))
    return outcome
  })
  return c
}

const EXPIRY_TIMEOUT_MS = 60000 // storageExpiry 2 s, swept every 15 s
const SMALL = 64 * 1024

// The Docker engine's guarantees through ocean.js's own calls: each probe is an algorithm
// the dataset's publisher publishes (so the dataset trusts it), ordered for its
// environment and started with computeStart; its status is polled to the end and every
// result fetched through getComputeResultUrl.
async function dockerProbes (c, publisher, consumer, aquarius, config) {
  const probes = JSON.parse(env.E2E_DOCKER_PROBES)
  const files = (url) => ({ datatokenAddress: '0x0', nftAddress: '0x0', files: [{ type: 'url', url, method: 'GET' }] })
  const asPublisher = new lib.Datatoken(publisher, 8996, config)
  const asConsumer = new lib.Datatoken(consumer, 8996, config)
  const envs = {}
  const status = async (jobId) => {
    const jobs = await lib.ProviderInstance.computeStatus(providerUrl, consumer.address, jobId)
    const job = Array.isArray(jobs) ? jobs[0] : jobs
    if (!job) throw new Error(`computeStatus returned ${JSON.stringify(jobs)}`)
    return job
  }
  const fetchIndex = async (jobId, index) => {
    const url = await lib.ProviderInstance.getComputeResultUrl(providerUrl, consumer, jobId, index)
    const response = await fetch(url)
    return { status: response.status, data: Buffer.from(await response.arrayBuffer()) }
  }
  const record = (job) => ({ jobId: job.jobId, status: job.status, statusText: job.statusText, detail: job.detail, results: job.results, removed: job.removed })
  await step('docker.environments', ['compute.getComputeEnvironments'], async () => {
    for (const e of (await lib.ProviderInstance.getComputeEnvironments(providerUrl))[8996]) envs[e.id] = e
    return { ids: Object.keys(envs) }
  })
  for (const probe of probes) {
    await step(`docker.${probe.name}`, ['compute.resolve', 'docker.environments'], async () => {
      const computeEnv = envs[probe.env]
      if (!computeEnv) throw new Error(`no environment ${probe.env}`)
      const ddo = ddoTemplate(`tidegate-e2e-oceanjs-${probe.name}`, 'algorithm',
        { id: ALGO_SERVICE_ID, type: 'access' },
        { algorithm: { language: 'python', version: '3.11', container: probe.container } })
      const algoDid = await lib.createAsset(`tidegate-e2e-${probe.name}`, 'TGPRB', publisher,
        files(probe.url), 1, ddo, true, providerUrl, lib.ZERO_ADDRESS, aquarius)
      if (!algoDid) throw new Error('createAsset returned nothing (see stderr)')
      const algo = await aquarius.waitForIndexer(algoDid, undefined, undefined, 200, 150)
      if (!algo) throw new Error('the probe algorithm never appeared in Tidegate\'s Aquarius API')
      const init = await lib.ProviderInstance.initializeCompute(
        [{ documentId: c.did, serviceId: COMPUTE_SERVICE_ID }],
        { documentId: algoDid, serviceId: ALGO_SERVICE_ID },
        computeEnv.id, Math.floor(Date.now() / 1000) + 3600, providerUrl, consumer.address)
      if (!init || !init.datasets || !init.algorithm) throw new Error(`initializeCompute: ${JSON.stringify(init)}`)
      const order = async (datatoken, quote) => {
        const minted = await asPublisher.mint(datatoken, publisher.address, '1', consumer.address)
        if (!minted) throw new Error('Datatoken.mint failed (see stderr)')
        await minted.wait()
        const tx = await asConsumer.startOrder(datatoken, computeEnv.consumerAddress, 0, quote.providerFee)
        if (!tx) throw new Error('Datatoken.startOrder failed (see stderr)')
        if ((await tx.wait()).status !== 1) throw new Error(`order reverted: ${tx.hash}`)
        return tx.hash
      }
      const datasetTx = await order(c.datatoken, init.datasets[0])
      const algoTx = await order(algo.services[0].datatokenAddress, init.algorithm)
      const begin = () => lib.ProviderInstance.computeStart(
        providerUrl, consumer, computeEnv.id,
        { documentId: c.did, serviceId: COMPUTE_SERVICE_ID, transferTxId: datasetTx },
        { documentId: algoDid, serviceId: ALGO_SERVICE_ID, transferTxId: algoTx })
      if (probe.expect === 'refused') return { environment: computeEnv.id, refusal: await refusal('computeStart', begin) }
      const jobs = await begin()
      const started = Array.isArray(jobs) ? jobs[0] : jobs
      if (!started || !started.jobId) throw new Error(`computeStart returned ${JSON.stringify(jobs)} (see stderr)`)
      const jobId = started.jobId
      const seen = []
      const deadline = Date.now() + STATUS_TIMEOUT_MS
      let job
      for (;;) {
        job = await status(jobId)
        if (seen[seen.length - 1] !== job.status) seen.push(job.status)
        if (FINISHED.includes(job.status)) break
        if (Date.now() > deadline) throw new Error(`job still ${JSON.stringify(job)}`)
        await new Promise((resolve) => setTimeout(resolve, 200))
      }
      const results = {}
      for (const entry of job.results || []) {
        const got = await fetchIndex(jobId, entry.index)
        if (got.status !== 200) throw new Error(`computeResult ${entry.index}: ${got.status}`)
        const key = entry.type === 'algorithmLog' ? 'log' : entry.filename
        results[key] = got.data.length <= SMALL ? got.data.toString('utf8')
          : { bytes: got.data.length, zero: got.data.every((b) => b === 0) }
      }
      const detail = { job_id: jobId, environment: computeEnv.id, statuses: seen, job: record(job), results }
      if (probe.expect === 'expire') {
        const until = Date.now() + EXPIRY_TIMEOUT_MS
        let later
        for (;;) {
          later = await status(jobId)
          if (!(later.results || []).length) break
          if (Date.now() > until) throw new Error(`results still there: ${JSON.stringify(later)}`)
          await new Promise((resolve) => setTimeout(resolve, 500))
        }
        detail.later = record(later)
        detail.resultAfter = (await fetchIndex(jobId, 0)).status
      }
      return detail
    })
  }
}

main(process.argv[2]).then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  }
)

// Drive the real ocean.js 3.4.6 client (ethers v5) against a running Tidegate.
//
// Every call that reaches Tidegate is made by ocean.js's own code: ProviderInstance
// (getEndpoints, isValidProvider, encrypt, checkDidFiles, getFileInfo, initialize,
// getDownloadUrl), Aquarius (validate, waitForIndexer, resolve), the createAsset
// publishing helper, Datatoken (mint, startOrder) and downloadFile. This script only
// chains them and records what happened.
//
// Environment: E2E_PROVIDER_URL (also the Aquarius URL), E2E_RPC_URL, ADDRESS_FILE
// (ocean.js's ConfigHelper reads it for chain 8996), E2E_FILE_URL, E2E_FILE_SHA256,
// E2E_PUBLISHER_KEY, E2E_CONSUMER_KEY. Writes a JSON report to the path in argv[2]:
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
const SERVICE_ID = 'ccb398c50d6abd5b456e8d7242bd856a1767a890b537c2f8c10ba8b8a10e6025'

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
    if (!Number.isInteger(nonce) || nonce < 0) throw new Error(`nonce ${nonce} is not an integer`)
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

  fs.writeFileSync(outPath, JSON.stringify(report, null, 1))
}

main(process.argv[2]).then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  }
)

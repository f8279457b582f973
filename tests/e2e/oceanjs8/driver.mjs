// Drive the real ocean.js 8.6.2 client (ethers 6, Ocean Node's protocol) against a
// running Tidegate: the access flow and free compute (C2D v2) over HTTP.
//
// Every call that reaches Tidegate is ocean.js's own: ProviderInstance (isValidProvider,
// getNonce, encrypt, getFileInfo, checkDidFiles, initialize, getDownloadUrl,
// generateAuthToken, invalidateAuthToken, getNodeStatus, getComputeEnvironments,
// freeComputeStart, computeStatus, computeStreamableLogs, computeStop,
// getComputeResultUrl), Aquarius.resolve,
// Datatoken.startOrder and downloadFile. One step is this script's own: the token
// download, because ocean.js's downloadFile sends no Authorization header (its
// getDownloadUrl, given a token, leaves nonce and signature out); the script fetches
// that URL with the token in Authorization, as a browser dApp would.
//
// Publishing (the steps publish_*, then resolve/order/download of what was published):
// as ocean.js 8's CodeExamples.md does it, NftFactory.createNftWithDatatokenWithDispenser,
// ProviderInstance.encrypt of the files and of the DDO (a 4.1.0 one as in the docs, and a
// 5.0.0 one in ddo-js's layout), Aquarius.validate, Nft.setMetadata (flags 2, the validate
// hash), Aquarius.waitForIndexer, then initialize + startOrder (4.1.0) or orderAsset
// (5.0.0: it reads the datatoken from credentialSubject.datatokens), getDownloadUrl and
// downloadFile.
//
// Environment: E2E_PROVIDER_URL (also the Aquarius URL), E2E_RPC_URL, E2E_DID (the
// dev demo asset), E2E_CONSUMER_KEY (holds its datatokens), E2E_PUBLISHER_KEY (publishes),
// ADDRESS_FILE (ConfigHelper reads it), E2E_FILE_URL (a file for getFileInfo and the
// published assets). Writes a JSON report to
// argv[2]: {"client": {...}, "steps": {name: {ok, seconds, detail | error}}}.
import crypto from 'crypto'
import fs from 'fs'
import { ethers } from 'ethers'
import {
  Aquarius, ConfigHelper, Datatoken, Dispenser, Nft, NftFactory, ProviderInstance, ZERO_ADDRESS,
  downloadFile, getEventFromTx, orderAsset
} from '@oceanprotocol/lib'

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
  const started = process.hrtime.bigint()
  const seconds = () => +(Number(process.hrtime.bigint() - started) / 1e9).toFixed(3)
  try {
    steps[name] = { ok: true, detail: (await fn()) || {}, seconds: seconds() }
  } catch (err) {
    steps[name] = { ok: false, seconds: seconds(),
      error: String(err && err.message ? err.message : err).slice(0, 4000) }
  }
}

// The DDOs ocean.js 8 users publish: CodeExamples.md's genericAsset (4.1.0), and the
// same asset as a 5.0.0 verifiable credential (ddo-js's DDO5 types).
function makeDdo (version, nftAddress, datatokenAddress, files) {
  const digest = crypto.createHash('sha256')
    .update(ethers.getAddress(nftAddress) + '8996').digest('hex')
  const metadata = {
    created: '2021-12-20T14:35:20Z', updated: '2021-12-20T14:35:20Z', type: 'dataset',
    name: `tide tables ${version}`, description: 'Ocean protocol test dataset description',
    author: 'oceanprotocol-team', license: 'MIT', tags: ['white-papers'],
    additionalInformation: { 'test-key': 'test-value' }
  }
  const service = { id: 'db164c1b981e4d2974e90e61bda121512e6909c1035c908d68933ae4cfaba6b0',
    type: 'access', files, datatokenAddress, serviceEndpoint: providerUrl, timeout: 0 }
  if (version === '4.1.0') {
    return { '@context': ['https://w3id.org/did/v1'], id: 'did:op:' + digest, version,
      chainId: 8996, nftAddress, metadata, services: [service] }
  }
  const id = 'did:ope:' + digest
  return { '@context': ['https://www.w3.org/ns/credentials/v2'], id, version,
    type: ['VerifiableCredential'], issuer: 'did:op:tidegate-e2e',
    credentialSubject: { id, chainId: 8996, nftAddress,
      metadata: { ...metadata, providedBy: 'oceanprotocol-team' },
      services: [{ ...service, name: 'download', state: 0 }],
      credentials: { allow: [], deny: [] } } }
}

const sha256 = (bytes) => crypto.createHash('sha256').update(Buffer.from(bytes)).digest('hex')

async function main () {
  // No request cache: ethers reuses an identical call's answer for 250 ms, so a second
  // transaction sent right after the first (dispense, then startOrder) would be given
  // the same account nonce.
  const rpc = new ethers.JsonRpcProvider(env.E2E_RPC_URL, undefined, { cacheTimeout: -1 })
  const consumer = new ethers.Wallet(env.E2E_CONSUMER_KEY, rpc)
  const address = await consumer.getAddress()
  const did = env.E2E_DID

  await step('is_valid_provider', [], async () => {
    const ok = await ProviderInstance.isValidProvider(providerUrl)
    if (!ok) throw new Error('isValidProvider is false')
    return { ok }
  })
  await step('root_document', [], async () => {
    // HttpProvider.getEndpoints: a GET with a JSON content type, then response.json().
    const root = await (await fetch(providerUrl, {
      headers: { 'Content-Type': 'application/json' } })).json()
    // What ocean.js 8 does with nodePublicKey before encrypting to it (eciesencrypt).
    const { PublicKey } = await import('eciesjs')
    let parses = false
    try {
      PublicKey.fromHex(root.nodePublicKey)
      parses = true
    } catch (err) {}
    return { has_provider_addresses: 'providerAddresses' in root,
      provider_address: root.providerAddress, provider_addresses: root.providerAddresses,
      node_public_key_parses: parses, services: Object.keys(root.serviceEndpoints) }
  })
  await step('get_nonce', [], async () => {
    return { nonce: await ProviderInstance.getNonce(providerUrl, address) }
  })
  await step('encrypt', [], async () => {
    const text = await ProviderInstance.encrypt({ hello: 'ocean node' }, 8996, providerUrl,
      consumer)
    if (!/^0x04[0-9a-f]+$/.test(text)) throw new Error('not a ciphertext: ' + text.slice(0, 200))
    return { length: text.length, nonce_after: await ProviderInstance.getNonce(providerUrl, address) }
  })
  await step('resolve', [], async () => {
    const ddo = await new Aquarius(providerUrl).resolve(did)
    const service = ddo.services.find((s) => s.type === 'access') || ddo.services[0]
    state.service = service
    state.datatoken = service.datatokenAddress
    return { id: ddo.id, serviceId: service.id }
  })
  await step('check_did_files', ['resolve'], async () => {
    const files = await ProviderInstance.checkDidFiles(did, state.service.id, providerUrl)
    return { files }
  })
  await step('get_file_info', [], async () => {
    const files = await ProviderInstance.getFileInfo(
      { type: 'url', url: env.E2E_FILE_URL, method: 'GET' }, providerUrl)
    return { files }
  })
  await step('initialize', ['resolve'], async () => {
    const init = await ProviderInstance.initialize(did, state.service.id, 0, address, providerUrl)
    state.init = init
    return { keys: Object.keys(init).sort(), datatoken: init.datatoken }
  })
  await step('start_order', ['initialize'], async () => {
    const dt = new Datatoken(consumer, 8996, { chainId: 8996, nodeUri: env.E2E_RPC_URL })
    const sent = await dt.startOrder(state.datatoken, address, 0, state.init.providerFee)
    const receipt = await rpc.waitForTransaction(sent.hash)
    state.tx = receipt.hash
    return { tx: receipt.hash, status: receipt.status }
  })
  await step('download', ['start_order'], async () => {
    const url = await ProviderInstance.getDownloadUrl(did, state.service.id, 0, state.tx,
      providerUrl, consumer)
    const { data, filename } = await downloadFile(url, 0)
    state.sha256 = sha256(data)
    return { filename, size: data.byteLength, sha256: state.sha256,
      signed: url.includes('&signature=') }
  })
  await step('replayed_download_url_is_refused', ['start_order'], async () => {
    const url = await ProviderInstance.getDownloadUrl(did, state.service.id, 0, state.tx,
      providerUrl, consumer)
    const first = await fetch(url)
    await first.arrayBuffer()
    const second = await fetch(url)
    return { first: first.status, second: second.status, body: await second.json() }
  })
  await step('generate_auth_token', [], async () => {
    state.token = await ProviderInstance.generateAuthToken(consumer, providerUrl)
    return { parts: state.token.split('.').length }
  })
  await step('download_with_auth_token', ['generate_auth_token', 'start_order'], async () => {
    const url = await ProviderInstance.getDownloadUrl(did, state.service.id, 0, state.tx,
      providerUrl, state.token)
    const response = await fetch(url, { headers: { Authorization: state.token } })
    const data = await response.arrayBuffer()
    return { status: response.status, sha256: sha256(data),
      unsigned: !url.includes('signature=') && !url.includes('nonce=') }
  })
  await step('invalidate_auth_token', ['generate_auth_token'], async () => {
    const answer = await ProviderInstance.invalidateAuthToken(consumer, state.token, providerUrl)
    const url = await ProviderInstance.getDownloadUrl(did, state.service.id, 0, state.tx,
      providerUrl, state.token)
    const after = await fetch(url, { headers: { Authorization: state.token } })
    return { answer, after: after.status, body: await after.json() }
  })
  const config = new ConfigHelper().getConfig(8996)
  const publisher = new ethers.Wallet(env.E2E_PUBLISHER_KEY, rpc)
  const aquarius = new Aquarius(providerUrl)
  const published = {}
  for (const version of ['4.1.0', '5.0.0']) {
    const tag = version.replace(/\./g, '')
    await step(`publish_${tag}`, [], async () => {
      const me = await publisher.getAddress()
      const factory = new NftFactory(config.nftFactoryAddress, publisher, 8996)
      const bundle = await factory.createNftWithDatatokenWithDispenser(
        { name: `Tide ${version}`, symbol: 'TIDE', templateIndex: 1, tokenURI: '',
          transferable: true, owner: me },
        { templateIndex: 1, cap: '100000', feeAmount: '0', paymentCollector: ZERO_ADDRESS,
          feeToken: ZERO_ADDRESS, minter: me, mpFeeAddress: ZERO_ADDRESS },
        { dispenserAddress: config.dispenserAddress, maxTokens: '1', maxBalance: '1',
          withMint: true, allowedSwapper: ZERO_ADDRESS })
      const receipt = await bundle.wait()
      const nftAddress = getEventFromTx(receipt, 'NFTCreated').args.newTokenAddress
      const datatokenAddress = getEventFromTx(receipt, 'TokenCreated').args.newTokenAddress
      const files = await ProviderInstance.encrypt({ datatokenAddress, nftAddress,
        files: [{ type: 'url', url: env.E2E_FILE_URL, method: 'GET' }] }, 8996, providerUrl,
      publisher)
      const ddo = makeDdo(version, nftAddress, datatokenAddress, files)
      const encryptedDDO = await ProviderInstance.encrypt(ddo, 8996, providerUrl, publisher)
      const valid = await aquarius.validate(ddo, publisher, providerUrl)
      if (!valid || valid.valid !== true) throw new Error('Aquarius.validate: ' + JSON.stringify(valid))
      const sent = await new Nft(publisher, 8996).setMetadata(nftAddress, me, 0, providerUrl,
        '', ethers.toBeHex(2), encryptedDDO, valid.hash)
      const mined = await rpc.waitForTransaction(sent.hash)
      published[tag] = { ddo, datatokenAddress, tx: mined.hash }
      return { did: ddo.id, status: mined.status, hash: valid.hash,
        validator: valid.proof.validatorAddress }
    })
  }
  await step('wait_for_indexer_410', ['publish_410'], async () => {
    // As the docs: no txid (a 4.1.0 DDO is served as Aquarius v4 serves it).
    const ddo = await aquarius.waitForIndexer(published['410'].ddo.id, undefined, undefined,
      500, 60)
    if (!ddo) throw new Error('not indexed')
    published['410'].resolved = await aquarius.resolve(ddo.id)
    const r = published['410'].resolved
    return { id: r.id, metadata_equal: JSON.stringify(r.metadata) ===
      JSON.stringify(published['410'].ddo.metadata), datatokens: r.datatokens,
    has_indexed_metadata: 'indexedMetadata' in r, event: r.event, nft_state: r.nft.state }
  })
  await step('wait_for_indexer_500', ['publish_500'], async () => {
    // With the txid: ddo-js reads indexedMetadata.event.txid.
    const p = published['500']
    const ddo = await aquarius.waitForIndexer(p.ddo.id, p.tx, undefined, 500, 60)
    if (!ddo) throw new Error('not indexed with txid ' + p.tx)
    p.resolved = await aquarius.resolve(ddo.id)
    const r = p.resolved
    return { id: r.id, subject_metadata_equal: JSON.stringify(r.credentialSubject.metadata) ===
      JSON.stringify(p.ddo.credentialSubject.metadata),
    datatokens: r.credentialSubject.datatokens, indexed: r.indexedMetadata, top_keys: Object.keys(r) }
  })
  await step('query_500', ['wait_for_indexer_500'], async () => {
    // Aquarius.querySearch as a market filters: by ES id, and by a credentialSubject field.
    const p = published['500']
    const byId = await aquarius.querySearch({ query: { terms: { _id: [p.ddo.id] } } })
    const byName = await aquarius.querySearch({ query: { match_phrase: {
      'credentialSubject.metadata.name': p.ddo.credentialSubject.metadata.name } } })
    return { by_id: byId.hits.hits.map((h) => h._id),
      by_name: byName.hits.hits.map((h) => h._id) }
  })
  await step('consume_410', ['wait_for_indexer_410'], async () => {
    const p = published['410']
    const { id, services } = p.resolved
    const files = await ProviderInstance.checkDidFiles(id, services[0].id, providerUrl)
    await (await new Dispenser(config.dispenserAddress, consumer, 8996).dispense(
      p.datatokenAddress, '1', address))?.wait?.()
    const init = await ProviderInstance.initialize(id, services[0].id, 0, address, providerUrl)
    const dt = new Datatoken(consumer, 8996, { chainId: 8996, nodeUri: env.E2E_RPC_URL })
    const sent = await dt.startOrder(p.datatokenAddress, address, 0, init.providerFee)
    const receipt = await rpc.waitForTransaction(sent.hash)
    const url = await ProviderInstance.getDownloadUrl(id, services[0].id, 0, receipt.hash,
      providerUrl, consumer)
    const { data, filename } = await downloadFile(url, 0)
    return { valid: files.map((f) => f.valid), order_status: receipt.status, filename,
      sha256: sha256(data) }
  })
  await step('consume_500', ['wait_for_indexer_500'], async () => {
    const p = published['500']
    const r = p.resolved
    const service = r.credentialSubject.services[0]
    const files = await ProviderInstance.checkDidFiles(r.id, service.id, providerUrl)
    // orderAsset reads the datatoken from the served DDO (ddo-js getAssetFields), then
    // dispenses and orders (template 1, free).
    const sent = await orderAsset(r, consumer, config,
      new Datatoken(consumer, 8996, config), providerUrl)
    const receipt = await rpc.waitForTransaction(sent.hash)
    const url = await ProviderInstance.getDownloadUrl(r.id, service.id, 0, receipt.hash,
      providerUrl, consumer)
    const { data, filename } = await downloadFile(url, 0)
    return { valid: files.map((f) => f.valid), order_status: receipt.status, filename,
      sha256: sha256(data) }
  })

  // --- compute v2 (free compute on the consumer's own file, raw algorithm) ---------
  const container = { entrypoint: 'python $ALGO', image: 'python', tag: '3.11',
    checksum: 'sha256:' + 'ab'.repeat(32) }
  const hashing = 'import hashlib, pathlib\n' +
    "data = pathlib.Path('/data/inputs/fileObject0/0').read_bytes()\n" +
    "pathlib.Path('/data/outputs/digest.txt').write_text(hashlib.sha256(data).hexdigest())\n" +
    "print('hashed', len(data), flush=True)\n"
  const ticking = 'import time\nfor i in range(900):\n' +
    "    print('tick', i, flush=True)\n    time.sleep(0.1)\n"
  const dataset = { fileObject: { type: 'url', url: env.E2E_FILE_URL, method: 'GET' } }
  const waitFor = async (jobId, done, seconds) => {
    const deadline = Date.now() + seconds * 1000
    for (;;) {
      const jobs = await ProviderInstance.computeStatus(providerUrl, consumer, jobId)
      const job = Array.isArray(jobs) ? jobs[0] : jobs
      if (job && done(job)) return job
      if (Date.now() > deadline) throw new Error('job ' + jobId + ': ' + JSON.stringify(job))
      await new Promise((resolve) => setTimeout(resolve, 250))
    }
  }
  await step('compute_environments', [], async () => {
    const envs = await ProviderInstance.getComputeEnvironments(providerUrl)
    if (!Array.isArray(envs)) throw new Error('not a list: ' + JSON.stringify(envs).slice(0, 300))
    state.env = envs.find((e) => e.free)
    if (!state.env) throw new Error('no environment with free compute')
    return { count: envs.length, id: state.env.id, free: state.env.free,
      resources: state.env.resources.map((r) => r.id),
      fees: Object.keys(state.env.fees), consumerAddress: state.env.consumerAddress }
  })
  await step('free_compute_start', ['compute_environments'], async () => {
    const jobs = await ProviderInstance.freeComputeStart(providerUrl, consumer, state.env.id,
      [dataset], { meta: { rawcode: hashing, container } })
    const job = Array.isArray(jobs) ? jobs[0] : jobs
    state.jobId = job.jobId
    return { jobId: job.jobId, isFree: job.isFree, owner: job.owner }
  })
  await step('compute_status_until_finished', ['free_compute_start'], async () => {
    const job = await waitFor(state.jobId, (j) => [31, 32, 70].includes(j.status), 90)
    state.results = job.results
    return { status: job.status, statusText: job.statusText,
      results: job.results.map((r) => r.type) }
  })
  await step('compute_result_download', ['compute_status_until_finished'], async () => {
    const output = state.results.find((r) => r.type === 'output')
    const url = await ProviderInstance.getComputeResultUrl(providerUrl, consumer, state.jobId,
      output.index)
    const response = await fetch(url)
    const text = await response.text()
    const log = state.results.find((r) => r.type === 'algorithmLog')
    const logUrl = await ProviderInstance.getComputeResultUrl(providerUrl, consumer,
      state.jobId, log.index)
    return { status: response.status, digest: text.trim(),
      log: (await (await fetch(logUrl)).text()).slice(0, 200) }
  })
  await step('long_free_job_running', ['compute_environments'], async () => {
    const jobs = await ProviderInstance.freeComputeStart(providerUrl, consumer, state.env.id,
      [], { meta: { rawcode: ticking, container } })
    state.longJob = (Array.isArray(jobs) ? jobs[0] : jobs).jobId
    const job = await waitFor(state.longJob, (j) => j.status === 40 || j.status >= 70, 60)
    return { status: job.status }
  })
  await step('compute_streamable_logs', ['long_free_job_running'], async () => {
    const stream = await ProviderInstance.computeStreamableLogs(providerUrl, consumer,
      state.longJob)
    if (!stream) throw new Error('computeStreamableLogs gave ' + stream)
    let text = ''
    const decoder = new TextDecoder()
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true })
      if ((text.match(/tick/g) || []).length >= 3) break
    }
    return { head: text.split('\n').slice(0, 3) }
  })
  await step('compute_stop', ['long_free_job_running'], async () => {
    const stopped = await ProviderInstance.computeStop(state.longJob, providerUrl, consumer)
    const first = Array.isArray(stopped) ? stopped[0] : stopped
    const job = await waitFor(state.longJob, (j) => j.status >= 70, 30)
    return { stopRequested: first.stopRequested, status: job.status,
      statusText: job.statusText }
  })
  await step('node_status', [], async () => {
    const status = await ProviderInstance.getNodeStatus(providerUrl)
    if (!status) throw new Error('getNodeStatus gave ' + status)
    return { http: status.http, provider: status.provider }
  })
}

main().then(() => {
  const version = (name) => JSON.parse(fs.readFileSync(
    new URL(`./node_modules/${name}/package.json`, import.meta.url))).version
  const client = { lib: version('@oceanprotocol/lib'), ethers: version('ethers'),
    'ddo-js': version('@oceanprotocol/ddo-js') }
  fs.writeFileSync(process.argv[2], JSON.stringify({ client, steps }, null, 1))
}, (err) => { console.error(err); process.exit(1) })

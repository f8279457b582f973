// The compute e2e algorithm for the Docker engine, as the ecosystem's examples run one:
// image ubuntu / latest, entrypoint `node $ALGO`. Same output as hash_inputs.py: one line
// per input file, `<did> <index> <sha256> <bytes>`, in /data/outputs/result.txt; it also
// logs the image's marker (/etc/tidegate-test-image, only the test images have it) and uid.
const crypto = require('crypto')
const fs = require('fs')
const path = require('path')

const lines = []
for (const did of JSON.parse(process.env.DIDS)) {
  const folder = path.join('/data/inputs', did)
  const names = fs.readdirSync(folder).filter((n) => /^\d+$/.test(n)).sort((a, b) => a - b)
  for (const name of names) {
    const data = fs.readFileSync(path.join(folder, name))
    const digest = crypto.createHash('sha256').update(data).digest('hex')
    lines.push(`${did} ${name} ${digest} ${data.length}`)
    console.log(`hashed ${did}/${name}: ${data.length} bytes`)
  }
}
fs.writeFileSync('/data/outputs/result.txt', lines.join('\n') + '\n')
let marker = 'none'
try { marker = fs.readFileSync('/etc/tidegate-test-image', 'utf8').trim() } catch (e) {}
console.log(`image marker: ${marker}, uid ${process.getuid()}`)
console.log(`wrote ${lines.length} digest(s)`)

// Starts kinesalite (in-memory Kinesis emulator) on 127.0.0.1 only; its CLI binds every interface.
// Usage: node .ci/kinesalite.js PORT   (scripts/test installs kinesalite into .ci/node/node_modules)
// Streams go ACTIVE at once (createStreamMs: 0) so tests need no long waits; no `path` = memdown store.
'use strict'
const path = require('path')

let kinesalite
try {
  kinesalite = require(path.join(__dirname, 'node', 'node_modules', 'kinesalite'))
} catch (e) {
  kinesalite = require('kinesalite') // e.g. a global install or NODE_PATH
}

const port = parseInt(process.argv[2] || '4567', 10)
const server = kinesalite({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 100})
server.listen(port, '127.0.0.1', function(err) {
  if (err) throw err
  console.log('kinesalite ready on http://127.0.0.1:' + port)
})
for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, function() { server.close(function() { process.exit(0) }) })
}

#!/usr/bin/env node
'use strict'
// The command line of stan.go's example `stan-pub`, on node-nats-streaming.
// (The Go examples cannot be installed here; node-nats-streaming's own
// examples/stan-pub.js takes other flags: -i, not -id.)
//
//   node stan-pub.js [-s URL] [-c CLUSTER] [-id CLIENT] [-a] <subject> <message>
//
// Prints "Published [subject] : 'message'" like the Go example; exits 1 on error.

const STAN = require('node-nats-streaming')
const { parseGoFlags } = require('./goflags')

const usage = `
Usage: stan-pub [options] <subject> <message>

Options:
	-s,  --server   <url>            NATS Streaming server URL(s)
	-c,  --cluster  <cluster name>   NATS Streaming cluster name
	-id, --clientid <client ID>      NATS Streaming client ID
	-a,  --async                     Asynchronous publish mode
`

let parsed
try {
  parsed = parseGoFlags(process.argv.slice(2), {
    defaults: { s: 'nats://127.0.0.1:4222', c: 'test-cluster', id: 'stan-pub', a: false },
    aliases: { server: 's', cluster: 'c', clientid: 'id', async: 'a' },
    bools: ['a']
  })
} catch (err) {
  console.log(err.message + '\n' + usage)
  process.exit(2)
}
const { flags, args } = parsed
if (args.length < 1) {
  console.log(usage)
  process.exit(1)
}
const subj = args[0]
const msg = args.length > 1 ? args[1] : ''

const fatal = (text) => { console.log(text); process.exit(1) }
setTimeout(() => fatal('stan-pub: gave up after 40s'), 40000).unref()

let sc
try {
  sc = STAN.connect(flags.c, flags.id, { url: flags.s, maxReconnectAttempts: 10 })
} catch (err) {
  fatal(`Can't connect: ${err.message}.\nMake sure a NATS Streaming Server is running at: ${flags.s}`)
}
let connected = false
sc.on('error', (err) => {
  if (!connected) fatal(`Can't connect: ${err.message || err}.\nMake sure a NATS Streaming Server is running at: ${flags.s}`)
  console.log(`Connection error: ${err.message || err}`)
})
sc.on('connect', () => {
  connected = true
  const guid = sc.publish(subj, msg, (err, g) => {
    if (err) fatal(`Error during publish: ${err.message || err}`)
    if (flags.a) console.log(`Received ACK for guid ${g}`)
    sc.on('close', () => process.exit(0))
    sc.close()
  })
  if (flags.a) console.log(`Published [${subj}] : '${msg}' [guid: ${guid}]`)
  else console.log(`Published [${subj}] : '${msg}'`)
})

#!/usr/bin/env node
'use strict'
// The command line of stan.go's example `stan-sub`, on node-nats-streaming.
// (The Go examples cannot be installed here; node-nats-streaming's own
// examples/stan-sub.js takes -i instead of -id and always starts with the last
// received message, with no --all.)
//
//   node stan-sub.js [-s URL] [-c CLUSTER] [-id CLIENT] [--qgroup G] [--seq N]
//                    [--all] [--last] [--since 1m30s] [--durable NAME]
//                    [--unsubscribe] [-t] <subject>
//
// Prints "[#n] Received: sequence:.. subject:".." data:".." timestamp:.." per
// message like the Go example, until SIGINT/SIGTERM (then unsubscribes unless
// durable, and closes).

const STAN = require('node-nats-streaming')
const { parseGoFlags, msgText } = require('./goflags')

const usage = `
Usage: stan-sub [options] <subject>

Options:
	-s,  --server   <url>            NATS Streaming server URL(s)
	-c,  --cluster  <cluster name>   NATS Streaming cluster name
	-id, --clientid <client ID>      NATS Streaming client ID

Subscription Options:
	--qgroup <name>                  Queue group
	--seq    <seq>                   Start at seqno
	--all                            Deliver all available messages
	--last                           Deliver starting with last published message
	--since  <duration>              Deliver messages in last interval (e.g. 1s, 1hr)
	--durable <name>                 Durable subscriber name
	--unsubscribe                    Unsubscribe the durable on exit
`

function parseDuration (text) {
  const units = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60000, h: 3600000 }
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g
  let total = 0
  let consumed = 0
  let m
  while ((m = re.exec(text)) !== null) {
    total += Number(m[1]) * units[m[2]]
    consumed += m[0].length
  }
  if (!text || consumed !== text.length) throw new Error(`time: invalid duration "${text}"`)
  return total
}

let parsed
try {
  parsed = parseGoFlags(process.argv.slice(2), {
    defaults: {
      s: 'nats://127.0.0.1:4222', c: 'test-cluster', id: 'stan-sub', t: false, seq: '0',
      all: false, new_only: false, last: false, since: '', durable: '', qgroup: '', unsubscribe: false
    },
    aliases: { server: 's', cluster: 'c', clientid: 'id' },
    bools: ['t', 'all', 'new_only', 'last', 'unsubscribe']
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
const fatal = (text) => { console.log(text); process.exit(1) }

let sc
try {
  sc = STAN.connect(flags.c, flags.id, { url: flags.s, maxReconnectAttempts: 10 })
} catch (err) {
  fatal(`Can't connect: ${err.message}.\nMake sure a NATS Streaming Server is running at: ${flags.s}`)
}
let connected = false
let sub = null
sc.on('error', (err) => {
  if (!connected) fatal(`Can't connect: ${err.message || err}.\nMake sure a NATS Streaming Server is running at: ${flags.s}`)
  console.log(`Connection error: ${err.message || err}`)
})
sc.on('connection_lost', (err) => fatal(`Connection lost, reason: ${err.message || err}`))
sc.on('connect', () => {
  connected = true
  console.log(`Connected to ${flags.s} clusterID: [${flags.c}] clientID: [${flags.id}]`)
  const opts = sc.subscriptionOptions().setStartAt(STAN.StartPosition.NEW_ONLY)
  const seq = Number(flags.seq)
  if (seq !== 0) opts.setStartAtSequence(seq)
  else if (flags.last) opts.setStartWithLastReceived()
  else if (flags.all && !flags.new_only) opts.setDeliverAllAvailable()
  else if (flags.since) {
    try { opts.setStartAtTimeDelta(parseDuration(flags.since)) } catch (err) { fatal(err.message) }
  }
  if (flags.durable) opts.setDurableName(flags.durable)
  let i = 0
  sub = sc.subscribe(subj, flags.qgroup, opts)
  sub.on('error', (err) => fatal(`Can't subscribe: ${err.message || err}`))
  sub.on('timeout', (err) => fatal(`Can't subscribe: ${err.message || err}`))
  sub.on('ready', () => {
    console.log(`Listening on [${subj}], clientID=[${flags.id}], qgroup=[${flags.qgroup}] durable=[${flags.durable}]`)
  })
  sub.on('message', (msg) => {
    i++
    const when = flags.t ? `${msg.getTimestamp().toISOString()} ` : ''
    console.log(`${when}[#${i}] Received: ${msgText(msg)}`)
  })
})

let stopping = false
function stop () {
  if (stopping) return
  stopping = true
  console.log('\nReceived an interrupt, unsubscribing and closing connection...\n')
  setTimeout(() => process.exit(0), 3000).unref()
  const closeConn = () => { sc.on('close', () => process.exit(0)); sc.close() }
  if (sub && !sub.isClosed() && sub.ackInbox && (!flags.durable || flags.unsubscribe)) {
    sub.once('unsubscribed', closeConn)
    sub.unsubscribe()
  } else {
    closeConn()
  }
}
process.on('SIGINT', stop)
process.on('SIGTERM', stop)

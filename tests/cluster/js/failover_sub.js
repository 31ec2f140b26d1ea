#!/usr/bin/env node
'use strict'
// A node-nats-streaming subscriber given EVERY node of the cluster: when the node it
// is connected to dies, the NATS connection reconnects to another node, the STAN
// client keeps pinging (protocol 1) and the subscription keeps its place; the
// application never re-subscribes. Prints JSON events, one per line.
//
//   node failover_sub.js --servers nats://a:1,nats://b:2 --client ID --channel foo
//       [--cluster test-cluster] [--start new|first] [--durable NAME] [--queue GROUP]
//       [--ack manual|none] [--ack-wait SECONDS] [--max-inflight N]
//       [--ping-interval MS] [--ping-max-out N] [--deadline MS]
//
// The first server is tried first (noRandomize). --ack manual acks each message as it
// is printed; none holds them until the command "ack".
// Events: connected {server}, ready, msg {seq, data, redelivered}, disconnect,
// reconnecting, reconnect {server}, connection-lost, acked, error {stage, error},
// deadline, done, closed.
// stdin commands: ack | stop (close the connection: durables go offline) | crash.

const path = require('path')
const common = require(path.join(__dirname, '..', '..', 'js', 'stan', 'common.js'))
const { STAN, parseArgs, emit, errText, exit, armHardDeadline, closeAndExit, onCommands } = common

const argv = parseArgs({
  string: ['servers'],
  required: ['servers', 'client', 'channel'],
  default: { start: 'first', ack: 'manual', 'ping-interval': 1000, 'ping-max-out': 10, deadline: 60000 },
  usage: 'see the header of failover_sub.js'
})
const deadline = Number(argv.deadline)
armHardDeadline(deadline + 5000)

const servers = String(argv.servers).split(',')
let held = []
let finishing = false

function currentServer (sc) {
  try {
    const u = sc.nc.currentServer.url
    return `${u.hostname}:${u.port}`
  } catch (e) {
    return null
  }
}

const sc = STAN.connect(argv.cluster, argv.client, {
  servers,
  noRandomize: true,
  connectTimeout: 5000,
  maxReconnectAttempts: -1,
  reconnectTimeWait: 100,
  stanPingInterval: Number(argv['ping-interval']),
  stanMaxPingOut: Number(argv['ping-max-out'])
})

function finish (reason, how) {
  if (finishing) return
  finishing = true
  emit('done', { reason })
  if (how === 'crash') exit()
  else closeAndExit(sc)
}

sc.on('connect', () => {
  emit('connected', { server: currentServer(sc) })
  const opts = sc.subscriptionOptions()
  if (argv.start === 'first') opts.setDeliverAllAvailable()
  else opts.setStartAt(STAN.StartPosition.NEW_ONLY)
  if (argv.durable) opts.setDurableName(argv.durable)
  if (argv['max-inflight'] !== undefined) opts.setMaxInFlight(Number(argv['max-inflight']))
  if (argv['ack-wait'] !== undefined) opts.setAckWait(Number(argv['ack-wait']) * 1000)
  opts.setManualAckMode(true)
  const sub = argv.queue
    ? sc.subscribe(argv.channel, argv.queue, opts)
    : sc.subscribe(argv.channel, opts)
  sub.on('error', (err) => emit('error', { stage: 'subscribe', error: errText(err) }))
  sub.on('timeout', (err) => emit('error', { stage: 'subscribe', error: errText(err) }))
  sub.on('ready', () => emit('ready', { server: currentServer(sc) }))
  sub.on('message', (msg) => {
    if (finishing) return
    emit('msg', {
      seq: msg.getSequence(),
      data: msg.getData(),
      redelivered: msg.isRedelivered(),
      server: currentServer(sc)
    })
    if (argv.ack === 'manual') msg.ack()
    else held.push(msg)
  })
})
sc.on('error', (err) => emit('error', { stage: 'connection', error: errText(err) }))
sc.on('connection_lost', (err) => emit('connection-lost', { error: errText(err) }))
sc.on('disconnect', () => emit('disconnect'))
sc.on('reconnecting', () => emit('reconnecting'))
sc.on('reconnect', () => emit('reconnect', { server: currentServer(sc) }))

setTimeout(() => {
  emit('deadline', { after_ms: deadline })
  finish('deadline')
}, deadline)

onCommands((cmd) => {
  if (cmd === 'ack') {
    const seqs = held.map((m) => m.getSequence())
    for (const m of held) m.ack()
    held = []
    emit('acked', { seqs })
  } else if (cmd === 'stop') finish('command')
  else if (cmd === 'crash') finish('command', 'crash')
  else if (cmd !== 'eof') emit('error', { stage: 'command', error: `unknown command ${cmd}` })
})

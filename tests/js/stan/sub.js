#!/usr/bin/env node
'use strict'
// Judge: subscribe with node-nats-streaming and print what arrives as JSON lines.
//
//   node sub.js --url nats://127.0.0.1:4222 --client ID --channel foo
//       [--cluster test-cluster] [--start new|last|first|seq:N|delta:MS|time:EPOCH_MS]
//       [--durable NAME] [--queue GROUP] [--ack auto|manual|none]
//       [--ack-wait SECONDS] [--max-inflight N]
//       [--count N] [--deadline MS] [--then disconnect|close|unsubscribe|crash]
//
// --ack auto: the library acks after the handler; manual: manual-ack mode and the
// judge acks each message as it prints it; none: manual-ack mode, messages are
// held until the command "ack" arrives on stdin.
// The judge stops after --count messages (0: no count) or at --deadline, doing
// --then: disconnect = close the connection (durables go offline),
// close = close the subscription then the connection, unsubscribe = unsubscribe
// then close the connection, crash = exit at once without telling the server.
// stdin commands: ack | close | unsubscribe | disconnect | crash | stop
// (stop = do --then now) | again (a second subscription with the same options on
// the same connection: prints ready-again or an error of stage subscribe-again).
// Events: connected, ready, msg, acked, deadline, unsubscribed, sub-closed,
// closed, error {stage, error}, done {received, reason}.

const { STAN, parseArgs, emit, errText, exit, armHardDeadline, connect, closeAndExit, onCommands } = require('./common')

const argv = parseArgs({
  required: ['client', 'channel'],
  default: { start: 'new', ack: 'auto', count: 0, then: 'disconnect' },
  usage: 'see the header of sub.js'
})
const deadline = Number(argv.deadline)
armHardDeadline(deadline + 5000)

const received = []
let held = []
let sub = null
let finishing = false

function finish (reason, how) {
  if (finishing) return
  finishing = true
  how = how || argv.then
  emit('done', { received: received.length, reason })
  if (how === 'crash') {
    exit()
  } else if (how === 'unsubscribe' || how === 'close') {
    if (!sub || sub.isClosed() || !sub.ackInbox) {
      closeAndExit(sc)
      return
    }
    const t = setTimeout(() => closeAndExit(sc), 3000)
    const next = () => { clearTimeout(t); closeAndExit(sc) }
    sub.removeAllListeners('error')
    sub.removeAllListeners('timeout')
    sub.once(how === 'close' ? 'closed' : 'unsubscribed', () => {
      emit(how === 'close' ? 'sub-closed' : 'unsubscribed')
      next()
    })
    sub.on('error', (err) => { emit('error', { stage: how, error: errText(err) }); next() })
    sub.on('timeout', (err) => { emit('error', { stage: how, error: errText(err) }); next() })
    if (how === 'close') sub.close()
    else sub.unsubscribe()
  } else {
    closeAndExit(sc)
  }
}

function ackHeld () {
  const seqs = held.map((m) => m.getSequence())
  for (const m of held) m.ack()
  held = []
  emit('acked', { seqs })
}

function subscriptionOptions (sc) {
  const opts = sc.subscriptionOptions()
  const start = String(argv.start)
  if (start === 'new') {
    opts.setStartAt(STAN.StartPosition.NEW_ONLY)
  } else if (start === 'last') {
    opts.setStartWithLastReceived()
  } else if (start === 'first' || start === 'all') {
    opts.setDeliverAllAvailable()
  } else if (start.startsWith('seq:')) {
    opts.setStartAtSequence(Number(start.slice(4)))
  } else if (start.startsWith('delta:')) {
    opts.setStartAtTimeDelta(Number(start.slice(6)))
  } else if (start.startsWith('time:')) {
    opts.setStartTime(new Date(Number(start.slice(5))))
  } else {
    emit('error', { stage: 'args', error: `unknown --start ${start}` })
    exit(64)
  }
  if (argv.durable) opts.setDurableName(argv.durable)
  if (argv['max-inflight'] !== undefined) opts.setMaxInFlight(Number(argv['max-inflight']))
  if (argv['ack-wait'] !== undefined) opts.setAckWait(Number(argv['ack-wait']) * 1000)
  if (argv.ack !== 'auto') opts.setManualAckMode(true)
  return opts
}

const sc = connect(argv, (sc) => {
  sub = argv.queue
    ? sc.subscribe(argv.channel, argv.queue, subscriptionOptions(sc))
    : sc.subscribe(argv.channel, subscriptionOptions(sc))
  sub.on('error', (err) => {
    emit('error', { stage: 'subscribe', error: errText(err) })
    finish('error')
  })
  sub.on('timeout', (err) => {
    emit('error', { stage: 'subscribe', error: errText(err) })
    finish('error')
  })
  sub.on('ready', () => emit('ready', { channel: argv.channel, queue: argv.queue || null, durable: argv.durable || null }))
  sub.on('message', (msg) => {
    if (finishing) return
    const ts = msg.getTimestampRaw()
    received.push(msg.getSequence())
    emit('msg', {
      seq: msg.getSequence(),
      subject: msg.getSubject(),
      data: msg.getData(),
      redelivered: msg.isRedelivered(),
      redeliveryCount: msg.getRedeliveryCount(),
      timestamp: typeof ts === 'number' ? ts : Number(ts)
    })
    if (argv.ack === 'manual') msg.ack()
    else if (argv.ack === 'none') held.push(msg)
    const count = Number(argv.count)
    if (count > 0 && received.length >= count) finish('count')
  })
})

if (sc) {
  setTimeout(() => {
    emit('deadline', { after_ms: deadline })
    finish('deadline')
  }, deadline)
}

function subscribeAgain () {
  const opts = subscriptionOptions(sc)
  const other = argv.queue ? sc.subscribe(argv.channel, argv.queue, opts) : sc.subscribe(argv.channel, opts)
  other.on('error', (err) => emit('error', { stage: 'subscribe-again', error: errText(err) }))
  other.on('timeout', (err) => emit('error', { stage: 'subscribe-again', error: errText(err) }))
  other.on('ready', () => emit('ready-again', { channel: argv.channel }))
  other.on('message', (msg) => emit('msg-again', { seq: msg.getSequence(), redelivered: msg.isRedelivered() }))
}

onCommands((cmd) => {
  if (cmd === 'ack') ackHeld()
  else if (cmd === 'again') subscribeAgain()
  else if (cmd === 'stop') finish('command')
  else if (['close', 'unsubscribe', 'disconnect', 'crash'].includes(cmd)) finish('command', cmd)
  else if (cmd !== 'eof') emit('error', { stage: 'command', error: `unknown command ${cmd}` })
})

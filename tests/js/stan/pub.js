#!/usr/bin/env node
'use strict'
// Judge: publish N messages with node-nats-streaming, wait for every PubAck,
// print the results as JSON lines.
//
//   node pub.js --url nats://127.0.0.1:4222 --client ID --channel foo
//       [--cluster test-cluster] [--count 1] [--data 'msg-{i}'] [--first 1]
//       [--sync] [--pub-ack-wait MS] [--deadline MS] [--hold] [--then close|crash]
//
// {i} in --data is replaced by the message's index (--first, --first+1, ...).
// --count 0 only connects and closes (a connect judge).
// --sync waits for each PubAck before the next publish; otherwise all are sent
// at once and the acks are awaited together.
// --hold keeps the session open after publishing (answering heartbeats) until
// the command "close" (or "crash") arrives on stdin, or stdin ends, or --deadline.
// --then crash exits without closing the session.
// Events: connected, ack {i, guid, error}, published {ok, failed, errors},
// closed, error {stage, error}, done.

const { parseArgs, emit, errText, exit, armHardDeadline, connect, closeAndExit, onCommands } = require('./common')

const argv = parseArgs({
  required: ['client'],
  boolean: ['sync', 'hold'],
  default: { count: 1, data: 'msg-{i}', first: 1, then: 'close' },
  usage: 'see the header of pub.js'
})
const deadline = Number(argv.deadline)
const count = Number(argv.count)
const first = Number(argv.first)
armHardDeadline(deadline + 5000)
if (count > 0 && !argv.channel) {
  process.stderr.write('pub.js: --channel is required when --count > 0\n')
  process.exit(64)
}

let done = false
let ok = 0
let failed = 0
const errors = []

function end (reason, how) {
  if (done) return
  done = true
  emit('done', { ok, failed, reason })
  if ((how || argv.then) === 'crash') exit()
  else closeAndExit(sc)
}

function published () {
  emit('published', { ok, failed, errors })
  if (!argv.hold) end('published')
}

function publishOne (sc, i, cb) {
  const data = String(argv.data).split('{i}').join(String(i))
  try {
    sc.publish(argv.channel, data, (err, guid) => {
      if (err) {
        failed++
        errors.push(errText(err))
      } else {
        ok++
      }
      emit('ack', { i, guid, error: errText(err) })
      cb()
    })
  } catch (err) {
    failed++
    errors.push(errText(err))
    emit('error', { stage: 'publish', error: errText(err) })
    cb()
  }
}

const sc = connect(argv, (sc) => {
  if (count <= 0) {
    published()
    return
  }
  if (argv.sync) {
    let i = first
    const next = () => {
      if (i >= first + count) { published(); return }
      publishOne(sc, i++, next)
    }
    next()
  } else {
    let pending = count
    for (let i = first; i < first + count; i++) {
      publishOne(sc, i, () => { if (--pending === 0) published() })
    }
  }
})

if (sc) {
  setTimeout(() => {
    emit('deadline', { after_ms: deadline })
    end('deadline')
  }, deadline)
}

onCommands((cmd) => {
  if (cmd === 'close' || (cmd === 'eof' && argv.hold)) end('command', 'close')
  else if (cmd === 'crash') end('command', 'crash')
  else if (cmd !== 'eof') emit('error', { stage: 'command', error: `unknown command ${cmd}` })
})

'use strict'
// Shared plumbing of the node-nats-streaming judges (pub.js, sub.js).
//
// Every judge prints one JSON object per line on stdout ("events"), reads
// optional commands from stdin, and always ends by itself: a --deadline (ms)
// bounds the work and a hard timer, 5 s later, exits with status 2 whatever
// the client library is doing.

const path = require('path')
const readline = require('readline')
const minimist = require('minimist')
const STAN = require('node-nats-streaming')

function parseArgs (spec) {
  const argv = minimist(process.argv.slice(2), {
    string: ['url', 'cluster', 'client', 'channel', 'start', 'durable', 'queue',
      'ack', 'then', 'data'].concat(spec.string || []),
    boolean: spec.boolean || [],
    default: Object.assign({
      url: 'nats://127.0.0.1:4222',
      cluster: 'test-cluster',
      deadline: 10000,
      'connect-timeout': 2000
    }, spec.default || {})
  })
  for (const name of spec.required || []) {
    if (argv[name] === undefined || argv[name] === '') {
      process.stderr.write(`${path.basename(process.argv[1])}: --${name} is required\n${spec.usage}\n`)
      process.exit(64)
    }
  }
  return argv
}

let errors = 0
function emit (event, fields) {
  if (event === 'error') errors++
  process.stdout.write(JSON.stringify(Object.assign({ event }, fields || {})) + '\n')
}

function errText (err) {
  if (err === null || err === undefined) return null
  if (typeof err === 'string') return err
  return err.message || String(err)
}

let exiting = false
function exit (code) {
  if (exiting) return
  exiting = true
  process.exit(code === undefined ? (errors ? 1 : 0) : code)
}

// A hard bound on the whole process: deadline + grace.
function armHardDeadline (ms) {
  const t = setTimeout(() => {
    emit('hard-timeout', { after_ms: ms })
    exit(2)
  }, ms)
  t.unref()
}

function connect (argv, onConnect) {
  const opts = {
    url: argv.url,
    connectTimeout: Number(argv['connect-timeout']),
    // Never let the judge sit in an endless reconnect loop.
    maxReconnectAttempts: Number(argv['max-reconnects'] === undefined ? 30 : argv['max-reconnects']),
    reconnectTimeWait: 250
  }
  if (argv['pub-ack-wait'] !== undefined) opts.ackTimeout = Number(argv['pub-ack-wait'])
  let sc
  try {
    sc = STAN.connect(argv.cluster, argv.client, opts)
  } catch (err) {
    emit('error', { stage: 'connect', error: errText(err) })
    exit()
    return null
  }
  let connected = false
  sc.on('connect', () => {
    connected = true
    emit('connected', { client: argv.client, cluster: argv.cluster })
    onConnect(sc)
  })
  sc.on('error', (err) => {
    emit('error', { stage: connected ? 'connection' : 'connect', error: errText(err) })
    if (!connected) exit()
  })
  sc.on('connection_lost', (err) => {
    emit('connection-lost', { error: errText(err) })
  })
  return sc
}

// Close the STAN session (CloseRequest), then exit.
function closeAndExit (sc, code) {
  if (!sc || sc.isClosed()) {
    emit('closed', { error: null })
    exit(code)
    return
  }
  sc.removeAllListeners('close')
  sc.on('close', (err) => {
    emit('closed', { error: errText(err) })
    exit(code)
  })
  sc.close()
}

// Lines written to stdin become commands; EOF is reported as the command "eof".
function onCommands (handler) {
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const words = line.trim().split(/\s+/).filter(Boolean)
    if (words.length) handler(words[0], words.slice(1))
  })
  rl.on('close', () => handler('eof', []))
}

module.exports = { STAN, parseArgs, emit, errText, exit, armHardDeadline, connect, closeAndExit, onCommands }

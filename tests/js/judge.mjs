// A real nats.js client (npm `nats`) used by Runnel's tests as a judge.
//
//   node judge.mjs <command> <server-url> '<json options>'
//
// Output is JSON lines on stdout. Long-lived roles (sub, reply) first print
// {"event":"ready"} once their subscriptions are known to the server (a flush
// round trip), then, when told to stop by a message on `ctl`, one
// {"event":"result", ...} line. One-shot commands print only the result.
// Nothing waits forever: a watchdog prints {"event":"result","error":"deadline"}
// and exits with status 3 after `deadline_ms` (default 15000). A failure inside
// a command prints {"event":"result","error":...} and exits with status 1.
import { connect, headers as newHeaders } from "nats";

const [command, url, rawOpts = "{}"] = process.argv.slice(2);
const opts = JSON.parse(rawOpts);
const enc = new TextEncoder();
const dec = new TextDecoder();

function emit(obj) {
  // stdout is a pipe: writes are synchronous on Linux, so nothing is lost on exit.
  process.stdout.write(JSON.stringify(obj) + "\n");
}

const watchdog = setTimeout(() => {
  emit({ event: "result", error: "deadline", command });
  process.exit(3);
}, opts.deadline_ms ?? 15000);

function connectOpts(extra = {}) {
  const o = { servers: url, reconnect: false, timeout: 5000, ...extra };
  if (opts.user !== undefined) o.user = opts.user;
  if (opts.pass !== undefined) o.pass = opts.pass;
  if (opts.token !== undefined) o.token = opts.token;
  return o;
}

function hdrsToJson(h) {
  if (!h) return null;
  const map = {};
  for (const k of h.keys()) map[k] = h.values(k);
  return { code: h.code, description: h.description, map };
}

function jsonToHdrs(obj) {
  if (!obj) return undefined;
  const h = newHeaders();
  for (const [k, vs] of Object.entries(obj)) {
    for (const v of [].concat(vs)) h.append(k, String(v));
  }
  return h;
}

function msgToJson(m) {
  return { subject: m.subject, data: dec.decode(m.data), reply: m.reply || null,
           headers: hdrsToJson(m.headers) };
}

function done(result, status = 0) {
  clearTimeout(watchdog);
  emit({ event: "result", command, ...result });
  process.exit(status);
}

// --- commands ---------------------------------------------------------------

// Node alone: one connection publishes, another subscribes (literal, `*`, `>`).
async function pubsub() {
  const p = opts.prefix;
  const count = opts.count ?? 10;
  const sub = await connect(connectOpts());
  const pub = await connect(connectOpts());
  const got = { literal: [], star: [], tail: [] };
  sub.subscribe(`${p}.data`, { callback: (_e, m) => got.literal.push(dec.decode(m.data)) });
  sub.subscribe(`${p}.*`, { callback: (_e, m) => got.star.push(m.subject) });
  sub.subscribe(`${p}.>`, { callback: (_e, m) => got.tail.push(m.subject) });
  await sub.flush();
  for (let i = 0; i < count; i++) pub.publish(`${p}.data`, enc.encode(`m${i}`));
  pub.publish(`${p}.a.b`, enc.encode("deep"));
  pub.publish(p, enc.encode("bare"));
  await pub.flush(); // the server has routed everything ...
  await sub.flush(); // ... and the subscriber has handled it (callbacks are synchronous)
  await pub.close();
  await sub.close();
  return got;
}

// Node alone: `members` queue subscribers in one group plus one plain subscriber.
async function queue() {
  const count = opts.count ?? 300;
  const members = opts.members ?? 3;
  const subs = [];
  const counts = new Array(members).fill(0);
  const seen = new Map();
  let plain = 0;
  for (let i = 0; i < members; i++) {
    const nc = await connect(connectOpts());
    nc.subscribe(opts.subject, {
      queue: opts.group,
      callback: (_e, m) => {
        counts[i]++;
        const d = dec.decode(m.data);
        seen.set(d, (seen.get(d) ?? 0) + 1);
      },
    });
    subs.push(nc);
  }
  const plainNc = await connect(connectOpts());
  plainNc.subscribe(opts.subject, { callback: () => plain++ });
  subs.push(plainNc);
  for (const nc of subs) await nc.flush();
  const pub = await connect(connectOpts());
  for (let i = 0; i < count; i++) pub.publish(opts.subject, enc.encode(`q${i}`));
  await pub.flush();
  for (const nc of subs) await nc.flush();
  let duplicates = 0;
  for (const n of seen.values()) if (n > 1) duplicates++;
  const result = { member_counts: counts, plain, distinct: seen.size, duplicates };
  await pub.close();
  for (const nc of subs) await nc.close();
  return result;
}

// A subscriber (optionally in a queue group) that reports what it got when a
// message arrives on `ctl` (or when it has `expect` messages).
async function sub() {
  const nc = await connect(connectOpts());
  const messages = [];
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  nc.subscribe(opts.subject, {
    queue: opts.queue,
    callback: (_e, m) => {
      messages.push(msgToJson(m));
      if (opts.expect && messages.length >= opts.expect) finish();
    },
  });
  if (opts.ctl) nc.subscribe(opts.ctl, { callback: () => finish() });
  await nc.flush();
  emit({ event: "ready" });
  await finished;
  await nc.close();
  return { messages };
}

// A publisher: `count` messages `<payload><i>` (with headers if given), then one
// message on `ctl` if given, then a flush.
async function pub() {
  const nc = await connect(connectOpts());
  const count = opts.count ?? 1;
  const h = jsonToHdrs(opts.headers);
  for (let i = 0; i < count; i++) {
    const data = count === 1 && opts.exact ? opts.payload : `${opts.payload ?? ""}${i}`;
    nc.publish(opts.subject, enc.encode(data), h ? { headers: h } : undefined);
  }
  if (opts.ctl) nc.publish(opts.ctl, enc.encode("stop"));
  await nc.flush();
  await nc.close();
  return { published: count };
}

// A responder: answers `<prefix><request data>`, echoing the request headers and
// adding `Responder: node`. Stops on a message on `ctl`.
async function reply() {
  const nc = await connect(connectOpts());
  let served = 0;
  let finish;
  const finished = new Promise((resolve) => { finish = resolve; });
  nc.subscribe(opts.subject, {
    queue: opts.queue,
    callback: (_e, m) => {
      const h = newHeaders();
      if (m.headers) {
        for (const k of m.headers.keys()) for (const v of m.headers.values(k)) h.append(k, v);
      }
      h.append("Responder", "node");
      m.respond(enc.encode(`${opts.prefix ?? ""}${dec.decode(m.data)}`), { headers: h });
      served++;
    },
  });
  nc.subscribe(opts.ctl, { callback: () => finish() });
  await nc.flush();
  emit({ event: "ready" });
  await finished;
  await nc.flush();
  await nc.close();
  return { served };
}

// One request; the reply (data and headers) or the error code.
async function request() {
  const nc = await connect(connectOpts());
  const started = Date.now();
  try {
    const m = await nc.request(opts.subject, enc.encode(opts.payload ?? ""), {
      timeout: opts.timeout_ms ?? 3000,
      noMux: Boolean(opts.no_mux),
      headers: jsonToHdrs(opts.headers),
    });
    return { reply: msgToJson(m), elapsed_ms: Date.now() - started };
  } catch (err) {
    return { error_code: err.code ?? null, error_message: String(err.message),
             elapsed_ms: Date.now() - started };
  } finally {
    await nc.close();
  }
}

// Connect (with credentials from opts), flush, and report success or the error.
async function connectOnly() {
  try {
    const nc = await connect(connectOpts());
    await nc.flush();
    await nc.close();
    return { connected: true };
  } catch (err) {
    return { connected: false, error_code: err.code ?? null, error_message: String(err.message) };
  }
}

const commands = { pubsub, queue, sub, pub, reply, request, connect: connectOnly };

const run = commands[command];
if (!run) {
  done({ error: `unknown command ${command}` }, 1);
} else {
  run().then((result) => done(result), (err) => done({
    error: String(err && err.message ? err.message : err),
    error_code: err && err.code ? err.code : null,
  }, 1));
}


'use strict'
// Go `flag` package parsing, as the Go examples (stan.go/examples) use it:
// `-name value`, `--name value`, `-name=value`; boolean flags take no value;
// parsing stops at the first non-flag argument or at `--`.

function parseGoFlags (args, spec) {
  const values = Object.assign({}, spec.defaults)
  let i = 0
  for (; i < args.length; i++) {
    const a = args[i]
    if (a === '--') { i++; break }
    if (!a.startsWith('-') || a === '-') break
    let name = a.replace(/^--?/, '')
    let value
    const eq = name.indexOf('=')
    if (eq >= 0) { value = name.slice(eq + 1); name = name.slice(0, eq) }
    const key = spec.aliases[name] || name
    if (spec.bools.includes(key)) {
      values[key] = value === undefined ? true : !['false', '0', 'f', 'F', 'FALSE', 'False'].includes(value)
    } else if (key in spec.defaults) {
      if (value === undefined) {
        if (i + 1 >= args.length) throw new Error(`flag needs an argument: -${name}`)
        value = args[++i]
      }
      values[key] = value
    } else {
      throw new Error(`flag provided but not defined: -${name}`)
    }
  }
  return { flags: values, args: args.slice(i) }
}

// The compact text form gogo-protobuf gives a MsgProto (what Go's printMsg shows).
function msgText (msg) {
  const parts = [`sequence:${msg.getSequence()}`, `subject:${JSON.stringify(msg.getSubject())}`]
  const data = msg.getData()
  if (data && data.length) parts.push(`data:${JSON.stringify(String(data))}`)
  parts.push(`timestamp:${msg.getTimestampRaw()}`)
  if (msg.isRedelivered()) parts.push('redelivered:true')
  if (msg.getRedeliveryCount()) parts.push(`redeliveryCount:${msg.getRedeliveryCount()}`)
  return parts.join(' ') + ' '
}

module.exports = { parseGoFlags, msgText }

import { SteplineError } from '@stepline/core'

/**
 * Why a value cannot go through JSON unchanged, and where: `a function at output.user.fn`.
 * Undefined when it can. Rejected: functions, symbols, BigInts, cycles, and objects that JSON
 * would silently turn into `{}` (Map, Set, class instances without `toJSON`). Allowed with a
 * documented change: `undefined` properties are dropped, `undefined` array items and
 * non-finite numbers become null, values with `toJSON` (Date) are stored as what it returns.
 */
export function unstorable(value: unknown, root: string): string | undefined {
  const t = typeof value
  // Hot path: most step outputs are primitives.
  if (t === 'string' || t === 'number' || t === 'boolean' || value === null || value === undefined) return undefined
  const found = visit(value, [])
  if (found === undefined) return undefined
  let path = root
  for (let i = found.keys.length - 1; i >= 0; i--) {
    const key = found.keys[i]!
    path += typeof key === 'number' ? `[${key}]` : /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
  }
  return found.describe(path)
}

/** What `visit` found, and the keys that lead to it from the innermost out. */
interface Found {
  describe: (path: string) => string
  keys: (string | number)[]
}

// Paths are built only for a value that fails: building one per key on every write cost more than the walk.
function visit(value: unknown, ancestors: object[]): Found | undefined {
  switch (typeof value) {
    case 'function':
      return found((path) => `a function at ${path}`)
    case 'symbol':
      return found((path) => `a symbol at ${path}`)
    case 'bigint':
      return found((path) => `a BigInt at ${path}`)
    case 'object':
      break
    default:
      return undefined
  }
  if (value === null) return undefined
  const obj = value as object
  // A fixed limit: whether a value is stored must not depend on how deep the caller's stack is,
  // and this walk and JSON.stringify overflow the stack at a few thousand levels.
  if (ancestors.length === MAX_DEPTH) return found((path) => `objects and arrays nested more than ${MAX_DEPTH} levels deep, at ${shorten(path)} (flatten it, e.g. into a list of nodes that name their parent)`)
  if (ancestors.includes(obj)) {
    const what = ancestors.length === 1 ? 'the value itself' : 'an enclosing object'
    return found((path) => `a cycle at ${path} (it refers back to ${what})`)
  }
  if (Array.isArray(obj)) {
    ancestors.push(obj)
    for (let i = 0; i < obj.length; i++) {
      const bad = visit(obj[i], ancestors)
      if (bad !== undefined) return bad.keys.push(i), bad
    }
    ancestors.pop()
    return undefined
  }
  // Date and anything else that says how it becomes JSON (a plain object too): JSON.stringify stores what toJSON returns.
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') return undefined
  const proto = Object.getPrototypeOf(obj) as object | null
  if (proto !== Object.prototype && proto !== null) {
    if (obj instanceof Map) return found((path) => `a Map at ${path} (JSON would store it as {}; use Object.fromEntries(map))`)
    if (obj instanceof Set) return found((path) => `a Set at ${path} (JSON would store it as {}; use [...set])`)
    const name = (proto.constructor as { name?: string } | undefined)?.name
    return found((path) => `an instance of ${name || 'a class'} at ${path} (JSON would keep only its own fields)`)
  }
  ancestors.push(obj)
  for (const key in obj) {
    if (!Object.hasOwn(obj, key)) continue
    const bad = visit((obj as Record<string, unknown>)[key], ancestors)
    if (bad !== undefined) return bad.keys.push(key), bad
  }
  ancestors.pop()
  return undefined
}

/** How deep objects and arrays may nest in a stored value (serde_json's default is 128, Python's json about 1000). */
export const MAX_DEPTH = 1000

/** A path thousands of keys long, cut to what a message can show. */
const shorten = (path: string): string => (path.length <= 120 ? path : `${path.slice(0, 60)}…${path.slice(-40)}`)

const found = (describe: (path: string) => string): Found => ({ describe, keys: [] })

/**
 * JSON text of `value` for a column, or null for `undefined`. Throws `UNSTORABLE_OUTPUT`
 * (`subject` says whose value: `Step "charge" of run r1: its output`) when it cannot be stored.
 */
export function encode(value: unknown, subject: () => string, root: string): string | null {
  if (value === undefined) return null
  const bad = unstorable(value, root)
  if (bad !== undefined) throw unstorableError(subject(), bad)
  let text: string | undefined
  try {
    text = JSON.stringify(value)
  } catch (e) {
    if (e instanceof RangeError && /string length/i.test(e.message)) throw tooLarge(subject(), 'longer than a JavaScript string can be (about 512 MB)')
    // What a toJSON returned is not checked above: it may nest past what JSON.stringify's recursion holds.
    if (e instanceof RangeError && /call stack/i.test(e.message)) throw unstorableError(subject(), `objects and arrays nested too deeply for JSON.stringify (its stack ran out), at ${root} or in what a toJSON there returned (keep nesting under ${MAX_DEPTH} levels)`)
    // A toJSON that returns a BigInt or throws.
    throw unstorableError(subject(), `${(e as Error).message} at ${root}`)
  }
  // SQLite holds at most MAX_BYTES in one value; only text this long can pass it (3 bytes a char at most).
  if (text !== undefined && text.length > MAX_BYTES / 3) {
    const bytes = Buffer.byteLength(text)
    if (bytes > MAX_BYTES) throw tooLarge(subject(), `${bytes.toLocaleString('en')} bytes, more than SQLite holds in one value (${MAX_BYTES.toLocaleString('en')})`)
  }
  return text ?? null
}

/** SQLite's longest string or blob (SQLITE_MAX_LENGTH as better-sqlite3 builds it). */
const MAX_BYTES = 1_000_000_000

function tooLarge(subject: string, what: string): SteplineError {
  return new SteplineError(
    'UNSTORABLE_OUTPUT',
    `${subject} cannot be stored: its JSON text is ${what}. Keep large data outside the store (a file, object storage) and return a reference to it, such as its path or URL.`,
  )
}

function unstorableError(subject: string, what: string): SteplineError {
  return new SteplineError(
    'UNSTORABLE_OUTPUT',
    `${subject} cannot be stored: ${what}. Return plain JSON data (objects, arrays, strings, numbers, booleans, null), or convert it first (e.g. String(big)).`,
  )
}

/** The value of a JSON column; NULL reads back as `undefined`. */
export function decode(text: string | null): unknown {
  return text === null ? undefined : JSON.parse(text)
}

import { SteplineError } from '@stepline/core'
import { HttpError } from './errors'
import { takeBytes } from './lazy-body'
import { headerOf } from './adapters/light-request'

const UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 }

/**
 * A body limit in bytes: a whole number, or a string like `'512kb'`, `'1mb'`, `'2gb'` (1024-based).
 * @example
 * parseBytes('1mb') // 1048576
 */
export function parseBytes(limit: number | string): number {
  if (typeof limit === 'number' && Number.isInteger(limit) && limit >= 0) return limit
  const m = typeof limit === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?\s*$/i.exec(limit) : null
  if (m === null) {
    throw new SteplineError('OPTIONS_INVALID', `createHandler: expected \`bodyLimit\` as a whole number of bytes or a size like '1mb' or '512kb', got ${JSON.stringify(limit)}.`)
  }
  return Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()]!)
}

const tooLarge = (limit: number): HttpError => new HttpError(413, 'PAYLOAD_TOO_LARGE', `The request body is larger than the limit of ${limit} bytes.`)

/**
 * Reads a request body up to `limit` bytes. Refuses a `Content-Length` over the limit before
 * reading anything, and stops reading (cancelling the stream) as soon as the count passes it:
 * a client that lies or streams forever costs at most `limit` bytes. Throws an `HttpError` 413,
 * or 400 when the body breaks off (the client went away).
 * A body the Node translation already holds comes back at once, not as a promise.
 * @example
 * const bytes = await readBody(request, parseBytes('1mb'))
 */
export function readBody(request: Request, limit: number): Uint8Array | Promise<Uint8Array> {
  const declared = headerOf(request, 'content-length')
  const held = takeBytes(request)
  if (declared !== null && Number(declared) > limit) {
    // Cancelled, not left unread: the Node translation then closes the connection after the 413
    // instead of reading (and discarding) the whole announced body to keep it alive.
    if (held === undefined) void request.body?.cancel().catch(() => undefined)
    throw tooLarge(limit)
  }
  if (held === undefined) return readStream(request, limit)
  if (held.byteLength > limit) throw tooLarge(limit)
  return held
}

async function readStream(request: Request, limit: number): Promise<Uint8Array> {
  if (request.body === null) return new Uint8Array(0)
  const reader = request.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    const { done, value } = await reader.read().catch((e: unknown) => {
      // The client went away mid-body (or sent a broken chunked encoding): its fault, not the server's.
      throw new HttpError(400, 'BAD_REQUEST', `The request body could not be read: ${e instanceof Error ? e.message : String(e)}`)
    })
    if (done) break
    size += value.byteLength
    if (size > limit) {
      void reader.cancel().catch(() => {})
      throw tooLarge(limit)
    }
    chunks.push(value)
  }
  if (chunks.length === 1) return chunks[0]!
  const out = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Parses a JSON body; an empty body is `undefined`. Throws an `HttpError` 400 for bytes that
 * are not UTF-8 JSON. `JSON.parse` keeps keys such as `__proto__` as plain own properties,
 * so a payload cannot reach any prototype.
 * @example
 * const payload = parseJson(await readBody(request, limit))
 */
export function parseJson(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return undefined
  let text: string
  try {
    text = decoder.decode(bytes)
  } catch {
    throw new HttpError(400, 'INVALID_JSON', 'The request body is not valid UTF-8.')
  }
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new HttpError(400, 'INVALID_JSON', `The request body is not valid JSON: ${e instanceof Error ? e.message : String(e)}`)
  }
}

/**
 * Reads and parses a JSON body up to `limit` bytes (413 over it, 400 when malformed).
 * @example
 * const data = await readJson(request, 1024 * 1024)
 */
export async function readJson(request: Request, limit: number): Promise<unknown> {
  return parseJson(await readBody(request, limit))
}

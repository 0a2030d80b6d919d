import { isSteplineError, serializeError, type SteplineErrorCode } from '@stepline/core'
import { HttpError, type HttpErrorCode, jsonIssues } from './errors'
import { BytesResponse } from './lazy-body'

const encoder = new TextEncoder()

/**
 * The UTF-8 bytes of `text`. Node's `Buffer.from` where there is one: on Node 20
 * `TextEncoder.encode` costs three to four times more for a small body (≈0.5 µs against ≈0.15 µs
 * for a 30-byte JSON), a third of building a 202.
 */
export const utf8Bytes: (text: string) => Uint8Array =
  typeof globalThis.Buffer === 'function' ? (text) => globalThis.Buffer.from(text, 'utf8') : (text) => encoder.encode(text)

/** The UTF-8 length of `text` in bytes, without encoding it where Node's `Buffer` can count. */
const utf8Length: (text: string) => number =
  typeof globalThis.Buffer === 'function' ? (text) => globalThis.Buffer.byteLength(text, 'utf8') : (text) => encoder.encode(text).byteLength

/**
 * JSON of run data: `Error`s become plain `{ name, message, code, … }` without their stack
 * (it tells a caller about the server, not the run), bigints become strings.
 * @example
 * toJson({ run, steps })
 */
export function toJson(value: unknown): string {
  return JSON.stringify(value, runDataReplacer)
}

// One function for every call (not a closure made per response).
function runDataReplacer(this: Record<string, unknown>, key: string, v: unknown): unknown {
  if (v instanceof Error) return serializeError(v)
  if (typeof v === 'bigint') return v.toString()
  if (key === 'stack' && this !== null && typeof this === 'object' && '__stepline_error__' in this) return undefined
  return v
}

/**
 * What the handler answers, before anyone needs a `Response`: a status, plain headers (with a
 * `Content-Length`) and a JSON text. The Node adapters write it as it is, one `writeHead` and
 * one `end`; the fetch handler turns it into a Response (`toResponse`). On Node 20 an undici
 * Response costs more to make than everything else in answering a webhook with 202.
 */
export class JsonReply {
  readonly headers: Record<string, string>
  constructor(
    readonly status: number,
    readonly text: string,
    extraHeaders?: Record<string, string>,
  ) {
    this.headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(utf8Length(text)) }
    if (extraHeaders !== undefined) Object.assign(this.headers, extraHeaders)
  }
}

/** What the handler's routes answer: a JsonReply, or a Response (an event stream). */
export type Reply = JsonReply | Response

/**
 * The Response for a reply: a JsonReply becomes a BytesResponse (its body stays bytes until read).
 * @example
 * return toResponse(json(200, { ok: true }))
 */
export function toResponse(reply: Reply): Response {
  if (!(reply instanceof JsonReply)) return reply
  return new BytesResponse(utf8Bytes(reply.text), reply.status, reply.headers)
}

/**
 * A JSON reply of run data (see `toJson`: errors and bigints are made JSON-safe).
 * @example
 * return json(200, { run, steps })
 */
export function json(status: number, body: unknown, headers?: Record<string, string>): JsonReply {
  return new JsonReply(status, toJson(body), headers)
}

const BY_CODE: Partial<Record<SteplineErrorCode, [number, HttpErrorCode]>> = {
  RUN_NOT_FOUND: [404, 'RUN_NOT_FOUND'],
  RUN_EXISTS: [409, 'RUN_EXISTS'],
  WORKFLOW_NOT_FOUND: [404, 'NOT_FOUND'],
  EVENT_ALREADY_DELIVERED: [409, 'EVENT_ALREADY_DELIVERED'],
  EVENT_NOT_AWAITED: [409, 'EVENT_NOT_AWAITED'],
  OPTIONS_INVALID: [400, 'BAD_REQUEST'],
  ENGINE_CLOSED: [503, 'UNAVAILABLE'],
  STORE_UNAVAILABLE: [503, 'UNAVAILABLE'],
}

/**
 * The reply for a thrown error: an `HttpError` as it says, a `ValidationError` as 422 with
 * every issue, known engine codes by their meaning, anything else as a 500 that tells nothing.
 * @example
 * try { … } catch (e) { return errorReply(e, console.error) }
 */
export function errorReply(error: unknown, onError?: (error: unknown) => void): JsonReply {
  if (error instanceof HttpError) {
    const body: Record<string, unknown> = { error: { code: error.code, message: error.message } }
    if (error.issues) body.issues = error.issues
    return json(error.status, body, error.headers)
  }
  if (isSteplineError(error, 'VALIDATION_FAILED')) {
    const issues = jsonIssues((error as { issues?: readonly { message: string }[] }).issues ?? [])
    return json(422, { error: { code: 'VALIDATION_FAILED', message: error.message }, issues })
  }
  if (isSteplineError(error)) {
    const known = BY_CODE[error.code]
    if (known) return json(known[0], { error: { code: known[1], message: error.message } })
  }
  onError?.(error)
  return json(500, { error: { code: 'INTERNAL_ERROR', message: 'The server failed to handle this request.' } })
}

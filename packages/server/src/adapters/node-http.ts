import type { IncomingMessage, ServerResponse } from 'node:http'
import { HttpError } from '../errors'
import { BytesResponse, heldBytes, holdBytes, installLazyBody, takeBytes } from '../lazy-body'
import { JsonReply, type Reply } from '../respond'
import { clientGoneSignal, firstRawHeader, headersOf, lightRequest } from './light-request'

// The one translation between Node's `http` objects and the fetch handler, used by `serve`,
// `toNodeListener`, Express and Fastify: Node request in, WHATWG `Request` out; `Response` in,
// bytes on the Node response out. Nothing else.

/** What to send as the `Request` body instead of the Node stream (when a framework already read it). */
export interface RequestBodyOverride {
  body: Uint8Array | string | null
}

/** A Request made by `toRequest`, and whether the handler stopped reading its body early. */
export interface Translated {
  request: Request
  /** True when the handler cancelled the body (e.g. too large) before the client finished sending it. */
  bodyCancelled(): boolean
}

/**
 * Bodies up to this size with a `Content-Length` are read into one Buffer before the handler
 * runs (a web stream per request costs more than the body). Larger or chunked bodies stream,
 * so a handler's limit still stops reading them early.
 */
const BUFFERED_BODY_MAX = 64 * 1024

/**
 * The URL of a request served by Node itself: its `Host` header (or the socket's address when
 * there is none) and its path. Checked when the `Request` is made: a malformed host is a 400.
 */
export function requestUrl(req: IncomingMessage, protocol = 'http'): string {
  let host = firstRawHeader(req.rawHeaders, 'host')
  if (host === undefined || host === '') {
    const address = req.socket.localAddress ?? '127.0.0.1'
    host = `${address.includes(':') ? `[${address}]` : address}:${req.socket.localPort ?? 80}`
  }
  return `${protocol}://${host}${req.url ?? '/'}`
}

/** How `toRequest` makes the Request. */
export interface ToRequestOptions {
  /** What to send as the body instead of the Node stream (when a framework already read it). */
  body?: RequestBodyOverride
  /** The handler reads only method, url, headers, signal and body: a LightRequest will do (see light-request). */
  light?: boolean
}

/**
 * A `Request` for a Node request: method, `url`, every header (repeated ones kept), and the
 * body: read whole when small and sized, else streamed from `req` itself, unless `options.body`
 * gives it. `signal` aborts when the client goes away before the response is written, so a
 * handler streaming SSE can stop; it is made on first use only. Throws an `HttpError` 400
 * when `url` is not a URL (a malformed `Host`).
 */
export async function toRequest(req: IncomingMessage, res: ServerResponse, url: string, options: ToRequestOptions = {}): Promise<Translated> {
  const { body: override, light = false } = options
  let state: { cancelled: boolean } | undefined
  const method = req.method ?? 'GET'
  const bodyless = method === 'GET' || method === 'HEAD'
  let buffered: Uint8Array | undefined
  let streamed: ReadableStream<Uint8Array> | undefined
  if (!bodyless && override === undefined && !req.readableEnded) {
    const length = Number(firstRawHeader(req.rawHeaders, 'content-length') ?? NaN)
    if (length <= BUFFERED_BODY_MAX) buffered = await readAll(req)
    else streamed = bodyOf(req, (state = { cancelled: false }))
  }
  if (light && override === undefined && streamed === undefined) {
    const pathAt = url.indexOf('/', url.indexOf('://') + 3)
    const origin = pathAt === -1 ? '' : url.slice(0, pathAt)
    let plain = knownOrigins.has(origin)
    if (!plain) {
      if (!URL.canParse(url)) throw badHost(req)
      plain = rememberOrigin(origin)
    }
    // Its body was read whole (or there is none): nothing is left unread. An empty target makes
    // the request parse its URL for the path (the origin is not plain enough to tell where it starts).
    const target = plain ? url.slice(pathAt) : ''
    return { request: lightRequest({ url, target, method, rawHeaders: req.rawHeaders, bytes: bodyless ? null : (buffered ?? EMPTY), res }), bodyCancelled: never }
  }
  const bodyCancelled = (): boolean => state?.cancelled === true && !req.complete
  const headers = headersOf(req.rawHeaders)
  const init: RequestInit & { duplex?: 'half' } = { method, headers }
  if (override !== undefined && !bodyless) {
    // The bytes differ from what the client sent (re-serialised, maybe inflated): their length and encoding do not apply.
    headers.delete('content-length')
    headers.delete('content-encoding')
    headers.delete('transfer-encoding')
    if (override.body !== null) init.body = override.body
  } else if (streamed !== undefined) {
    init.body = streamed
    init.duplex = 'half'
  }
  let request: Request
  try {
    request = buffered === undefined ? new NodeRequest(url, init, res) : new BufferedNodeRequest(url, init, res, buffered)
  } catch (error) {
    if (!URL.canParse(url)) throw badHost(req)
    throw error
  }
  return { request, bodyCancelled }
}

/**
 * Origins (`http://host:port`) that made a valid URL with a path: a server hears few Host
 * headers, and parsing each request's URL only to check its host costs as much as the rest of
 * the translation. A path never makes an origin-form URL invalid, so the origin alone decides.
 */
const knownOrigins = new Set<string>()
// Scheme, host and port only: no user info, query or fragment that would move where the path starts.
const PLAIN_ORIGIN = /^https?:\/\/[A-Za-z0-9\-.:[\]]+$/
/** Keeps a valid origin if it is plain; says whether it was. */
function rememberOrigin(origin: string): boolean {
  if (!PLAIN_ORIGIN.test(origin)) return false
  // Many distinct Host headers (a scan) only cost parsing again, never memory.
  if (knownOrigins.size >= 256) knownOrigins.clear()
  knownOrigins.add(origin)
  return true
}

const never = (): boolean => false
const EMPTY = new Uint8Array(0)

const badHost = (req: IncomingMessage): HttpError => new HttpError(400, 'BAD_REQUEST', `The request's Host header (${JSON.stringify(req.headers.host)}) is not a valid host.`)

/**
 * A `Request` whose `signal` is made when first read: most handlers never look at it, and an
 * `AbortController` that undici's `Request` must follow costs more than the rest of the request.
 */
class NodeRequest extends Request {
  protected readonly res: ServerResponse
  #signal: AbortSignal | undefined
  constructor(url: string, init: RequestInit, res: ServerResponse) {
    super(url, init)
    this.res = res
  }
  // @ts-expect-error -- lib.dom types `signal` as a property; undici's is an accessor, like this one.
  override get signal(): AbortSignal {
    return (this.#signal ??= clientGoneSignal(this.res))
  }
}

/** A NodeRequest whose small body was read whole: it stays bytes until someone wants a stream (see lazy-body). */
class BufferedNodeRequest extends NodeRequest {
  constructor(url: string, init: RequestInit, res: ServerResponse, bytes: Uint8Array) {
    super(url, init, res)
    holdBytes(this, bytes)
  }

  // @ts-expect-error -- undici-types declares `clone` as a property; on the prototype it is a method, like this one.
  override clone(): Request {
    const bytes = heldBytes(this)
    if (bytes == null) throw new TypeError('Request.clone: the body has already been read.')
    return new BufferedNodeRequest(this.url, { method: this.method, headers: this.headers }, this.res, bytes)
  }
}
installLazyBody(BufferedNodeRequest)

/** A small sized body, whole. */
function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const onData = (chunk: Buffer): void => void chunks.push(chunk)
    const onEnd = (): void => {
      detach()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))
    }
    const onError = (error: Error): void => {
      detach()
      reject(error)
    }
    const onAborted = (): void => onError(new Error('The client aborted the request.'))
    const detach = (): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onAborted)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onAborted)
  })
}

/**
 * The request body as a web stream with back-pressure. Cancelling it (a handler refusing a body
 * that is too large) stops reading without destroying the socket, so the answer still goes out.
 * Not `Readable.toWeb(req)`: its cancel destroys the request, and with it the connection.
 */
function bodyOf(req: IncomingMessage, state: { cancelled: boolean }): ReadableStream<Uint8Array> {
  const listeners: Array<[string, (...args: any[]) => void]> = []
  const on = (event: string, fn: (...args: any[]) => void): void => {
    listeners.push([event, fn])
    req.on(event, fn)
  }
  const detach = (): void => {
    for (const [event, fn] of listeners) req.off(event, fn)
  }
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        on('data', (chunk: Buffer) => {
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
          if ((controller.desiredSize ?? 0) <= 0) req.pause()
        })
        on('end', () => {
          detach()
          controller.close()
        })
        on('error', (e: Error) => {
          detach()
          controller.error(e)
        })
        on('aborted', () => {
          detach()
          controller.error(new Error('The client aborted the request.'))
        })
      },
      pull() {
        req.resume()
      },
      cancel() {
        state.cancelled = true
        detach()
        req.pause()
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  )
}

/**
 * Writes a handler's reply to `res`: a JsonReply at once (status, headers and body in one
 * write, nothing to wait for), a Response as `writeResponse` does.
 */
export function writeReply(res: ServerResponse, reply: Reply, method = 'GET', closeAfter = false): Promise<void> | undefined {
  if (!(reply instanceof JsonReply)) return writeResponse(res, reply, method, closeAfter)
  res.writeHead(reply.status, closeAfter ? { ...reply.headers, connection: 'close' } : reply.headers)
  res.end(method === 'HEAD' ? undefined : reply.text)
  return undefined
}

/**
 * Writes `response` to `res`: status, headers (each `Set-Cookie` apart) and the body. A sized
 * body goes out in one write; any other (SSE) chunk by chunk as the handler produces it,
 * honouring back-pressure. A HEAD request gets the headers only. Resolves when the body is
 * written or the client went away; the body is cancelled in the latter case.
 * `closeAfter`: the request body was left unread, so the connection cannot be reused.
 */
export async function writeResponse(res: ServerResponse, response: Response, method = 'GET', closeAfter = false): Promise<void> {
  const bytes = takeBytes(response)
  const plain = response instanceof BytesResponse ? response.plainHeaders() : undefined
  if (bytes !== undefined && plain !== undefined) {
    // One of our own responses, untouched: status, headers and body in one write.
    res.writeHead(response.status, closeAfter ? { ...plain, connection: 'close' } : plain)
    return void res.end(method === 'HEAD' ? undefined : bytes)
  }
  res.statusCode = response.status
  if (response.statusText !== '') res.statusMessage = response.statusText
  const headers = response.headers
  for (const [name, value] of headers) if (name !== 'set-cookie') res.setHeader(name, value)
  const cookies = headers.getSetCookie()
  if (cookies.length > 0) res.setHeader('set-cookie', cookies)
  if (closeAfter) res.setHeader('connection', 'close')

  if (bytes !== undefined) return void res.end(method === 'HEAD' ? undefined : bytes)
  const body = response.body
  if (body === null || method === 'HEAD') {
    await body?.cancel().catch(() => undefined)
    res.end()
    return
  }
  const type = headers.get('content-type')
  if (headers.has('content-length') && (type === null || !type.startsWith('text/event-stream'))) {
    return void res.end(Buffer.from(await response.arrayBuffer()))
  }
  // Headers go out now: an event stream's client sees the 200 before the first event.
  res.flushHeaders()
  const reader = body.getReader()
  let closed = false
  const onClose = (): void => {
    closed = true
    reader.cancel().catch(() => undefined)
  }
  // The client may have gone before the answer was ready: its 'close' has fired already.
  if (res.destroyed) onClose()
  else res.once('close', onClose)
  try {
    while (!closed) {
      const chunk = await reader.read()
      if (chunk.done) break
      if (!res.write(chunk.value)) await drained(res)
    }
    if (!res.destroyed) res.end()
  } catch (error) {
    // Headers are sent: the only way to tell the client the body broke is to cut the connection.
    reader.cancel(error).catch(() => undefined)
    res.destroy(error instanceof Error ? error : new Error(String(error)))
  } finally {
    res.off('close', onClose)
  }
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      res.off('close', done)
      resolve()
    }
    res.once('drain', done)
    res.once('close', done)
  })
}

import type { IncomingMessage, ServerResponse } from 'node:http'

// Shared by the adapters over Node's `http` objects (Express, Fastify): Node request in,
// WHATWG `Request` out; `Response` in, bytes on the Node response out. Nothing else.

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
 * A `Request` for a Node request: method, `url`, every header (repeated ones kept), and the
 * body streamed from `req` itself unless `override` gives it. `signal` aborts when the client
 * goes away before the response is written, so a handler streaming SSE can stop.
 */
export function toRequest(req: IncomingMessage, res: ServerResponse, url: string, override?: RequestBodyOverride): Translated {
  const headers = new Headers()
  const raw = req.rawHeaders
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    // HTTP/2 pseudo-headers (:path, :method) are not headers a Request may carry.
    if (name.charCodeAt(0) !== 58) headers.append(name, raw[i + 1]!)
  }
  const controller = new AbortController()
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new Error('The client closed the connection.'))
  })

  const state = { cancelled: false }
  const method = req.method ?? 'GET'
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: controller.signal }
  if (method !== 'GET' && method !== 'HEAD') {
    if (override !== undefined) {
      // The bytes differ from what the client sent (re-serialised, maybe inflated): their length and encoding do not apply.
      headers.delete('content-length')
      headers.delete('content-encoding')
      headers.delete('transfer-encoding')
      if (override.body !== null) init.body = override.body
    } else if (!req.readableEnded) {
      init.body = bodyOf(req, state)
      init.duplex = 'half'
    }
  }
  return { request: new Request(url, init), bodyCancelled: () => state.cancelled && !req.complete }
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
 * Writes `response` to `res`: status, headers (each `Set-Cookie` apart) and the body, chunk by
 * chunk as the handler produces it (SSE arrives live), honouring back-pressure. Resolves when
 * the body is written or the client went away; the body is cancelled in the latter case.
 * `closeAfter`: the request body was left unread, so the connection cannot be reused.
 */
export async function writeResponse(res: ServerResponse, response: Response, method = 'GET', closeAfter = false): Promise<void> {
  res.statusCode = response.status
  if (response.statusText !== '') res.statusMessage = response.statusText
  for (const [name, value] of response.headers) if (name !== 'set-cookie') res.setHeader(name, value)
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) res.setHeader('set-cookie', cookies)
  if (closeAfter) res.setHeader('connection', 'close')

  const body = response.body
  if (body === null || method === 'HEAD') {
    await body?.cancel().catch(() => undefined)
    res.end()
    return
  }
  // Headers go out now: an event stream's client sees the 200 before the first event.
  res.flushHeaders()
  const reader = body.getReader()
  let closed = res.destroyed
  const onClose = (): void => {
    closed = true
    reader.cancel().catch(() => undefined)
  }
  res.once('close', onClose)
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

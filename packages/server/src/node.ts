import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createHandler, type FetchHandler, type HandlerOptions } from './handler'

/**
 * Options of `serve`: the handler's options plus where to listen.
 * @example
 * await serve({ engine, workflows: [order], port: 3000, host: '0.0.0.0' })
 */
export interface ServeOptions extends HandlerOptions {
  /** Default 0: a free port, read it from the result. */
  port?: number
  /** Default `'127.0.0.1'`: only this machine. Pass `'0.0.0.0'` to listen on every interface. */
  host?: string
}

/**
 * A listening server.
 * @example
 * const { url, close } = await serve({ engine }); await fetch(`${url}/health`); await close()
 */
export interface Served {
  /** `http://<host>:<port>` */
  url: string
  port: number
  /** Stops listening and ends open connections (run streams included). */
  close(): Promise<void>
}

/** A request body as a web stream. Cancelling it stops reading but leaves the socket to the response. */
function bodyOf(req: IncomingMessage, state: { cancelled: boolean }): ReadableStream<Uint8Array> {
  const listeners: [string, (...a: any[]) => void][] = []
  const on = (event: string, fn: (...a: any[]) => void): void => {
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
    { highWaterMark: 64 * 1024, size: (c) => c.byteLength },
  )
}

/** `IncomingMessage` → `Request`: the body streams, the signal aborts when the client goes away. */
function toRequest(req: IncomingMessage, res: ServerResponse, state: { cancelled: boolean }): Request {
  const host = req.headers.host ?? `${req.socket.localAddress}:${req.socket.localPort}`
  const url = `http://${host}${req.url ?? '/'}`
  const headers = new Headers()
  for (let i = 0; i < req.rawHeaders.length; i += 2) headers.append(req.rawHeaders[i]!, req.rawHeaders[i + 1]!)
  const controller = new AbortController()
  res.once('close', () => {
    if (!res.writableFinished) controller.abort()
  })
  const method = req.method ?? 'GET'
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: controller.signal }
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = bodyOf(req, state)
    init.duplex = 'half'
  }
  return new Request(url, init)
}

/** `Response` → `ServerResponse`: sized bodies in one write, others (SSE) streamed chunk by chunk. */
async function send(response: Response, res: ServerResponse, closeAfter: boolean): Promise<void> {
  res.statusCode = response.status
  response.headers.forEach((value, key) => {
    if (key !== 'set-cookie') res.setHeader(key, value)
  })
  const cookies = response.headers.getSetCookie()
  if (cookies.length > 0) res.setHeader('set-cookie', cookies)
  // The rest of an unread body would follow on the socket: close it rather than read it.
  if (closeAfter) res.setHeader('connection', 'close')
  if (response.body === null) return void res.end()
  if (response.headers.has('content-length')) return void res.end(Buffer.from(await response.arrayBuffer()))
  res.flushHeaders()
  const reader = response.body.getReader()
  const stop = (): void => void reader.cancel().catch(() => {})
  res.once('close', stop)
  try {
    for (;;) {
      const { done, value } = await reader.read()
      if (done) break
      if (!res.write(value)) await new Promise<void>((resolve) => {
        const go = (): void => {
          res.off('drain', go)
          res.off('close', go)
          resolve()
        }
        res.on('drain', go)
        res.on('close', go)
      })
      if (res.destroyed) break
    }
  } catch {
    // The stream was cancelled because the client left.
  } finally {
    res.off('close', stop)
    res.end()
  }
}

/**
 * A `node:http` request listener that serves a fetch handler, for your own server.
 * @example
 * import { createServer } from 'node:http'
 * createServer(toNodeListener(createHandler({ engine, workflows: [order] }))).listen(3000, '127.0.0.1')
 */
export function toNodeListener(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const state = { cancelled: false }
    void (async () => {
      let response: Response
      try {
        response = await handler(toRequest(req, res, state))
      } catch (e) {
        response = new Response(JSON.stringify({ error: { code: 'INTERNAL_ERROR', message: 'The server failed to handle this request.' } }), { status: 500, headers: { 'content-type': 'application/json' } })
        console.error('stepline server:', e)
      }
      await send(response, res, state.cancelled && !req.complete)
    })().catch((e: unknown) => {
      console.error('stepline server:', e)
      res.destroy()
    })
  }
}

/**
 * Serves Stepline on `node:http`: webhooks, the run API and health (see `createHandler`).
 * Listens on 127.0.0.1 unless `host` says otherwise; `port: 0` (the default) picks a free port.
 * @example
 * const server = await serve({ engine, workflows: [order], port: 3000, token: process.env.STEPLINE_TOKEN })
 * console.log(`listening on ${server.url}`)
 * process.on('SIGTERM', () => server.close())
 */
export async function serve(options: ServeOptions): Promise<Served> {
  const { port = 0, host = '127.0.0.1', ...handlerOptions } = options
  const server = createServer(toNodeListener(createHandler(handlerOptions)))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${shown}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()))
        server.closeAllConnections()
      }),
  }
}

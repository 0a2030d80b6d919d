import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { connect } from 'node:net'
import { expect, it } from 'vitest'
import { createEngine, workflow } from '@stepline/core'
import { createHandler, type FetchHandler } from '../src/handler'
import { signPayload } from '../src/signature'
import { webhook } from '../src/triggers'

/** What the stub's `/echo` answers. */
export interface Echo {
  method: string
  url: string
  headers: Record<string, string>
  length: number
  sha256: string
  body?: string
}

/** What a test server exposes: its base URL and how to close it. */
export interface Served {
  url: string
  close(): Promise<void>
}

/** A stub fetch handler under `/api` and what it saw, for the adapter tests. */
export function stubHandler() {
  let release: () => void = () => undefined
  const seen = { sseAborted: false }
  const gate = { next: new Promise<void>((r) => (release = r)) }
  const handler: FetchHandler = async (request) => {
    const url = new URL(request.url)
    const path = url.pathname.replace(/^\/api/, '')
    if (path.startsWith('/echo')) {
      const bytes = new Uint8Array(await request.arrayBuffer())
      const text = new TextDecoder().decode(bytes)
      const headers = new Headers({ 'content-type': 'application/json', 'x-stub': 'yes' })
      headers.append('set-cookie', 'a=1; Path=/')
      headers.append('set-cookie', 'b=2; Path=/')
      return new Response(
        JSON.stringify({
          method: request.method,
          url: url.pathname + url.search,
          headers: Object.fromEntries(request.headers),
          length: bytes.length,
          sha256: createHash('sha256').update(bytes).digest('hex'),
          body: bytes.length <= 1024 ? text : undefined,
        }),
        { status: 200, headers },
      )
    }
    if (path === '/accept' && request.method === 'POST') {
      return Response.json({ runId: 'run-1', got: await request.json() }, { status: 202 })
    }
    if (path === '/limit') {
      // Like a body limit: read a little, refuse the rest without reading it.
      const reader = request.body!.getReader()
      let read = 0
      while (read < 16 * 1024) {
        const chunk = await reader.read()
        if (chunk.done) break
        read += chunk.value.byteLength
      }
      await reader.cancel()
      return Response.json({ error: 'too large', read }, { status: 413 })
    }
    if (path === '/events') {
      const enc = new TextEncoder()
      request.signal.addEventListener('abort', () => (seen.sseAborted = true))
      const stream = new ReadableStream<Uint8Array>({
        async start(controller) {
          controller.enqueue(enc.encode('event: tick\ndata: {"n":1}\n\n'))
          // The 2nd event waits for the client to have read the 1st: only live streaming gets past this.
          await gate.next
          controller.enqueue(enc.encode('event: tick\ndata: {"n":2}\n\n'))
          await new Promise((r) => setTimeout(r, 10))
          controller.enqueue(enc.encode('event: tick\ndata: {"n":3}\n\n'))
          controller.close()
        },
      })
      return new Response(stream, { headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } })
    }
    if (path === '/forever') {
      request.signal.addEventListener('abort', () => (seen.sseAborted = true))
      let timer: NodeJS.Timeout
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(': open\n\n'))
          timer = setInterval(() => controller.enqueue(new TextEncoder().encode(': ping\n\n')), 20)
        },
        cancel() {
          clearInterval(timer)
          seen.sseAborted = true
        },
      })
      return new Response(stream, { headers: { 'content-type': 'text/event-stream' } })
    }
    return Response.json({ error: 'not found' }, { status: 404 })
  }
  return { handler, seen, release: () => release() }
}

/**
 * The behaviours every adapter must show, against a real server on port 0 that routes `/api/*`
 * to the stub and answers `GET /own` itself. `ownNodeTranslation`: the adapter uses `node-http.ts`.
 */
export function adapterSuite(start: (handler: FetchHandler) => Promise<Served>, options: { ownNodeTranslation?: boolean } = {}): void {
  const withServer = async (fn: (url: string, stub: ReturnType<typeof stubHandler>) => Promise<void>): Promise<void> => {
    const stub = stubHandler()
    const served = await start(stub.handler)
    try {
      await fn(served.url, stub)
    } finally {
      await served.close()
    }
  }

  it('passes method, full URL, headers and body through, and the response headers back', () =>
    withServer(async (url) => {
      const res = await fetch(`${url}/api/echo/x?q=1`, { method: 'PUT', headers: { 'x-custom': 'abc', 'content-type': 'text/plain' }, body: 'hello' })
      expect(res.status).toBe(200)
      expect(res.headers.get('x-stub')).toBe('yes')
      expect(res.headers.getSetCookie()).toEqual(['a=1; Path=/', 'b=2; Path=/'])
      const echo = (await res.json()) as Echo
      expect(echo).toMatchObject({ method: 'PUT', url: '/api/echo/x?q=1', body: 'hello', length: 5 })
      expect(echo.headers).toMatchObject({ 'x-custom': 'abc', 'content-type': 'text/plain', host: new URL(url).host })
    }))

  it('GET carries no body; the framework keeps its own routes', () =>
    withServer(async (url) => {
      const echo = (await (await fetch(`${url}/api/echo`)).json()) as Echo
      expect(echo).toMatchObject({ method: 'GET', url: '/api/echo', length: 0 })
      const own = await fetch(`${url}/own`)
      expect(await own.text()).toBe('own route')
    }))

  it('round-trips a 200 KB body byte for byte', () =>
    withServer(async (url) => {
      const big = new Uint8Array(200 * 1024)
      for (let i = 0; i < big.length; i++) big[i] = (i * 31 + (i >> 8)) & 0xff
      const res = await fetch(`${url}/api/echo/big`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: big })
      const echo = (await res.json()) as Echo
      expect(echo.length).toBe(big.length)
      expect(echo.sha256).toBe(createHash('sha256').update(big).digest('hex'))
    }))

  it('lets the handler refuse a large body without reading it all, and still answers', () =>
    withServer(async (url) => {
      const res = await fetch(`${url}/api/limit`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: new Uint8Array(8 * 1024 * 1024) })
      expect(res.status).toBe(413)
      // Our Node translation (Express, Fastify) closes a connection whose body was left unread; @hono/node-server is Hono's own.
      if (options.ownNodeTranslation) expect(res.headers.get('connection')).toBe('close')
      const body = (await res.json()) as { read: number }
      expect(body.read).toBeLessThan(1024 * 1024)
    }))

  it('answers 202 with JSON from a POSTed JSON body', () =>
    withServer(async (url) => {
      const res = await fetch(`${url}/api/accept`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ order: 7 }) })
      expect(res.status).toBe(202)
      expect(res.headers.get('content-type')).toMatch(/application\/json/)
      expect(await res.json()).toEqual({ runId: 'run-1', got: { order: 7 } })
    }))

  it("passes the handler's 404 through", () =>
    withServer(async (url) => {
      const res = await fetch(`${url}/api/nope`)
      expect(res.status).toBe(404)
      expect(await res.json()).toEqual({ error: 'not found' })
    }))

  it('streams SSE events as they are produced', () =>
    withServer(async (url, stub) => {
      const res = await fetch(`${url}/api/events`)
      expect(res.status).toBe(200)
      expect(res.headers.get('content-type')).toBe('text/event-stream')
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader()
      let text = ''
      while (!text.includes('"n":1')) text += (await reader.read()).value ?? ''
      expect(text).not.toContain('"n":2')
      stub.release()
      for (;;) {
        const { done, value } = await reader.read()
        if (done) break
        text += value
      }
      expect(text.match(/^data: .*$/gm)).toEqual(['data: {"n":1}', 'data: {"n":2}', 'data: {"n":3}'])
    }))

  it('stops a stream when the client goes away', () =>
    withServer(async (url, stub) => {
      const ac = new AbortController()
      const res = await fetch(`${url}/api/forever`, { signal: ac.signal })
      const reader = res.body!.getReader()
      await reader.read()
      ac.abort()
      await expect.poll(() => stub.seen.sseAborted, { timeout: 2000 }).toBe(true)
    }))
}

/**
 * A real webhook through `createHandler` (basePath `/api`) behind the adapter: a signed POST
 * answers `202 { runId }` and the run completes with the body as payload.
 */
export function webhookSuite(start: (handler: FetchHandler) => Promise<Served>): void {
  it('drives a signed webhook through createHandler: 202 { runId }, and the run completes', async () => {
    const engine = createEngine()
    const order = workflow('order', { triggers: [webhook({ path: 'orders/created', secret: 's3cret' })] }).step('total', (ctx) => {
      const p = ctx.payload as { items: number[] }
      return p.items.reduce((a, b) => a + b, 0)
    })
    const served = await start(createHandler({ engine, workflows: [order], basePath: '/api' }))
    try {
      // Spacing a parser would normalise: the signature covers these exact bytes.
      const body = '{ "items" : [1, 2, 3.5] }'
      const res = await fetch(`${served.url}/api/webhooks/orders/created`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-stepline-signature': signPayload('s3cret', body) },
        body,
      })
      expect(res.status).toBe(202)
      const { runId } = (await res.json()) as { runId: string }
      expect(await engine.handle(runId).result()).toBe(6.5)
      const refused = await fetch(`${served.url}/api/webhooks/orders/created`, { method: 'POST', headers: { 'x-stepline-signature': signPayload('wrong', body) }, body })
      expect(refused.status).toBe(401)
      expect((await fetch(`${served.url}/api/health`)).status).toBe(200)
    } finally {
      await served.close()
      await engine.close()
    }
  })
}

/** Resolves the base URL of a Node server listening on port 0. */
export function urlOf(server: import('node:net').Server): string {
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('server is not listening on a TCP port')
  return `http://127.0.0.1:${address.port}`
}

/** Sends raw bytes and returns everything the server wrote until it closed the connection. */
export async function rawExchange(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  await once(socket, 'connect')
  socket.end(request)
  let out = ''
  socket.setEncoding('utf8').on('data', (d: string) => (out += d))
  await once(socket, 'close')
  return out
}

/** Sends the headers and a part of a small sized body, then leaves. */
export async function leaveMidBody(url: string, path: string): Promise<void> {
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  await once(socket, 'connect')
  socket.write(`POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":`)
  await new Promise((r) => setTimeout(r, 50))
  socket.destroy()
  await new Promise((r) => setTimeout(r, 100))
}

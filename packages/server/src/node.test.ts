import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { describe, expect, it } from 'vitest'
import { createEngine } from '@stepline/core'
import { adapterSuite, rawExchange, stubHandler, urlOf, webhookSuite, type Served } from '../test/adapter-suite'
import { createHandler, type FetchHandler } from './handler'
import { serve, toNodeListener } from './node'

async function start(handler: FetchHandler): Promise<Served & { server: Server }> {
  const listener = toNodeListener(handler)
  const server = createServer((req, res) => (req.url === '/own' ? res.end('own route') : listener(req, res)))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    server,
    url: urlOf(server),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}

describe('toNodeListener', () => {
  adapterSuite((handler) => start(handler), { ownNodeTranslation: true })
  webhookSuite((handler) => start(handler))

  it('gives a handler the small body it buffered whichever way it reads it: clone, text, stream', async () => {
    const served = await start(async (request) => {
      const copy = request.clone()
      const text = await request.text()
      const streamed = await new Response(copy.body).text()
      return Response.json({ text, streamed, used: request.bodyUsed, again: await request.text().catch((e: Error) => e.name) })
    })
    try {
      const res = await fetch(`${served.url}/x`, { method: 'POST', body: 'hello body' })
      expect(await res.json()).toEqual({ text: 'hello body', streamed: 'hello body', used: true, again: 'TypeError' })
    } finally {
      await served.close()
    }
  })

  it("writes a wrapper's changes to the handler's own responses", async () => {
    const engine = createEngine()
    const inner = createHandler({ engine })
    const served = await start(async (request) => {
      const res = await inner(request)
      res.headers.set('x-wrapped', 'yes')
      return res
    })
    try {
      const res = await fetch(`${served.url}/health`)
      expect(res.headers.get('x-wrapped')).toBe('yes')
      expect(await res.json()).toMatchObject({ ok: true })
    } finally {
      await served.close()
      await engine.close()
    }
  })

  it('answers HEAD with the headers of GET and no body', async () => {
    const engine = createEngine()
    const served = await serve({ engine })
    try {
      const head = await rawExchange(served.url, 'HEAD /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
      expect(head).toMatch(/content-type: application\/json/i)
      const length = Number(/content-length: (\d+)/i.exec(head)?.[1])
      expect(length).toBeGreaterThan(0)
      expect(head.endsWith('\r\n\r\n')).toBe(true) // nothing after the headers
    } finally {
      await served.close()
      await engine.close()
    }
  })

  it('answers HEAD on a stream with its headers, and stops the stream', async () => {
    const stub = stubHandler()
    const served = await start(stub.handler)
    try {
      const head = await rawExchange(served.url, 'HEAD /api/forever HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
      expect(head).toMatch(/^HTTP\/1\.1 200 OK\r\n/)
      expect(head).toMatch(/content-type: text\/event-stream/i)
      expect(head.endsWith('\r\n\r\n')).toBe(true)
      await expect.poll(() => stub.seen.sseAborted, { timeout: 2000 }).toBe(true)
    } finally {
      await served.close()
    }
  })

  it('answers a malformed Host header with 400, not 500', async () => {
    const served = await start(stubHandler().handler)
    try {
      const res = await rawExchange(served.url, 'GET /api/echo HTTP/1.1\r\nHost: bad host[\r\nConnection: close\r\n\r\n')
      expect(res).toMatch(/^HTTP\/1\.1 400 /)
      expect(res).toContain('"code":"BAD_REQUEST"')
    } finally {
      await served.close()
    }
  })

  it('builds the URL from the socket when there is no Host header (HTTP/1.0)', async () => {
    const served = await start(stubHandler().handler)
    try {
      const res = await rawExchange(served.url, 'GET /api/echo?x=1 HTTP/1.0\r\n\r\n')
      expect(res).toMatch(/^HTTP\/1\.1 200 /)
      expect(res).toContain('"url":"/api/echo?x=1"')
    } finally {
      await served.close()
    }
  })

  it('answers 500 INTERNAL_ERROR when the handler throws', async () => {
    const served = await start(async () => {
      throw new Error('boom')
    })
    const logged = console.error
    console.error = () => undefined
    try {
      const res = await fetch(`${served.url}/x`)
      expect(res.status).toBe(500)
      expect(await res.json()).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'The server failed to handle this request.' } })
    } finally {
      console.error = logged
      await served.close()
    }
  })

  it('cuts the connection and logs when the answer cannot be written, and goes on serving', async () => {
    let calls = 0
    const served = await start(async () => (++calls === 1 ? ({ status: 200 } as unknown as Response) : new Response('fine')))
    const logged = console.error
    const errors: unknown[] = []
    console.error = (...args: unknown[]) => void errors.push(args)
    try {
      await expect(fetch(`${served.url}/x`)).rejects.toThrow()
      expect(errors).toHaveLength(1)
      expect(await (await fetch(`${served.url}/x`)).text()).toBe('fine')
    } finally {
      console.error = logged
      await served.close()
    }
  })

  it("aborts the request's signal when the client goes away, and not when the answer was written", async () => {
    const signals: AbortSignal[] = []
    const served = await start(async (request) => {
      signals.push(request.signal)
      if (new URL(request.url).pathname === '/quick') return new Response('ok')
      return new Response(new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode(': open\n\n')) }), { headers: { 'content-type': 'text/event-stream' } })
    })
    try {
      expect(await (await fetch(`${served.url}/quick`)).text()).toBe('ok')
      const ac = new AbortController()
      const res = await fetch(`${served.url}/slow`, { signal: ac.signal })
      await res.body!.getReader().read()
      ac.abort()
      await expect.poll(() => signals[1]?.aborted, { timeout: 2000 }).toBe(true)
      expect(signals[0]!.aborted).toBe(false)
      expect(signals[0]).toBe(signals[0]) // one signal per request, made once
    } finally {
      await served.close()
    }
  })

  it('cancels a streamed answer whose client went away before the handler answered', async () => {
    let cancelled = false
    let answered = false
    const served = await start(async (request) => {
      await new Promise((r) => request.signal.addEventListener('abort', r))
      await new Promise((r) => setTimeout(r, 20))
      answered = true
      const body = new ReadableStream<Uint8Array>({
        start: (c) => c.enqueue(new TextEncoder().encode(': open\n\n')),
        cancel: () => void (cancelled = true),
      })
      return new Response(body, { headers: { 'content-type': 'text/event-stream' } })
    })
    try {
      const ac = new AbortController()
      const pending = fetch(`${served.url}/slow`, { signal: ac.signal }).catch(() => undefined)
      await new Promise((r) => setTimeout(r, 50))
      ac.abort()
      await pending
      await expect.poll(() => answered, { timeout: 2000 }).toBe(true)
      await expect.poll(() => cancelled, { timeout: 2000 }).toBe(true)
    } finally {
      await served.close()
    }
  })

  it('serves many small POSTs on one keep-alive connection, bodies intact', async () => {
    const served = await start(stubHandler().handler)
    try {
      for (let i = 0; i < 50; i++) {
        const body = JSON.stringify({ i, pad: 'x'.repeat(i * 97) })
        const echo = (await (await fetch(`${served.url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).json()) as { body: string; length: number }
        expect(echo.length).toBe(Buffer.byteLength(body))
        if (echo.length <= 1024) expect(echo.body).toBe(body)
      }
    } finally {
      await served.close()
    }
  })
})

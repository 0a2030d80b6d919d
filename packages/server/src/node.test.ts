import { once } from 'node:events'
import { createServer, type Server } from 'node:http'
import { describe, expect, it, vi } from 'vitest'
import { createEngine, workflow } from '@stepline/core'
import { adapterSuite, rawExchange, stubHandler, urlOf, webhookSuite, type Served } from '../test/adapter-suite'
import { createHandler, type FetchHandler } from './handler'
import { serve, toNodeListener } from './node'
import { webhook } from './triggers'

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

  describe('answers written together at the end of a turn', () => {
    const order = workflow<{ n: number }>('order', { triggers: [webhook({ path: 'orders' })] }).step('double', (ctx) => ctx.payload.n * 2)

    it('answers of requests that arrive together each reach their own client, and pipelined ones come back in order', async () => {
      const engine = createEngine()
      const served = await start(createHandler({ engine, workflows: [order] }))
      try {
        const answers = await Promise.all(
          Array.from({ length: 40 }, (_, n) => fetch(`${served.url}/webhooks/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ n }) })),
        )
        expect(answers.map((r) => r.status)).toEqual(Array(40).fill(202))
        const ids = await Promise.all(answers.map(async (r) => ((await r.json()) as { runId: string }).runId))
        expect(new Set(ids).size).toBe(40)
        const payloads = await Promise.all(ids.map(async (id) => (await engine.getRun(id))?.payload))
        expect(payloads).toEqual(Array.from({ length: 40 }, (_, n) => ({ n })))

        // Three requests in one write on one connection: three answers, in the order asked.
        const post = (n: number): string => `POST /webhooks/orders HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${`{"n":${n}}`.length}\r\n\r\n{"n":${n}}`
        const raw = await rawExchange(served.url, post(1) + post(2) + post(3).replace('Host: localhost', 'Host: localhost\r\nConnection: close') + '')
        const runIds = [...raw.matchAll(/\{"runId":"([^"]+)"\}/g)].map((m) => m[1]!)
        expect(raw.match(/HTTP\/1\.1 202/g)).toHaveLength(3)
        expect(await Promise.all(runIds.map(async (id) => (await engine.getRun(id))?.payload))).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }])
      } finally {
        await served.close()
        await engine.close()
      }
    })

    it('a client that leaves while its answer waits for the end of the turn: nothing is written to it, nothing is logged, the server serves on', async () => {
      const engine = createEngine()
      const listener = toNodeListener(createHandler({ engine, workflows: [order] }))
      const logged = vi.spyOn(console, 'error').mockImplementation(() => undefined)
      let destroyed = 0
      const server = createServer((req, res) => {
        // Queued before the answer's write (same turn, first in line): the connection is gone when it comes.
        if (req.headers['x-leave'] === '1') setImmediate(() => (res.destroy(), destroyed++))
        listener(req, res)
      })
      server.listen(0, '127.0.0.1')
      await once(server, 'listening')
      try {
        const gone = await fetch(`${urlOf(server)}/webhooks/orders`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-leave': '1' }, body: '{"n":1}' }).catch((e: Error) => e)
        expect(gone).toBeInstanceOf(Error)
        expect(destroyed).toBe(1)
        const res = await fetch(`${urlOf(server)}/webhooks/orders`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":2}' })
        expect(res.status).toBe(202)
        expect(logged).not.toHaveBeenCalled()
      } finally {
        logged.mockRestore()
        server.closeAllConnections()
        await new Promise((r) => server.close(r))
        await engine.close()
      }
    })
  })
})


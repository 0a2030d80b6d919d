import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createEngine, workflow, type Engine } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'
import { serve, signPayload, webhook, type Served } from './index'

const SECRET = 'whsec_test'

const order = workflow('order', {
  input: z.object({ orderId: z.string(), amount: z.number().positive() }),
  triggers: [webhook({ path: 'orders' }), webhook({ path: 'orders', method: 'PUT' })],
}).step('total', (ctx) => ctx.payload.amount * 2)

const signed = workflow('signed', { triggers: [webhook({ path: '/signed/', secret: SECRET, toleranceSec: 60 })] }).step('echo', (ctx) => ctx.payload)

const strict = workflow('strict', {
  triggers: [webhook({ path: 'strict', schema: z.object({ a: z.string(), b: z.number(), c: z.boolean() }) })],
}).step('echo', (ctx) => ctx.payload)

const echo = workflow('echo', { triggers: [webhook({ path: 'echo' })] }).step('echo', (ctx) => ctx.payload)

describe('webhooks (memory store)', () => {
  let engine: Engine
  let server: Served
  beforeEach(async () => {
    engine = createEngine()
    server = await serve({ engine, workflows: [order, signed, strict, echo], bodyLimit: '1kb' })
  })
  afterEach(async () => {
    await server.close()
    await engine.close()
  })

  const post = (path: string, body: string | null, headers: Record<string, string> = {}, method = 'POST'): Promise<Response> =>
    fetch(`${server.url}/webhooks/${path}`, { method, body, headers: { 'content-type': 'application/json', ...headers } })
  const runCount = async (): Promise<number> => (await engine.listRuns()).length

  it('starts a run and answers 202 { runId }; the run completes', async () => {
    const res = await post('orders', JSON.stringify({ orderId: 'o1', amount: 21 }))
    expect(res.status).toBe(202)
    const { runId } = (await res.json()) as { runId: string }
    expect(await engine.handle(runId).result()).toBe(42)
    expect((await post('orders', JSON.stringify({ orderId: 'o2', amount: 1 }), {}, 'PUT')).status).toBe(202)
  })

  it('answers 400 for malformed JSON and creates no run', async () => {
    const res = await post('orders', '{"orderId": ')
    expect(res.status).toBe(400)
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('INVALID_JSON')
    expect(await runCount()).toBe(0)
  })

  it("answers 422 with every issue of the workflow's input schema and creates no run", async () => {
    const res = await post('orders', JSON.stringify({ orderId: 7, amount: -1 }))
    expect(res.status).toBe(422)
    const body = (await res.json()) as { error: { code: string }; issues: { path: unknown[] }[] }
    expect(body.error.code).toBe('VALIDATION_FAILED')
    expect(body.issues.map((i) => i.path)).toEqual([['orderId'], ['amount']])
    expect(await runCount()).toBe(0)
  })

  it("answers 422 with every issue of the trigger's own schema", async () => {
    const res = await post('strict', JSON.stringify({ a: 1 }))
    expect(res.status).toBe(422)
    const body = (await res.json()) as { issues: { path: unknown[]; message: string }[] }
    expect(body.issues.map((i) => i.path)).toEqual([['a'], ['b'], ['c']])
    expect(await runCount()).toBe(0)
  })

  it('answers 404 for an unknown path and 405 with Allow for a wrong method', async () => {
    expect((await post('nope', '{}')).status).toBe(404)
    const res = await post('signed', '{}', {}, 'PATCH')
    expect(res.status).toBe(405)
    expect(res.headers.get('allow')).toBe('POST')
    expect((await post('orders', '{}', {}, 'PATCH')).headers.get('allow')).toBe('POST, PUT')
    expect(await runCount()).toBe(0)
  })

  it('percent-decodes escapes of unreserved characters in the path before matching; a malformed escape is a 400', async () => {
    // A client or proxy may encode unreserved characters (RFC 3986 §6.2.2.2: they mean the same).
    const tilde = workflow('tilde', { triggers: [webhook({ path: 'a~b/c.d' })] }).step('echo', (ctx) => ctx.payload)
    const own = await serve({ engine, workflows: [tilde] })
    const hit = (path: string): Promise<Response> => fetch(`${own.url}/webhooks/${path}`, { method: 'POST', body: '{}' })
    try {
      for (const path of ['a~b/c.d', 'a%7Eb/c.d', 'a%7eb/c%2Ed', '%61%7E%62/c.d']) expect((await hit(path)).status, path).toBe(202)
      // An escaped '/' is not a segment separator, and no webhook path has other characters.
      for (const path of ['a~b%2Fc.d', 'a~b/c.d%20']) expect((await hit(path)).status, path).toBe(404)
      for (const path of ['a%zzb/c.d', 'a~b/c.d%', 'a%7/c.d']) {
        const res = await hit(path)
        expect(res.status, path).toBe(400)
        expect(((await res.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST')
      }
      expect(await runCount()).toBe(4)
    } finally {
      await own.close()
    }
  })

  it('answers 413 for a declared Content-Length over the limit', async () => {
    const res = await post('echo', JSON.stringify({ big: 'x'.repeat(2000) }))
    expect(res.status).toBe(413)
    expect(await runCount()).toBe(0)
  })

  it('answers 413 for a declared Content-Length over the limit without reading the body, and closes the connection', async () => {
    const { port } = new URL(server.url)
    const socket = connect(Number(port), '127.0.0.1')
    socket.on('error', () => undefined)
    await once(socket, 'connect')
    let answer = ''
    socket.setEncoding('utf8').on('data', (d: string) => (answer += d))
    socket.write('POST /webhooks/echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 104857600\r\n\r\n')
    // Keep sending: a server that drains the announced 100 MB to keep the connection reads all of it.
    const drainedOrClosed = (): Promise<void> =>
      new Promise((resolve) => {
        const done = (): void => {
          clearTimeout(timer)
          socket.off('drain', done).off('close', done)
          resolve()
        }
        const timer = setTimeout(done, 50)
        socket.once('drain', done).once('close', done)
      })
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    let sent = 0
    let open = true
    socket.once('close', () => (open = false))
    while (open && sent < 16 * 1024 * 1024) {
      sent += chunk.length
      if (!socket.write(chunk)) await drainedOrClosed()
    }
    socket.destroy()
    expect(answer).toMatch(/^HTTP\/1\.1 413 /)
    expect(answer).toMatch(/\r\nconnection: close\r\n/i)
    expect(sent).toBeLessThan(16 * 1024 * 1024)
    expect(await runCount()).toBe(0)
  })

  it('does not report a client that goes away in the middle of its body as a server failure', async () => {
    const errors: unknown[] = []
    const own = await serve({ engine, workflows: [echo], onError: (e) => errors.push(e) })
    try {
      const socket = connect(Number(new URL(own.url).port), '127.0.0.1')
      await once(socket, 'connect')
      // Chunked, so the body streams into the handler; the client leaves before its last chunk.
      socket.write('POST /webhooks/echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n')
      await new Promise((r) => setTimeout(r, 50))
      socket.destroy()
      await new Promise((r) => setTimeout(r, 100))
      expect(errors).toEqual([])
      expect(await runCount()).toBe(0)
    } finally {
      await own.close()
    }
  })

  it('answers 413 for a streamed (chunked) body once it passes the limit, without reading it all', async () => {
    let sent = 0
    const body = new ReadableStream<Uint8Array>({
      async pull(c) {
        // An endless body: the server must stop reading and answer.
        await new Promise((r) => setTimeout(r, 1))
        sent += 256
        c.enqueue(new TextEncoder().encode('"' + 'x'.repeat(254) + '"'))
      },
    })
    const res = await fetch(`${server.url}/webhooks/echo`, { method: 'POST', body, duplex: 'half' } as RequestInit)
    expect(res.status).toBe(413)
    expect(sent).toBeLessThan(1024 * 64)
    expect(await runCount()).toBe(0)
  })

  it('accepts a correctly signed body', async () => {
    const body = JSON.stringify({ hello: 'world' })
    const res = await post('signed', body, { 'x-stepline-signature': signPayload(SECRET, body) })
    expect(res.status).toBe(202)
    const { runId } = (await res.json()) as { runId: string }
    expect(await engine.handle(runId).result()).toEqual({ hello: 'world' })
  })

  it('answers 401 for a missing, malformed, wrong, tampered or expired signature and creates no run', async () => {
    const body = JSON.stringify({ hello: 'world' })
    const now = Math.floor(Date.now() / 1000)
    const cases: Record<string, string>[] = [
      {},
      { 'x-stepline-signature': 'garbage' },
      { 'x-stepline-signature': signPayload('wrong-secret', body) },
      { 'x-stepline-signature': signPayload(SECRET, JSON.stringify({ hello: 'World' })) },
      // A captured request replayed after the tolerance window (60 s here), or one dated ahead.
      { 'x-stepline-signature': signPayload(SECRET, body, now - 120) },
      { 'x-stepline-signature': signPayload(SECRET, body, now + 120) },
    ]
    for (const headers of cases) {
      const res = await post('signed', body, headers)
      expect(res.status, JSON.stringify(headers)).toBe(401)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('SIGNATURE_INVALID')
    }
    expect(await runCount()).toBe(0)
  })

  it('accepts a signature inside the tolerance window', async () => {
    const body = JSON.stringify({ late: true })
    const res = await post('signed', body, { 'x-stepline-signature': signPayload(SECRET, body, Math.floor(Date.now() / 1000) - 30) })
    expect(res.status).toBe(202)
  })

  it('gives the same run for a retried request with the same Idempotency-Key', async () => {
    const body = JSON.stringify({ orderId: 'o9', amount: 3 })
    const first = await post('orders', body, { 'idempotency-key': 'k-1' })
    const second = await post('orders', body, { 'idempotency-key': 'k-1' })
    expect(first.status).toBe(202)
    expect(second.status).toBe(202)
    const a = (await first.json()) as { runId: string; duplicate?: boolean }
    const b = (await second.json()) as { runId: string; duplicate?: boolean }
    expect(b.runId).toBe(a.runId)
    expect(a.duplicate).toBeUndefined()
    expect(b.duplicate).toBe(true)
    expect(await runCount()).toBe(1)
    const other = (await (await post('orders', body, { 'idempotency-key': 'k-2' })).json()) as { runId: string }
    expect(other.runId).not.toBe(a.runId)
    expect(await runCount()).toBe(2)
  })

  it('keeps __proto__ and constructor keys as plain data: nothing is polluted and the payload arrives intact', async () => {
    const body = '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"safe":1}'
    const res = await post('echo', body)
    expect(res.status).toBe(202)
    const { runId } = (await res.json()) as { runId: string }
    const output = (await engine.handle(runId).result()) as Record<string, unknown>
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(Object.prototype.hasOwnProperty.call(output, '__proto__')).toBe(true)
    expect(Object.getPrototypeOf(output)).toBe(Object.prototype)
    expect(JSON.stringify(output)).toBe(body)
    // And the run API hands it back as it came.
    const got = await (await fetch(`${server.url}/runs/${runId}`)).text()
    expect(got).toContain('"payload":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"safe":1}')
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('answers /health without a token', async () => {
    const res = await fetch(`${server.url}/health`)
    expect(res.status).toBe(200)
    expect(await res.json()).toEqual({ ok: true, workflows: ['order', 'signed', 'strict', 'echo'] })
  })
})

describe('webhooks on the SQLite store', () => {
  let dir: string
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stepline-server-'))
  })
  afterEach(() => rmSync(dir, { recursive: true, force: true }))

  it('webhook → run → completed, journalled in the file; idempotent retry and rejections too', async () => {
    const store = sqliteStore({ path: join(dir, 'runs.db') })
    const engine = createEngine({ store })
    const server = await serve({ engine, workflows: [order, signed] })
    try {
      const body = JSON.stringify({ orderId: 'o1', amount: 5 })
      const res = await fetch(`${server.url}/webhooks/orders`, { method: 'POST', body, headers: { 'idempotency-key': 'same' } })
      expect(res.status).toBe(202)
      const { runId } = (await res.json()) as { runId: string }
      const again = (await (await fetch(`${server.url}/webhooks/orders`, { method: 'POST', body, headers: { 'idempotency-key': 'same' } })).json()) as { runId: string; duplicate: boolean }
      expect(again).toEqual({ runId, duplicate: true })
      expect(await engine.handle(runId).result()).toBe(10)
      expect((await fetch(`${server.url}/webhooks/orders`, { method: 'POST', body: '{"orderId":1}' })).status).toBe(422)
      expect((await fetch(`${server.url}/webhooks/signed`, { method: 'POST', body })).status).toBe(401)
      const runs = await engine.listRuns()
      expect(runs.map((r) => [r.id, r.status])).toEqual([[runId, 'completed']])
      const detail = (await (await fetch(`${server.url}/runs/${runId}`)).json()) as { run: { status: string }; steps: { name: string; status: string }[] }
      expect(detail.run.status).toBe('completed')
      expect(detail.steps.map((s) => [s.name, s.status])).toEqual([['total', 'completed']])
    } finally {
      await server.close()
      await engine.close()
      await store.close()
    }
  })
})

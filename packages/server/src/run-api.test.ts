import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createEngine, memoryStore, workflow, type Engine, type RunRecord } from '@stepline/core'
import { createHandler, serve, webhook, type Served } from './index'
import { readEvents, waitForStatus } from '../test/http-util'

const TOKEN = 'secret-token'

const add = workflow<{ n: number }>('add').step('one', (ctx) => ctx.payload.n + 1).step('two', (ctx) => ctx.last + 1)
const other = workflow('other').step('noop', () => 'ok')
const approve = workflow<{ orderId: string }>('approve', { triggers: [webhook({ path: 'approve' })] })
  .step('request', (ctx) => ctx.payload.orderId)
  .waitForEvent<'approval', { approved: boolean }>('approval')
  .step('decide', (ctx) => (ctx.last.approved ? 'approved' : 'declined'))
let release: () => void = () => {}
const slow = workflow('slow')
  .step('first', () => 1)
  .step('gate', () => new Promise<number>((r) => (release = () => r(2))))
  .step('last', (ctx) => ctx.last + 1)

describe('run API', () => {
  let engine: Engine
  let server: Served
  const auth = { authorization: `Bearer ${TOKEN}` }
  const get = (path: string, headers: Record<string, string> = auth): Promise<Response> => fetch(`${server.url}${path}`, { headers })
  const post = (path: string, body?: unknown, headers: Record<string, string> = auth): Promise<Response> =>
    fetch(`${server.url}${path}`, { method: 'POST', headers, body: body === undefined ? null : JSON.stringify(body) })

  beforeEach(async () => {
    engine = createEngine()
    server = await serve({ engine, workflows: [add, other, approve, slow], token: TOKEN, heartbeatMs: 50 })
  })
  afterEach(async () => {
    release()
    await server.close()
    await engine.close()
  })

  it('needs the bearer token: 401 with WWW-Authenticate when missing or wrong', async () => {
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Basic ${TOKEN}` }, { authorization: `Bearer ${TOKEN}x` }] as Record<string, string>[]) {
      const res = await get('/runs', headers)
      expect(res.status).toBe(401)
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer/)
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED')
    }
    expect((await post('/runs/x/cancel', undefined, {})).status).toBe(401)
    expect((await get('/runs')).status).toBe(200)
    expect((await get('/health', {})).status).toBe(200)
  })

  it('GET /runs lists newest first, filters by workflow and status, and pages with `next`', async () => {
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const h = await engine.start(add, { n: i })
      await h.result()
      ids.push(h.id)
    }
    await engine.run(other)
    const failing = await engine.start(approve, { orderId: 'x' })
    await waitForStatus(engine, failing.id, 'waiting')

    const all = (await (await get('/runs?workflow=add')).json()) as { runs: RunRecord[]; next: string | null }
    expect(all.runs.map((r) => r.id)).toEqual([...ids].reverse())
    expect(all.next).toBeNull()

    const seen: string[] = []
    let cursor: string | null = null
    let pages = 0
    do {
      const page = (await (await get(`/runs?workflow=add&limit=2${cursor ? `&before=${cursor}` : ''}`)).json()) as { runs: RunRecord[]; next: string | null }
      seen.push(...page.runs.map((r) => r.id))
      cursor = page.next
      pages++
    } while (cursor !== null)
    expect(seen).toEqual([...ids].reverse())
    expect(pages).toBe(3)

    const waiting = (await (await get('/runs?status=waiting')).json()) as { runs: RunRecord[] }
    expect(waiting.runs.map((r) => r.id)).toEqual([failing.id])
    const several = (await (await get('/runs?status=waiting,completed&workflow=other')).json()) as { runs: RunRecord[] }
    expect(several.runs.map((r) => r.workflowId)).toEqual(['other'])
    expect((await get('/runs?status=bogus')).status).toBe(400)
    expect((await get('/runs?limit=0')).status).toBe(400)
  })

  it('GET /runs: a repeated `status` lists every one; a repeated other parameter or a `limit` not in digits is a 400', async () => {
    const done = await engine.start(add, { n: 1 })
    await done.result()
    const parked = await engine.start(approve, { orderId: 'x' })
    await waitForStatus(engine, parked.id, 'waiting')
    const both = (await (await get('/runs?status=waiting&status=completed')).json()) as { runs: RunRecord[] }
    expect(both.runs.map((r) => r.id).sort()).toEqual([done.id, parked.id].sort())
    for (const query of ['workflow=add&workflow=other', 'limit=1&limit=5', 'limit=1e1', 'limit=0x10', 'limit=2.0', 'limit=']) {
      const res = await get(`/runs?${query}`)
      expect([query, res.status]).toEqual([query, 400])
      expect(await res.json()).toMatchObject({ error: { code: 'BAD_REQUEST' } })
    }
    expect((await get('/runs?limit=10')).status).toBe(200)
  })

  it('GET /runs: a `before` cursor that names no run (pruned since the last page) is a 400 saying to page from the newest', async () => {
    const res = await get('/runs?workflow=add&before=gone-run')
    expect(res.status).toBe(400)
    const { error } = (await res.json()) as { error: { code: string; message: string } }
    expect(error.code).toBe('BAD_REQUEST')
    expect(error.message).toContain('`before=gone-run` names no run')
    expect(error.message).toContain('without `before`')
  })

  it('GET /runs/:id gives the run and every step with status, attempts, timings and output; 404 unknown', async () => {
    const h = await engine.start(add, { n: 1 })
    await h.result()
    const res = await get(`/runs/${h.id}`)
    expect(res.status).toBe(200)
    const { run, steps } = (await res.json()) as { run: RunRecord; steps: Record<string, unknown>[] }
    expect(run).toMatchObject({ id: h.id, workflowId: 'add', status: 'completed', output: 3, payload: { n: 1 } })
    expect(steps.map((s) => [s.name, s.status, s.attempts, s.output])).toEqual([
      ['one', 'completed', 1, 2],
      ['two', 'completed', 1, 3],
    ])
    for (const s of steps) expect(s).toMatchObject({ startedAt: expect.any(Number), endedAt: expect.any(Number), durationMs: expect.any(Number) })
    const missing = await get('/runs/nope')
    expect(missing.status).toBe(404)
    expect(await missing.json()).toMatchObject({ error: { code: 'RUN_NOT_FOUND' } })
    expect((await post(`/runs/${h.id}`)).status).toBe(405)
  })

  it('POST /runs/:id/cancel: 202 for a live run, 409 once finished, 404 unknown', async () => {
    const h = await engine.start(slow)
    await new Promise((r) => setTimeout(r, 20))
    const res = await post(`/runs/${h.id}/cancel`, { reason: 'test' })
    expect(res.status).toBe(202)
    expect((await h.outcome()).status).toBe('cancelled')
    expect((await engine.getRun(h.id))?.status).toBe('cancelled')
    expect((await post(`/runs/${h.id}/cancel`)).status).toBe(409)
    expect((await post('/runs/nope/cancel')).status).toBe(404)
  })

  it('POST /runs/:id/cancel: of two cancels sent at once, one gets 202 and the other 409 (a live run and a parked one)', async () => {
    const live = await engine.start(slow)
    await new Promise((r) => setTimeout(r, 20))
    const parked = await engine.start(approve, { orderId: 'o-1' })
    await waitForStatus(engine, parked.id, 'waiting')
    for (const id of [live.id, parked.id]) {
      const answers = await Promise.all([post(`/runs/${id}/cancel`, { reason: 'first' }), post(`/runs/${id}/cancel`, { reason: 'second' })])
      expect(answers.map((r) => r.status).sort()).toEqual([202, 409])
      const conflict = answers.find((r) => r.status === 409)!
      expect(await conflict.json()).toMatchObject({ error: { code: 'RUN_FINISHED', message: `Run ${id} has already ended (cancelled); there is nothing to cancel.` } })
      expect((await engine.getRun(id))?.status).toBe('cancelled')
    }
  })

  it('POST /runs/:id/cancel: 409 RUN_FINISHED for a run that ended between the check and the cancel', async () => {
    const store = memoryStore()
    let endsMeanwhile = false
    // The handler's first read sees the run still running; it has ended by the time engine.cancel looks.
    const racing = new Proxy(store, {
      get(target, key) {
        if (key === 'getRun' && endsMeanwhile) {
          endsMeanwhile = false
          return async (id: string) => {
            const run = await target.getRun(id)
            return run && { ...run, status: 'running' }
          }
        }
        const value = Reflect.get(target, key, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
    })
    const own = createEngine({ store: racing })
    const ownServer = await serve({ engine: own, workflows: [add] })
    try {
      const h = await own.start(add, { n: 1 })
      await h.result()
      endsMeanwhile = true
      const res = await fetch(`${ownServer.url}/runs/${h.id}/cancel`, { method: 'POST' })
      expect(res.status).toBe(409)
      expect(await res.json()).toMatchObject({ error: { code: 'RUN_FINISHED', message: `Run ${h.id} has already ended (completed); there is nothing to cancel.` } })
      expect((await own.getRun(h.id))?.status).toBe('completed')
    } finally {
      await ownServer.close()
      await own.close()
    }
  })

  it('POST /runs/:id/events/:name resumes a waitForEvent; 409 when sent twice or not awaited, 404 unknown', async () => {
    const started = (await (await fetch(`${server.url}/webhooks/approve`, { method: 'POST', body: '{"orderId":"o1"}' })).json()) as { runId: string }
    await waitForStatus(engine, started.runId, 'waiting')
    const res = await post(`/runs/${started.runId}/events/approval`, { approved: true })
    expect(res.status).toBe(202)
    expect(await res.json()).toEqual({ runIds: [started.runId] })
    expect(await engine.handle(started.runId).result()).toBe('approved')
    const twice = await post(`/runs/${started.runId}/events/approval`, { approved: false })
    expect(twice.status).toBe(409)
    expect(((await twice.json()) as { error: { code: string } }).error.code).toMatch(/EVENT_(ALREADY_DELIVERED|NOT_AWAITED)/)

    const h2 = await engine.start(add, { n: 0 })
    await h2.result()
    const notAwaited = await post(`/runs/${h2.id}/events/approval`, { approved: true })
    expect(notAwaited.status).toBe(409)
    expect(((await notAwaited.json()) as { error: { code: string } }).error.code).toBe('EVENT_NOT_AWAITED')
    expect((await post('/runs/nope/events/approval', {})).status).toBe(404)
    expect((await post(`/runs/${h2.id}/events/approval`, undefined)).status).toBe(409)
  })

  it('409 EVENT_ALREADY_DELIVERED for an event sent twice before the run reached its wait', async () => {
    const h = await engine.start(slow)
    expect((await post(`/runs/${h.id}/events/early`, { x: 1 })).status).toBe(202)
    const again = await post(`/runs/${h.id}/events/early`, { x: 2 })
    expect(again.status).toBe(409)
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('EVENT_ALREADY_DELIVERED')
  })

  it('GET /runs/:id/stream: a snapshot, then the live events of that run only, ending with run:completed', async () => {
    const h = await engine.start(slow)
    await new Promise((r) => setTimeout(r, 20))
    const res = await get(`/runs/${h.id}/stream`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    const reading = readEvents(res)
    await new Promise((r) => setTimeout(r, 120)) // a heartbeat or two go by
    await engine.run(add, { n: 1 }) // another run's events must not show up
    release()
    const events = await reading
    const names = events.map((e) => e.name)
    expect(names).toEqual(['snapshot', 'step:completed', 'step:started', 'step:completed', 'run:completed'])
    const snap = events[0]!.data as { run: RunRecord; steps: { name: string }[] }
    expect(snap.run.id).toBe(h.id)
    expect(snap.steps.map((s) => s.name)).toEqual(['first'])
    expect(events.slice(1).every((e) => (e.data as { runId: string }).runId === h.id)).toBe(true)
    expect(events[4]!.data).toMatchObject({ output: 3 })
  })

  it('GET /runs/:id/stream of a finished run sends only the snapshot; 404 for an unknown run', async () => {
    const h = await engine.start(add, { n: 1 })
    await h.result()
    const events = await readEvents(await get(`/runs/${h.id}/stream`))
    expect(events.map((e) => e.name)).toEqual(['snapshot'])
    expect((events[0]!.data as { run: RunRecord }).run.status).toBe('completed')
    expect((await get('/runs/nope/stream')).status).toBe(404)
  })

  it('a stream of a parked run follows it through the event and ends; a cancelled parked run ends its stream too', async () => {
    const h = await engine.start(approve, { orderId: 'o2' })
    await waitForStatus(engine, h.id, 'waiting')
    const reading = readEvents(await get(`/runs/${h.id}/stream`))
    await new Promise((r) => setTimeout(r, 20))
    await post(`/runs/${h.id}/events/approval`, { approved: false })
    const names = (await reading).map((e) => e.name)
    expect(names[0]).toBe('snapshot')
    expect(names).toContain('run:resumed')
    expect(names.at(-1)).toBe('run:completed')

    const parked = await engine.start(approve, { orderId: 'o3' })
    await waitForStatus(engine, parked.id, 'waiting')
    const stream = readEvents(await get(`/runs/${parked.id}/stream`))
    await new Promise((r) => setTimeout(r, 20))
    expect((await post(`/runs/${parked.id}/cancel`)).status).toBe(202)
    expect((await stream).map((e) => e.name)).toEqual(['snapshot', 'run:cancelled'])
  })

  it('a stream of a run that is pruned from the store ends with an error event RUN_NOT_FOUND instead of heartbeats forever', async () => {
    const store = memoryStore()
    const own = createEngine({ store })
    const ownServer = await serve({ engine: own, workflows: [approve], token: TOKEN, heartbeatMs: 20 })
    try {
      const h = await own.start(approve, { orderId: 'gone' })
      await waitForStatus(own, h.id, 'waiting')
      const reading = readEvents(await fetch(`${ownServer.url}/runs/${h.id}/stream`, { headers: auth }))
      await new Promise((r) => setTimeout(r, 30))
      // Another process ends the run and prunes it, in one turn: no heartbeat sees it finished.
      expect(await store.transitionRun(h.id, ['waiting'], 'cancelled', { endedAt: Date.now() - 1000 })).toBe(true)
      expect(await store.pruneRuns(Date.now())).toBe(1)
      const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the stream did not end')), 1000))
      const events = await Promise.race([reading, timeout])
      expect(events.map((e) => e.name)).toEqual(['snapshot', 'error'])
      expect(events[1]!.data).toMatchObject({ error: { code: 'RUN_NOT_FOUND' } })
    } finally {
      await ownServer.close()
      await own.close()
    }
  })

  it('stops listening on the engine when the client disconnects', async () => {
    // Count listeners through the public on/off (the hub attaches lazily, so patching now is in time).
    let listening = 0
    const on = engine.on.bind(engine)
    const off = engine.off.bind(engine)
    Object.assign(engine, {
      on: (e: never, l: never) => (listening++, on(e, l)),
      off: (e: never, l: never) => (listening--, off(e, l)),
    })
    const h = await engine.start(slow)
    const ac = new AbortController()
    const res = await fetch(`${server.url}/runs/${h.id}/stream`, { headers: auth, signal: ac.signal })
    const reader = res.body!.getReader()
    await reader.read() // the snapshot
    expect(listening).toBeGreaterThan(0)
    ac.abort()
    await new Promise((r) => setTimeout(r, 100))
    expect(listening).toBe(0)
  })
  it('HEAD /runs/:id/stream answers the headers of the stream without opening it', async () => {
    let listening = 0
    const on = engine.on.bind(engine)
    const off = engine.off.bind(engine)
    Object.assign(engine, {
      on: (e: never, l: never) => (listening++, on(e, l)),
      off: (e: never, l: never) => (listening--, off(e, l)),
    })
    const h = await engine.start(approve, { orderId: 'head' })
    await waitForStatus(engine, h.id, 'waiting')
    // As a plain fetch handler (Bun, Deno, Hono): nothing reads, nor cancels, the body of a HEAD answer.
    const handler = createHandler({ engine, token: TOKEN, heartbeatMs: 10 })
    const res = await handler(new Request(`http://x/runs/${h.id}/stream`, { method: 'HEAD', headers: auth }))
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/)
    expect(res.body).toBeNull()
    await new Promise((r) => setTimeout(r, 30))
    expect(listening).toBe(0)
    expect((await handler(new Request('http://x/runs/nope/stream', { method: 'HEAD', headers: auth }))).status).toBe(404)
  })
})

describe('createHandler as a plain fetch handler', () => {
  it('serves under basePath and 404s outside it, with no token configured', async () => {
    const engine = createEngine()
    const handler = createHandler({ engine, workflows: [add], basePath: '/stepline/' })
    const health = await handler(new Request('http://x/stepline/health'))
    expect(health.status).toBe(200)
    expect((await handler(new Request('http://x/health'))).status).toBe(404)
    expect((await handler(new Request('http://x/stepline/runs'))).status).toBe(200)
    expect((await handler(new Request('http://x/stepline/nothing'))).status).toBe(404)
    await engine.close()
  })

  it('checks its options when built', () => {
    const engine = createEngine()
    expect(() => createHandler({ engine, bodyLimit: 'lots' })).toThrow(/bodyLimit/)
    expect(() => createHandler({ engine, token: '' })).toThrow(/token/)
    const a = workflow('a', { triggers: [webhook({ path: 'same' })] }).step('x', () => 1)
    const b = workflow('b', { triggers: [webhook({ path: '/same' })] }).step('x', () => 1)
    expect(() => createHandler({ engine, workflows: [a, b] })).toThrow(/"a" and "b" both have a webhook at POST \/webhooks\/same/)
  })
})

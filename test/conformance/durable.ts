import { describe, expect, it, vi } from 'vitest'
import { CancelledError, workflow, type AnyWorkflow, type Engine, type RunHandle, type RunOutcome, type RunRecord, type Store } from '@stepline/core'
import { rejectionOf, uid, type SuiteContext } from './helpers'

const HOUR = 3_600_000

/** Lets the engine's store work and timers settle (fake timers: advance nothing). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await vi.advanceTimersByTimeAsync(0)
}

/** Starts `wf`, checks it parked sleeping, lets its 2 h nap pass (fake timers) and returns its outcome. */
async function outcomeAfterNap(engine: Engine, wf: AnyWorkflow): Promise<{ o: RunOutcome<unknown>; handle: RunHandle<unknown> }> {
  const handle = await engine.start(wf)
  const outcome = handle.outcome()
  await settle()
  expect((await engine.getRun(handle.id))?.status).toBe('sleeping')
  await vi.advanceTimersByTimeAsync(2 * HOUR)
  await settle()
  return { o: await outcome, handle }
}

export function durableTests(s: SuiteContext): void {
  describe('parked runs: sleep', () => {
    it('a long sleep parks the run in the store (no run in memory) and resumes it at its wake time', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const parked: string[] = []
      engine.on('run:parked', (e) => parked.push(`${e.status}@${e.wakeAt}`))
      let after = 0
      const wf = workflow(uid()).step('before', () => 'v').sleep('nap', '2h').step('after', (ctx) => (after++, ctx.last))
      const handle = await engine.start(wf)
      const result = handle.result()
      await settle()
      const row = await engine.getRun(handle.id)
      expect(row).toMatchObject({ status: 'sleeping' })
      expect(row?.wakeAt).toBeGreaterThan(Date.now())
      expect(parked).toHaveLength(1)
      expect(engine.activeRuns).toBe(0)
      expect(handle.status).toBe('sleeping')
      await vi.advanceTimersByTimeAsync(2 * HOUR - 10)
      expect(after).toBe(0)
      await vi.advanceTimersByTimeAsync(10)
      await settle()
      expect(await result).toBe('v')
      expect(after).toBe(1)
      expect(handle.status).toBe('completed')
      const steps = await engine.getSteps(handle.id)
      expect(steps.find((r) => r.name === 'nap')).toMatchObject({ kind: 'sleep', status: 'completed' })
      expect(steps.filter((r) => r.name === 'before')).toHaveLength(1)
    })

    it('a sleeping run resumes after a restart: a new engine over the same store wakes it', async () => {
      vi.useFakeTimers()
      const store = await s.store()
      let before = 0
      let after = 0
      const id = uid()
      const define = () => workflow(id).step('before', () => ++before).sleep('nap', '1h').step('after', () => ++after)
      const first = await s.engine({ store })
      const handle = await first.start(define())
      await settle()
      expect((await first.getRun(handle.id))?.status).toBe('sleeping')
      await first.close()
      const second = await s.engine({ store, workflows: [define()] })
      await settle()
      await vi.advanceTimersByTimeAsync(HOUR)
      await settle()
      expect(await second.handle(handle.id).result()).toBe(1)
      expect({ before, after }).toEqual({ before: 1, after: 1 })
      await second.close()
    })

    it('a run parked under one plan does not wake under a changed plan: it fails with PLAN_CHANGED', async () => {
      vi.useFakeTimers()
      const store = await s.store()
      const id = uid()
      const first = await s.engine({ store })
      const handle = await first.start(workflow(id).sleep('nap', '1h').step('after', () => 'v1'))
      await settle()
      await first.close()
      const changed = workflow(id).sleep('nap', '1h').step('after', () => 'v2').step('extra', () => 'new')
      const second = await s.engine({ store, workflows: [changed] })
      await settle()
      await vi.advanceTimersByTimeAsync(HOUR)
      await settle()
      const err = await rejectionOf(second.handle(handle.id).result())
      expect(err).toMatchObject({ code: 'PLAN_CHANGED' })
      await second.close()
    })

    it("the workflow's timeout counts parked time: a run sleeping past its deadline fails with RUN_TIMEOUT", async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      let after = 0
      const wf = workflow(uid(), { timeout: '30m' }).sleep('nap', '2h').step('after', () => ++after)
      const handle = await engine.start(wf)
      const failed = rejectionOf(handle.result())
      await settle()
      expect((await engine.getRun(handle.id))?.wakeAt).toBe((await engine.getRun(handle.id))!.startedAt! + 30 * 60_000)
      await vi.advanceTimersByTimeAsync(30 * 60_000)
      await settle()
      expect(await failed).toMatchObject({ code: 'RUN_TIMEOUT' })
      expect(after).toBe(0)
      const waiting = workflow(uid(), { timeout: '1h' }).waitForEvent('approval').step('done', () => 1)
      const w = await engine.start(waiting)
      const wFailed = rejectionOf(w.result())
      await settle()
      await vi.advanceTimersByTimeAsync(HOUR)
      await settle()
      expect(await wFailed).toMatchObject({ code: 'RUN_TIMEOUT' })
    })

    it('a run woken inside an .if() branch keeps that branch’s steps in its summary’s critical path', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const wf = workflow(uid())
        .step('first', () => 'v')
        .if('big', () => true)
        .step('review', () => 'ok')
        .sleep('nap', '2h')
        .step('ship', (ctx) => `${ctx.last} ${ctx.steps.review.output}`)
        .else()
        .step('skip', () => 'no')
        .endIf()
      const { o } = await outcomeAfterNap(engine, wf)
      expect(o.output).toBe('ok ok')
      expect(o.summary.criticalPath).toEqual(['first', 'review', 'nap', 'ship'])
      expect(o.summary.steps).toBe(3)
    })

    it('the summary of a resumed run spans the whole run: wallMs counts the time it was parked', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const wf = workflow(uid()).step('before', () => 'v').sleep('nap', '2h').step('after', (ctx) => ctx.last)
      const { o, handle } = await outcomeAfterNap(engine, wf)
      const row = (await engine.getRun(handle.id))!
      expect(o.summary.wallMs).toBeGreaterThanOrEqual(2 * HOUR)
      expect(o.summary.wallMs).toBe(row.endedAt! - row.startedAt!)
      expect(o.summary.criticalPath).toEqual(['before', 'nap', 'after'])
    })

    it('sleepUntil waits until the time a function of ctx gives', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const wf = workflow<{ at: number }>(uid()).sleepUntil('until', (ctx) => new Date(ctx.payload.at)).step('done', () => Date.now())
      const at = Date.now() + 5 * HOUR
      const handle = await engine.start(wf, { at })
      const result = handle.result()
      await settle()
      expect((await engine.getRun(handle.id))?.wakeAt).toBe(at)
      await vi.advanceTimersByTimeAsync(5 * HOUR)
      await settle()
      expect(await result).toBeGreaterThanOrEqual(at)
    })

    it('sleepUntil whose function returns no time fails the node with a PlanError: journaled failed, step:failed reported', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:started', (e) => events.push(`started ${e.step}`))
      engine.on('step:failed', (e) => events.push(`failed ${e.step}`))
      const wf = workflow(uid()).sleepUntil('until', () => 'not a date')
      const handle = await engine.start(wf)
      expect(await rejectionOf(handle.result())).toMatchObject({ name: 'PlanError' })
      expect(events).toEqual(['started until', 'failed until'])
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([['until', 'failed']])
    })

    it('a short sleep inside a forEach body waits in memory without parking', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const wf = workflow(uid()).forEach('each', () => [1, 2], (_i, flow) => flow.sleep('nap', '5s').step('x', (ctx) => ctx.item), { concurrency: 2 })
      const handle = await engine.start(wf)
      const result = handle.result()
      await settle()
      expect((await engine.getRun(handle.id))?.status).toBe('running')
      await vi.advanceTimersByTimeAsync(5000)
      expect(await result).toEqual([1, 2])
    })

    it('cancelling a parked run persists: it never wakes, and its handle rejects with CancelledError', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      let after = 0
      const wf = workflow(uid()).sleep('nap', '1h').step('after', () => ++after)
      const handle = await engine.start(wf)
      const settled = rejectionOf(handle.result())
      await settle()
      expect(await Promise.all([handle.cancel('no longer needed'), engine.cancel(handle.id, 'twice')])).toEqual([true, false])
      expect(await engine.cancel(handle.id)).toBe(false)
      expect(await settled).toBeInstanceOf(CancelledError)
      expect((await engine.getRun(handle.id))?.status).toBe('cancelled')
      await vi.advanceTimersByTimeAsync(2 * HOUR)
      await settle()
      expect(after).toBe(0)
    })
  })

  describe('parked runs: a store that fails around parking', () => {
    /** The store, with `fail(method)` making that method throw `down` until `heal()`. */
    function flaky(store: Store) {
      const down = new Error('disk full')
      const failing = new Set<string>()
      const proxy = new Proxy(store, {
        get: (target, key) => {
          const value = Reflect.get(target, key) as unknown
          if (typeof value !== 'function') return value
          return (...args: unknown[]) => {
            if (failing.has(String(key))) throw down
            return (value as (...a: unknown[]) => unknown).apply(target, args)
          }
        },
      })
      return { store: proxy, down, fail: (method: keyof Store) => failing.add(method), heal: () => failing.clear() }
    }

    it('a park the store cannot record fails the run with the store’s error; nothing is left unhandled', async () => {
      const base = await s.store()
      const { store, down, fail } = flaky(base)
      const engine = await s.engine({ store })
      const wf = workflow(uid(), { concurrency: 1 }).waitForEvent('approval').step('ship', () => 'shipped')
      fail('transitionRun')
      const handle = await engine.start(wf)
      expect(await rejectionOf(handle.result())).toBe(down)
      expect(handle.status).toBe('failed')
      expect(engine.activeRuns).toBe(0)
      // Unrecorded: the row still says running, so recovery resumes the run later.
      expect((await base.getRun(handle.id))?.status).toBe('running')
    })

    it('a wake-up that finds the store down is retried a second later', async () => {
      vi.useFakeTimers()
      const base = await s.store()
      const { store, fail, heal } = flaky(base)
      const engine = await s.engine({ store })
      const wf = workflow(uid()).sleep('nap', '1h').step('after', () => 'awake')
      const handle = await engine.start(wf)
      const result = handle.result()
      await settle()
      expect((await base.getRun(handle.id))?.status).toBe('sleeping')
      fail('dueRuns')
      await vi.advanceTimersByTimeAsync(HOUR)
      await settle()
      expect((await base.getRun(handle.id))?.status).toBe('sleeping')
      heal()
      await vi.advanceTimersByTimeAsync(1000)
      await settle()
      expect(await result).toBe('awake')
    })
  })

  describe('parked runs: waitForEvent', () => {
    it('a match function that throws fails the wait: journaled failed, step:failed reported, nothing parked', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:started', (e) => events.push(`started ${e.step}`))
      engine.on('step:failed', (e) => events.push(`failed ${e.step}`))
      const bad = new Error('no order id')
      const wf = workflow(uid()).waitForEvent('approval', {
        match: (): string => {
          throw bad
        },
      })
      const handle = await engine.start(wf)
      expect(await rejectionOf(handle.result())).toBe(bad)
      expect(events).toEqual(['started approval', 'failed approval'])
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([['approval', 'failed']])
    })

    const approval = () =>
      workflow<{ orderId: string }>(uid())
        .step('submit', (ctx) => ctx.payload.orderId)
        .waitForEvent<'approval', { ok: boolean }>('approval', { timeout: '1d', match: (ctx) => ctx.payload.orderId })
        .step('ship', (ctx) => (ctx.last.ok ? 'shipped' : 'held'))

    it('parks the run as waiting; engine.send by run id resumes it with the event data as output', async () => {
      const engine = await s.engine()
      const handle = await engine.start(approval(), { orderId: 'o-1' })
      await vi.waitFor(async () => expect((await engine.getRun(handle.id))?.status).toBe('waiting'))
      expect((await engine.getRun(handle.id))?.waitFor).toEqual({ event: 'approval', match: 'o-1' })
      expect(await engine.send(handle.id, 'approval', { ok: true })).toEqual({ runIds: [handle.id] })
      expect(await handle.result()).toBe('shipped')
      expect((await engine.getSteps(handle.id)).find((r) => r.name === 'approval')).toMatchObject({ status: 'completed', output: { ok: true } })
    })

    it('delivers exactly once: a second send of the same event throws EVENT_ALREADY_DELIVERED and changes nothing', async () => {
      const engine = await s.engine()
      let shipped = 0
      const wf = workflow(uid()).waitForEvent('approval').step('ship', () => ++shipped)
      const handle = await engine.start(wf)
      await vi.waitFor(async () => expect((await engine.getRun(handle.id))?.status).toBe('waiting'))
      await engine.send(handle.id, 'approval', 1)
      await expect(engine.send(handle.id, 'approval', 2)).rejects.toMatchObject({
        code: 'EVENT_ALREADY_DELIVERED',
        message: expect.stringContaining(`run ${handle.id} already received "approval"`),
      })
      expect(await handle.result()).toBe(1)
      expect(shipped).toBe(1)
    })

    it('delivers exactly once an event without data too: a second send throws EVENT_ALREADY_DELIVERED', async () => {
      const engine = await s.engine()
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      const wf = workflow(uid()).waitForEvent('approval').step('ship', () => gate.then(() => 'shipped'))
      const handle = await engine.start(wf)
      await vi.waitFor(async () => expect((await engine.getRun(handle.id))?.status).toBe('waiting'))
      await engine.send(handle.id, 'approval')
      // The wait is journaled as completed with no output while the run goes on.
      await vi.waitFor(async () => expect((await engine.getSteps(handle.id)).find((r) => r.name === 'approval')).toMatchObject({ status: 'completed', output: undefined }))
      await expect(engine.send(handle.id, 'approval')).rejects.toMatchObject({
        code: 'EVENT_ALREADY_DELIVERED',
        message: expect.stringContaining(`run ${handle.id} already received "approval"`),
      })
      release()
      expect(await handle.result()).toBe('shipped')
    })

    it('engine.send({ match }) finds the waiting run by its match key; no match is a clear error', async () => {
      const engine = await s.engine()
      const wf = approval()
      const a = await engine.start(wf, { orderId: 'o-a' })
      const b = await engine.start(wf, { orderId: 'o-b' })
      await vi.waitFor(async () => expect((await engine.getRun(b.id))?.status).toBe('waiting'))
      await vi.waitFor(async () => expect((await engine.getRun(a.id))?.status).toBe('waiting'))
      expect(await engine.send({ match: 'o-b' }, 'approval', { ok: false })).toEqual({ runIds: [b.id] })
      expect(await b.result()).toBe('held')
      expect((await engine.getRun(a.id))?.status).toBe('waiting')
      await expect(engine.send({ match: 'o-zzz' }, 'approval', {})).rejects.toMatchObject({
        code: 'EVENT_NOT_AWAITED',
        message: expect.stringContaining('no run is waiting for "approval" with match key "o-zzz"'),
      })
    })

    it('an event sent before the run reaches its wait is kept and consumed there', async () => {
      const engine = await s.engine()
      let release!: () => void
      const gate = new Promise<void>((r) => (release = r))
      const wf = workflow(uid()).step('slow', () => gate).waitForEvent('approval').step('done', (ctx) => ctx.last)
      const handle = await engine.start(wf)
      await engine.send(handle.id, 'approval', 'early')
      release()
      expect(await handle.result()).toBe('early')
    })

    it('a wait times out with WAIT_TIMEOUT; a later send throws EVENT_NOT_AWAITED', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const wf = workflow(uid()).waitForEvent('approval', { timeout: '1h' }).step('ship', () => 'shipped')
      const handle = await engine.start(wf)
      const failed = rejectionOf(handle.result())
      await settle()
      await vi.advanceTimersByTimeAsync(HOUR)
      await settle()
      const err = await failed
      expect(err).toMatchObject({ code: 'WAIT_TIMEOUT' })
      expect(err.message).toContain('no "approval" event arrived within 3600000 ms')
      await expect(engine.send(handle.id, 'approval', {})).rejects.toMatchObject({ code: 'EVENT_NOT_AWAITED' })
    })

    it('a timed-out wait can be recovered with .onError(); the event then is no longer awaited', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const wf = workflow(uid())
        .waitForEvent<'approval', { ok: boolean }>('approval', { timeout: '30m' })
        .onError(() => ({ ok: false }))
        .step('decide', (ctx) => (ctx.last.ok ? 'go' : 'auto-declined'))
      const handle = await engine.start(wf)
      const result = handle.result()
      await settle()
      await vi.advanceTimersByTimeAsync(30 * 60_000)
      await settle()
      expect(await result).toBe('auto-declined')
    })

    it('an event sent while no engine runs wakes the waiting run on the next start', async () => {
      const store = await s.store()
      const id = uid()
      const define = () => workflow(id).waitForEvent('approval').step('done', (ctx) => ctx.last)
      const first = await s.engine({ store })
      const handle = await first.start(define())
      await vi.waitFor(async () => expect((await first.getRun(handle.id))?.status).toBe('waiting'))
      await first.close()
      // Another process (no workflow registered) sends the event meanwhile.
      const sender = await s.engine({ store, recover: false })
      await sender.send(handle.id, 'approval', 'sent while down')
      expect((await sender.getRun(handle.id))?.status).toBe('waiting')
      const second = await s.engine({ store, workflows: [define()] })
      await vi.waitFor(async () => expect((await second.getRun(handle.id))?.status).toBe('completed'))
      expect(await second.handle(handle.id).result()).toBe('sent while down')
      await second.close()
    })

    it('a send to a finished or unknown run is a clear error', async () => {
      const engine = await s.engine()
      const done = await engine.start(workflow(uid()).step('a', () => 1))
      await done.result()
      await expect(engine.send(done.id, 'approval', {})).rejects.toMatchObject({ code: 'EVENT_NOT_AWAITED', message: expect.stringContaining('is completed') })
      await expect(engine.send('nope', 'approval', {})).rejects.toMatchObject({ code: 'RUN_NOT_FOUND' })
    })
  })

  describe('retention', () => {
    it('prune deletes finished runs older than the cutoff, with their journal; unfinished runs stay', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const quick = workflow(uid()).step('a', () => 1)
      const old = await engine.start(quick)
      await old.result()
      const waiting = await engine.start(workflow(uid()).waitForEvent('never'))
      await settle()
      await vi.advanceTimersByTimeAsync(10 * 86_400_000)
      const recent = await engine.start(quick)
      await recent.result()
      expect(await engine.prune({ olderThan: '7d' })).toBe(1)
      expect(await engine.getRun(old.id)).toBeUndefined()
      expect(await engine.getSteps(old.id)).toEqual([])
      expect((await engine.getRun(recent.id))?.status).toBe('completed')
      expect((await engine.getRun(waiting.id))?.status).toBe('waiting')
      await expect(engine.prune({ olderThan: 'soon' as never })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' })
    })
  })

  describe('the store contract', () => {
    const record = (id: string, over: Partial<RunRecord> = {}): RunRecord => ({ id, workflowId: 'wf', planHash: 'h', status: 'running', payload: null, attempt: 1, createdAt: 1, ...over })

    it('events are kept once per (run, name) whatever characters ids and names hold; pruning a run deletes only its own events', async () => {
      const store = await s.store()
      const a = uid('run'), ab = `${a}\u0000b`
      await store.createRun(record(a))
      await store.createRun(record(ab))
      expect(await store.putEvent({ runId: a, name: 'b\u0000c', data: 1, sentAt: 1 })).toBe(true)
      expect(await store.putEvent({ runId: ab, name: 'c', data: 2, sentAt: 1 })).toBe(true)
      expect((await store.getEvent(ab, 'c'))?.data).toBe(2)
      await store.updateRun(a, { status: 'completed', endedAt: 5 })
      expect(await store.pruneRuns(10)).toBe(1)
      expect(await store.getEvent(a, 'b\u0000c')).toBeUndefined()
      expect((await store.getEvent(ab, 'c'))?.data).toBe(2)
    })

    it('listRuns and dueRuns take any limit alike: 0 or less gives none, Infinity all, a fraction its whole part', async () => {
      const store = await s.store()
      const workflowId = uid()
      for (const id of ['r1', 'r2', 'r3']) {
        await store.createRun(record(`${workflowId}-${id}`, { workflowId }))
        expect(await store.transitionRun(`${workflowId}-${id}`, ['running'], 'sleeping', { wakeAt: 1 })).toBe(true)
      }
      const count = async (limit: number): Promise<[number, number]> => [
        (await store.listRuns({ workflowId, limit })).length,
        (await store.dueRuns(1, limit)).filter((r) => r.workflowId === workflowId).length,
      ]
      expect(await count(0)).toEqual([0, 0])
      expect(await count(-1)).toEqual([0, 0])
      expect(await count(2.5)).toEqual([2, 2])
      expect(await count(Infinity)).toEqual([3, 3])
    })

    it('dueRuns and waitingFor give runs due at one time, or waiting for one event, oldest run first, whatever order they parked in', async () => {
      const store = await s.store()
      const workflowId = uid()
      const ids = ['r1', 'r2', 'r3'].map((r) => `${workflowId}-${r}`)
      for (const id of ids) await store.createRun(record(id, { workflowId }))
      // Parked newest first; r2 parks, wakes and parks again.
      const event = uid('event')
      for (const id of [ids[2]!, ids[1]!, ids[0]!]) expect(await store.transitionRun(id, ['running'], 'waiting', { wakeAt: 7, waitFor: { event, match: 'm' } })).toBe(true)
      expect(await store.transitionRun(ids[1]!, ['waiting'], 'running', { wakeAt: undefined, waitFor: undefined })).toBe(true)
      expect(await store.transitionRun(ids[1]!, ['running'], 'waiting', { wakeAt: 7, waitFor: { event, match: 'm' } })).toBe(true)
      expect((await store.dueRuns(7, Infinity)).filter((r) => r.workflowId === workflowId).map((r) => r.id)).toEqual(ids)
      expect((await store.waitingFor(event, 'm')).map((r) => r.id)).toEqual(ids)
    })

    it('listRuns pages newest first with `before`; a cursor that names no run, or a run pruned since, is RUN_NOT_FOUND (not the first page again)', async () => {
      const store = await s.store()
      const workflowId = uid()
      const ids = ['r1', 'r2', 'r3', 'r4', 'r5'].map((r) => `${workflowId}-${r}`)
      for (const id of ids) await store.createRun(record(id, { workflowId }))
      const page = async (before?: string): Promise<string[]> => (await store.listRuns({ workflowId, limit: 2, before })).map((r) => r.id)
      expect(await page()).toEqual([ids[4], ids[3]])
      expect(await page(ids[3])).toEqual([ids[2], ids[1]])
      expect(await page(ids[1])).toEqual([ids[0]])
      expect(await page(ids[0])).toEqual([])
      const unknown = await rejectionOf(page(`${workflowId}-never`))
      expect(unknown).toMatchObject({ code: 'RUN_NOT_FOUND' })
      expect((unknown as Error).message).toContain(`"${workflowId}-never"`)
      await store.updateRun(ids[3]!, { status: 'completed', endedAt: 5 })
      expect(await store.pruneRuns(10)).toBeGreaterThanOrEqual(1)
      expect(await rejectionOf(page(ids[3]))).toMatchObject({ code: 'RUN_NOT_FOUND' })
    })
  })
}

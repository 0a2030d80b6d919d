import { describe, expect, it, vi } from 'vitest'
import { CancelledError, workflow, type EngineEventName, type RunHandle } from '@stepline/core'
import { deferred, forever, inFlight, rejectionOf, sleep, storeWith, tick, uid, type SuiteContext } from './helpers'

export function engineTests(s: SuiteContext): void {
  describe('cancel', () => {
    it('cancels mid-run: status cancelled, result() rejects with CancelledError, the step’s signal aborts, no further step starts', async () => {
      const engine = await s.engine()
      const entered = deferred()
      let signalAborted = false
      let laterSteps = 0
      const cancelled: string[] = []
      engine.on('run:cancelled', (e) => cancelled.push(e.runId))
      const wf = workflow(uid())
        .step('first', () => 1)
        .step('waits', async (ctx) => {
          ctx.signal.addEventListener('abort', () => (signalAborted = true))
          entered.resolve()
          await forever(ctx.signal)
        })
        .step('later', () => laterSteps++)
        .step('latest', () => laterSteps++)
      const handle = await engine.start(wf)
      await entered.promise
      await handle.cancel('customer withdrew')
      const err = await rejectionOf(handle.result())
      expect(err).toBeInstanceOf(CancelledError)
      expect(err.code).toBe('RUN_CANCELLED')
      expect(signalAborted).toBe(true)
      expect(handle.status).toBe('cancelled')
      expect((await engine.getRun(handle.id))?.status).toBe('cancelled')
      expect(cancelled).toEqual([handle.id])
      await tick(10)
      expect(laterSteps).toBe(0)
    })

    it('cancel answers whether this call ended the run: true once, false for a second cancel (even one made at once) and for a finished run', async () => {
      const engine = await s.engine()
      const entered = deferred()
      const wf = workflow(uid()).step('waits', async (ctx) => {
        entered.resolve()
        await forever(ctx.signal)
      })
      const handle = await engine.start(wf)
      await entered.promise
      expect(await Promise.all([handle.cancel('first'), engine.cancel(handle.id, 'second')])).toEqual([true, false])
      expect(await handle.cancel()).toBe(false)
      expect(await engine.cancel(handle.id)).toBe(false)
      expect(await rejectionOf(handle.result())).toMatchObject({ code: 'RUN_CANCELLED', message: expect.stringContaining('first') })
      const done = await engine.start(workflow(uid()).step('quick', () => 1))
      await done.result()
      expect(await engine.cancel(done.id)).toBe(false)
      expect((await engine.getRun(done.id))?.status).toBe('completed')
    })

    it('no further step starts even when the in-flight step ignores its signal and finishes later', async () => {
      const engine = await s.engine()
      const entered = deferred()
      let finishedLate = false
      let laterSteps = 0
      const wf = workflow(uid())
        .step('stubborn', async () => {
          entered.resolve()
          await sleep(5)
          finishedLate = true
          return 'done anyway'
        })
        .step('later', () => laterSteps++)
      const handle = await engine.start(wf)
      await entered.promise
      await handle.cancel()
      expect(await rejectionOf(handle.result())).toMatchObject({ code: 'RUN_CANCELLED' })
      await tick(20)
      expect(finishedLate).toBe(true)
      expect(laterSteps).toBe(0)
      expect((await engine.getRun(handle.id))?.status).toBe('cancelled')
    })
    it('cancelling during a retry backoff starts no further attempt', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      let calls = 0
      const wf = workflow(uid()).step('flaky', () => {
        calls++
        throw new Error('no')
      }, { retry: { attempts: 5, backoff: 'fixed', delay: '1s' } })
      const handle = await engine.start(wf)
      const settle = rejectionOf(handle.result())
      await vi.advanceTimersByTimeAsync(500)
      expect(calls).toBe(1)
      await handle.cancel()
      expect(await settle).toMatchObject({ code: 'RUN_CANCELLED' })
      await vi.advanceTimersByTimeAsync(10_000)
      expect(calls).toBe(1)
    })

    it('cancelling during a sleep starts no further step', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      let afterRan = false
      const wf = workflow(uid())
        .sleep('nap', '1h')
        .step('after', () => (afterRan = true))
      const handle = await engine.start(wf)
      const settle = rejectionOf(handle.result())
      await vi.advanceTimersByTimeAsync(1000)
      await handle.cancel()
      expect(await settle).toMatchObject({ code: 'RUN_CANCELLED' })
      await vi.advanceTimersByTimeAsync(2 * 3_600_000)
      expect(afterRan).toBe(false)
    })

    it('a queued run can be cancelled; it never runs and the workflow concurrency still holds', async () => {
      const engine = await s.engine()
      const ran: number[] = []
      const gauge = inFlight()
      const wf = workflow<number>(uid(), { concurrency: 1 }).step('work', (ctx) =>
        gauge.run(async () => {
          ran.push(ctx.payload)
          await sleep(3)
          return ctx.payload
        }),
      )
      const first = await engine.start(wf, 1)
      const second = await engine.start(wf, 2)
      const third = await engine.start(wf, 3)
      await second.cancel()
      expect(await rejectionOf(second.result())).toMatchObject({ code: 'RUN_CANCELLED' })
      expect(await first.result()).toBe(1)
      expect(await third.result()).toBe(3)
      expect(gauge.max).toBe(1)
      expect(ran).toEqual([1, 3])
      expect((await engine.getRun(second.id))?.status).toBe('cancelled')
    })

    it('a step waiting for a slot of the engine’s `concurrency` does not start once its run is cancelled', async () => {
      const engine = await s.engine({ concurrency: 1 })
      const holding = deferred()
      const release = deferred()
      const hold = workflow(uid()).step('hold', async () => {
        holding.resolve()
        await release.promise
        return 'held'
      })
      let sideEffects = 0
      const victim = workflow(uid()).step('charge', () => ++sideEffects)
      const holder = await engine.start(hold)
      await holding.promise
      const cancelled = await engine.start(victim)
      await tick(5) // its step now waits for the slot `hold` has
      await cancelled.cancel()
      release.resolve()
      expect(await holder.result()).toBe('held')
      await tick(5)
      expect(await rejectionOf(cancelled.result())).toBeInstanceOf(CancelledError)
      expect(sideEffects).toBe(0)
      expect(await engine.getSteps(cancelled.id)).toEqual([])
      // The slot it got and gave back serves the next step.
      expect(await engine.run(victim)).toBe(1)
    })

    it('cancelling a running run frees its workflow concurrency slot', async () => {
      const engine = await s.engine()
      const entered = deferred()
      const wf = workflow<number>(uid(), { concurrency: 1 }).step('work', async (ctx) => {
        if (ctx.payload === 1) {
          entered.resolve()
          await forever(ctx.signal)
        }
        return ctx.payload
      })
      const first = await engine.start(wf, 1)
      const second = await engine.start(wf, 2)
      await entered.promise
      await first.cancel()
      expect(await second.result()).toBe(2)
    })
  })

  describe('workflow timeout', () => {
    it('fails the run with RUN_TIMEOUT and aborts the in-flight step', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      let aborted = false
      let laterRan = false
      const onError: string[] = []
      const wf = workflow(uid(), { timeout: '1m', onError: (ctx) => void onError.push((ctx.error as any).code) })
        .step('slow', async (ctx) => {
          ctx.signal.addEventListener('abort', () => (aborted = true))
          await sleep(120_000)
        })
        .step('later', () => (laterRan = true))
      const handle = await engine.start(wf)
      let settled = false
      const settle = rejectionOf(handle.result()).finally(() => (settled = true))
      await vi.advanceTimersByTimeAsync(59_999)
      expect(settled).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      expect(settled).toBe(true)
      expect(await settle).toMatchObject({ code: 'RUN_TIMEOUT' })
      expect(aborted).toBe(true)
      expect((await engine.getRun(handle.id))?.status).toBe('failed')
      expect(onError).toEqual(['RUN_TIMEOUT'])
      await vi.advanceTimersByTimeAsync(120_000)
      expect(laterRan).toBe(false)
    })
  })

  describe('limits', () => {
    it('engine `concurrency` bounds the steps in flight across runs', async () => {
      const engine = await s.engine({ concurrency: 2 })
      const gauge = inFlight()
      const wf = workflow(uid())
        .step('a', () => gauge.run(() => sleep(3)))
        .parallel('p', [0, 1, 2].map(() => () => gauge.run(() => sleep(3))))
        .step('b', () => gauge.run(async () => (await sleep(1), 'ok')))
      const handles = await Promise.all([1, 2, 3, 4].map(() => engine.start(wf)))
      expect(await Promise.all(handles.map((h) => h.result()))).toEqual(['ok', 'ok', 'ok', 'ok'])
      expect(gauge.max).toBe(2)
    })

    it('workflow `concurrency` queues excess runs; all of them complete', async () => {
      const engine = await s.engine()
      const gauge = inFlight()
      const wf = workflow<number>(uid(), { concurrency: 2 }).step('work', (ctx) => gauge.run(async () => (await sleep(3), ctx.payload * 10)))
      const handles: RunHandle<number>[] = []
      for (const n of [1, 2, 3, 4, 5]) handles.push(await engine.start(wf, n))
      const statuses = await Promise.all(handles.map(async (h) => (await engine.getRun(h.id))?.status))
      expect(statuses).toEqual(['running', 'running', 'queued', 'queued', 'queued'])
      expect(handles.slice(2).map((h) => h.status)).toEqual(['queued', 'queued', 'queued'])
      const outcomes = await Promise.all(handles.map((h) => h.outcome()))
      expect(outcomes.map((o) => [o.status, o.output])).toEqual([
        ['completed', 10],
        ['completed', 20],
        ['completed', 30],
        ['completed', 40],
        ['completed', 50],
      ])
      expect(gauge.max).toBe(2)
      const stored = await engine.listRuns({ workflowId: wf.id })
      expect(stored.map((r) => r.status)).toEqual(['completed', 'completed', 'completed', 'completed', 'completed'])
    })
    it('handle.status agrees with the store: a run within the limit is not reported queued', async () => {
      const engine = await s.engine()
      const wf = workflow(uid(), { concurrency: 1 }).step('work', () => sleep(2))
      const first = await engine.start(wf)
      const second = await engine.start(wf)
      expect((await engine.getRun(first.id))?.status).toBe('running')
      expect((await engine.getRun(second.id))?.status).toBe('queued')
      expect(first.status).toBe('running')
      expect(second.status).toBe('queued')
      await Promise.all([first.result(), second.result()])
      expect([first.status, second.status]).toEqual(['completed', 'completed'])
    })

    it('a queued run whose start the store cannot record fails with the store’s error and frees its slot', async () => {
      const store = await s.store()
      const down = new Error('disk full')
      let isDown = false
      const flaky = storeWith(store, {
        updateRun: (id: string, patch: Parameters<typeof store.updateRun>[1]) => {
          if (isDown && patch.status === 'running') throw down
          return store.updateRun(id, patch)
        },
      })
      const engine = await s.engine({ store: flaky })
      const gate = deferred()
      const wf = workflow<number>(uid(), { concurrency: 1 }).step('work', async (ctx) => (ctx.payload === 1 ? await gate.promise : undefined, ctx.payload))
      const first = await engine.start(wf, 1)
      const second = await engine.start(wf, 2)
      expect(second.status).toBe('queued')
      isDown = true
      gate.resolve()
      expect(await first.result()).toBe(1)
      expect(await rejectionOf(second.result())).toBe(down)
      isDown = false
      expect(engine.activeRuns).toBe(0)
      const third = await engine.start(wf, 3)
      expect(third.status).toBe('running')
      expect(await third.result()).toBe(3)
    })

    it('a start the store refuses gives its workflow `concurrency` slot back', async () => {
      const store = await s.store()
      let refuse = true
      const refusing = storeWith(store, {
        createRun: (...args: Parameters<typeof store.createRun>) => {
          if (refuse) throw new Error('disk full')
          return store.createRun(...args)
        },
      })
      const engine = await s.engine({ store: refusing })
      const wf = workflow(uid(), { concurrency: 1 }).step('work', () => 'done')
      await expect(engine.start(wf)).rejects.toThrow('disk full')
      refuse = false
      const next = await engine.start(wf)
      expect(next.status).toBe('running')
      expect(await next.result()).toBe('done')
    })
  })

  describe('idempotency', () => {
    it('the same idempotencyKey gives the same run, and the step runs once', async () => {
      const engine = await s.engine()
      let calls = 0
      const wf = workflow(uid()).step('charge', async () => (await sleep(1), ++calls))
      const a = await engine.start(wf, { x: 1 }, { idempotencyKey: 'order-1' })
      await a.result()
      const b = await engine.start(wf, { x: 1 }, { idempotencyKey: 'order-1' })
      expect(b.id).toBe(a.id)
      expect(await b.result()).toBe(1)
      expect(calls).toBe(1)
      expect(await engine.listRuns({ workflowId: wf.id })).toHaveLength(1)
    })

    it('different keys give different runs', async () => {
      const engine = await s.engine()
      let calls = 0
      const wf = workflow(uid()).step('charge', () => ++calls)
      const a = await engine.start(wf, undefined, { idempotencyKey: 'k1' })
      const b = await engine.start(wf, undefined, { idempotencyKey: 'k2' })
      expect(a.id).not.toBe(b.id)
      await Promise.all([a.result(), b.result()])
      expect(calls).toBe(2)
    })

    it('keys are scoped per workflow', async () => {
      const engine = await s.engine()
      const a = await engine.start(workflow(uid()).step('a', () => 'a'), undefined, { idempotencyKey: 'k' })
      const b = await engine.start(workflow(uid()).step('b', () => 'b'), undefined, { idempotencyKey: 'k' })
      expect(a.id).not.toBe(b.id)
      expect([await a.result(), await b.result()]).toEqual(['a', 'b'])
    })

    it('concurrent starts with one key create one run', async () => {
      const engine = await s.engine()
      let calls = 0
      const wf = workflow(uid()).step('charge', async () => (await sleep(2), ++calls))
      const handles = await Promise.all([1, 2, 3, 4, 5].map(() => engine.start(wf, undefined, { idempotencyKey: 'same' })))
      expect(new Set(handles.map((h) => h.id)).size).toBe(1)
      await Promise.all(handles.map((h) => h.result()))
      expect(calls).toBe(1)
      expect(await engine.listRuns({ workflowId: wf.id })).toHaveLength(1)
    })
  })

  describe('a store that cannot record a run’s end', () => {
    for (const [what, step] of [
      ['a failed run', () => { throw new Error('step broke') }],
      ['a completed run', () => 'fine'],
    ] as const) {
      it(`${what}: result() rejects with the store’s error, the run leaves memory and its slot, nothing is left unhandled`, async () => {
        const store = await s.store()
        const down = new Error('disk full')
        let isDown = true
        const failing = storeWith(store, {
          updateRun: (id: string, patch: Parameters<typeof store.updateRun>[1]) => {
            if (isDown && patch.endedAt !== undefined) throw down
            return store.updateRun(id, patch)
          },
        })
        const engine = await s.engine({ store: failing })
        const wf = workflow(uid(), { concurrency: 1 }).step('work', step)
        const handle = await engine.start(wf)
        expect(await rejectionOf(handle.result())).toBe(down)
        expect(await handle.outcome()).toMatchObject({ status: 'failed', error: down })
        expect(engine.activeRuns).toBe(0)
        // Unrecorded: the row still says running, so recovery resumes the run later.
        expect((await store.getRun(handle.id))?.status).toBe('running')
        isDown = false
        const next = await engine.start(workflow(uid()).step('other', () => 1))
        expect(await next.result()).toBe(1)
        expect((await engine.start(wf)).status).toBe('running')
      })
    }
  })

  describe('close', () => {
    it('closeSignal aborts as soon as close() is called (reason ENGINE_CLOSED), before the run in flight ends', async () => {
      const engine = await s.engine()
      const release = deferred()
      const entered = deferred()
      const wf = workflow(uid()).step('work', async () => {
        entered.resolve()
        await release.promise
        return 'done'
      })
      const handle = await engine.start(wf)
      await entered.promise
      expect(engine.closeSignal.aborted).toBe(false)
      let endedAtAbort: string | undefined
      engine.closeSignal.addEventListener('abort', () => (endedAtAbort = handle.status))
      const closing = engine.close()
      expect(engine.closeSignal.aborted).toBe(true)
      expect(engine.closeSignal.reason).toMatchObject({ code: 'ENGINE_CLOSED' })
      expect(endedAtAbort).toBe('running')
      release.resolve()
      await closing
      expect(await handle.result()).toBe('done')
    })

    it('waits for a start still creating its run, and for that run to end', async () => {
      const store = await s.store()
      const slowCreate = storeWith(store, {
        createRun: async (...args: Parameters<typeof store.createRun>) => {
          await sleep(20)
          return store.createRun(...args)
        },
      })
      const engine = await s.engine({ store: slowCreate })
      let calls = 0
      const wf = workflow(uid()).step('work', async () => (await sleep(5), ++calls))
      const starting = engine.start(wf)
      await engine.close()
      const handle = await starting
      expect(calls).toBe(1)
      expect(await store.getRun(handle.id)).toMatchObject({ status: 'completed', output: 1 })
    })

    it('returns when a run in flight parks (sleep, waitForEvent): it stays parked in the store for the next engine', async () => {
      const store = await s.store()
      const engine = await s.engine({ store })
      const stepping = deferred()
      const wf = workflow(uid())
        .step('a', async () => {
          stepping.resolve()
          await sleep(10)
          return 'a'
        })
        .sleep('nap', '1h')
        .step('b', () => 'b')
      const waiting = workflow(uid())
        .step('a', async () => (await sleep(10), 'a'))
        .waitForEvent('approval')
      const sleeper = await engine.start(wf)
      const waiter = await engine.start(waiting)
      await stepping.promise
      let closed = 0
      // Called twice (a SIGTERM, then a SIGINT): both calls return.
      const closing = Promise.all([engine.close(), engine.close()].map((c) => c.then(() => closed++)))
      await vi.waitFor(() => expect(closed).toBe(2), { timeout: 2000 })
      await closing
      expect((await store.getRun(sleeper.id))?.status).toBe('sleeping')
      expect((await store.getRun(waiter.id))?.status).toBe('waiting')
      expect((await store.getSteps(sleeper.id)).map((r) => [r.name, r.status])).toEqual([
        ['a', 'completed'],
        ['nap', 'running'],
      ])
    })
  })

  describe('run ids chosen by the caller', () => {
    it('a runId that exists is refused with RUN_EXISTS, whatever the workflow, and the existing run is untouched', async () => {
      const engine = await s.engine()
      let calls = 0
      const wf = workflow(uid()).step('count', () => ++calls)
      const id = uid('run')
      const first = await engine.start(wf, undefined, { runId: id })
      expect(first.id).toBe(id)
      expect(await first.result()).toBe(1)
      expect(await rejectionOf(engine.start(wf, undefined, { runId: id }))).toMatchObject({
        code: 'RUN_EXISTS',
        message: `engine.start: a run with id "${id}" already exists (workflow "${wf.id}", completed); run ids are unique. Pass another runId, or the same idempotencyKey to get the existing run back on a retry.`,
      })
      const other = workflow(uid()).step('other', () => ++calls)
      expect(await rejectionOf(engine.start(other, undefined, { runId: id }))).toMatchObject({ code: 'RUN_EXISTS' })
      await sleep(5)
      expect(calls).toBe(1)
      expect(await engine.getRun(id)).toMatchObject({ workflowId: wf.id, status: 'completed', output: 1, attempt: 1 })
      expect((await engine.getSteps(id)).map((r) => r.name)).toEqual(['count'])
    })

    it('two concurrent starts with one runId: one run, the other gets RUN_EXISTS', async () => {
      const engine = await s.engine()
      let calls = 0
      const wf = workflow(uid()).step('count', async () => (await sleep(1), ++calls))
      const id = uid('run')
      const [a, b] = await Promise.allSettled([engine.start(wf, undefined, { runId: id }), engine.start(wf, undefined, { runId: id })])
      expect(a).toMatchObject({ status: 'fulfilled', value: { id } })
      expect(b).toMatchObject({ status: 'rejected', reason: { code: 'RUN_EXISTS', message: expect.stringContaining('is already being started or running in this engine') } })
      expect(await (a as PromiseFulfilledResult<RunHandle<unknown>>).value.result()).toBe(1)
      expect(calls).toBe(1)
      expect(await engine.listRuns({ workflowId: wf.id })).toHaveLength(1)
    })

    it('a runId with the idempotencyKey it was started with gives the same run back (a retry); another key is refused', async () => {
      const engine = await s.engine()
      let calls = 0
      const wf = workflow(uid()).step('count', () => ++calls)
      const id = uid('run')
      const a = await engine.start(wf, undefined, { runId: id, idempotencyKey: 'order-7' })
      await a.result()
      const again = await engine.start(wf, undefined, { runId: id, idempotencyKey: 'order-7' })
      expect(again.id).toBe(id)
      expect(await again.result()).toBe(1)
      expect(await rejectionOf(engine.start(wf, undefined, { runId: id, idempotencyKey: 'order-8' }))).toMatchObject({ code: 'RUN_EXISTS' })
      expect(calls).toBe(1)
    })

    it('a runId another process creates between the check and the insert: RUN_EXISTS, that run untouched, the slot given back', async () => {
      const store = await s.store()
      const chosen: unknown[] = []
      // This engine's look finds the id free; the insert then meets the other process's run.
      const racing = storeWith(store, {
        getRun: (id) => (id === 'taken' ? undefined : store.getRun(id)),
        createRun: (...args) => (chosen.push(args[1]), store.createRun(...args)),
      })
      const engine = await s.engine({ store: racing })
      let calls = 0
      const wf = workflow(uid(), { concurrency: 1 }).step('count', () => ++calls)
      await store.createRun({ id: 'taken', workflowId: 'elsewhere', planHash: 'h', status: 'running', payload: 1, attempt: 1, createdAt: 1 })
      expect(await rejectionOf(engine.start(wf, undefined, { runId: 'taken' }))).toMatchObject({
        code: 'RUN_EXISTS',
        message: expect.stringContaining('a run with id "taken" already exists (workflow "elsewhere", running)'),
      })
      expect(chosen).toEqual([{ idChosen: true }])
      expect(await store.getRun('taken')).toMatchObject({ workflowId: 'elsewhere', payload: 1 })
      // The concurrency slot came back: the next run starts.
      expect(await (await engine.start(wf)).result()).toBe(1)
      expect(chosen).toEqual([{ idChosen: true }, undefined])
    })

    it('a runId or idempotencyKey that is not a non-empty string, or holds a lone UTF-16 surrogate, is refused with OPTIONS_INVALID and makes no run', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).step('a', () => 1)
      await expect(engine.start(wf, undefined, { runId: '' })).rejects.toMatchObject({ code: 'OPTIONS_INVALID', message: expect.stringContaining('`runId` as a non-empty string') })
      await expect(engine.start(wf, undefined, { runId: 7 as never })).rejects.toMatchObject({ code: 'OPTIONS_INVALID' })
      await expect(engine.start(wf, undefined, { idempotencyKey: '' })).rejects.toMatchObject({ code: 'OPTIONS_INVALID', message: expect.stringContaining('`idempotencyKey` as a non-empty string') })
      await expect(engine.start(wf, undefined, { idempotencyKey: { id: 1 } as never })).rejects.toMatchObject({ code: 'OPTIONS_INVALID', message: expect.stringContaining('got {"id":1}') })
      // SQLite would keep both as "key-\uFFFD": two different keys, one run.
      for (const [option, value] of [['runId', 'run-\ud800'], ['idempotencyKey', 'key-\udc00']] as const) {
        await expect(engine.start(wf, undefined, { [option]: value })).rejects.toMatchObject({ code: 'OPTIONS_INVALID', message: expect.stringContaining(`\`${option}\` "${value.slice(0, -1)}\\u${value.charCodeAt(value.length - 1).toString(16)}" holds a lone UTF-16 surrogate`) })
      }
      expect(await (await engine.start(wf, undefined, { runId: `${wf.id}-😀`, idempotencyKey: 'k-😀' })).result()).toBe(1)
      expect((await engine.listRuns({ workflowId: wf.id })).map((r) => [r.id, r.idempotencyKey])).toEqual([[`${wf.id}-😀`, 'k-😀']])
    })
  })

  describe('events', () => {
    it('a listener that throws is reported through the logger; the run, its journal and its handle go on', async () => {
      const reported: string[] = []
      const engine = await s.engine({ logger: { error: (message: string) => reported.push(message) } })
      engine.on('step:completed', () => {
        throw new Error('listener bug')
      })
      const wf = workflow(uid(), { concurrency: 1 }).step('a', () => 1).step('b', (ctx) => ctx.last + 1)
      const handle = await engine.start(wf)
      handle.on('run:completed', () => {
        throw new Error('handle listener bug')
      })
      expect(await handle.result()).toBe(2)
      expect((await engine.getSteps(handle.id)).map((r) => r.status)).toEqual(['completed', 'completed'])
      expect(reported).toEqual([
        `[${wf.id} ${handle.id}] a "step:completed" listener threw: listener bug`,
        `[${wf.id} ${handle.id}] a "step:completed" listener threw: listener bug`,
        `[${wf.id} ${handle.id}] a "run:completed" listener threw: handle listener bug`,
      ])
      // Its concurrency slot came back.
      expect(await (await engine.start(wf)).result()).toBe(2)
    })

    const all: EngineEventName[] = ['run:started', 'step:started', 'step:completed', 'step:failed', 'step:retrying', 'step:skipped', 'run:progress', 'run:completed', 'run:failed', 'run:cancelled']

    it('emits run:started, step:started/completed per step and run:completed with a summary, in order', async () => {
      const engine = await s.engine()
      const log: { name: string; e: any }[] = []
      for (const name of all) engine.on(name, (e: any) => log.push({ name, e }))
      const wf = workflow(uid())
        .step('a', () => 1)
        .step('b', async () => (await sleep(2), 2))
      const handle = await engine.start(wf, { p: 1 })
      await handle.result()
      const mine = log.filter((l) => l.e.runId === handle.id)
      expect(mine.map((l) => (l.e.step ? `${l.name} ${l.e.step}` : l.name))).toEqual([
        'run:started',
        'step:started a',
        'step:completed a',
        'step:started b',
        'step:completed b',
        'run:completed',
      ])
      expect(mine[0]!.e).toMatchObject({ workflowId: wf.id, payload: { p: 1 } })
      expect(mine[2]!.e).toMatchObject({ output: 1 })
      const done = mine[5]!.e
      expect(done.output).toBe(2)
      expect(done.summary.wallMs).toBeGreaterThanOrEqual(1)
      expect(done.summary.stepMs).toBeGreaterThanOrEqual(1)
      expect(done.summary.parallelEfficiency).toBeGreaterThan(0)
      expect(done.summary.parallelEfficiency).toBeLessThanOrEqual(1.05)
      expect(done.summary.criticalPath).toEqual(['a', 'b'])
    })

    it('emits step:failed and run:failed when a run fails', async () => {
      const engine = await s.engine()
      const names: string[] = []
      for (const name of all) engine.on(name, (e: any) => names.push(e.step ? `${name} ${e.step}` : name))
      const wf = workflow(uid()).step('bad', () => {
        throw new Error('x')
      })
      await rejectionOf(engine.run(wf))
      expect(names).toEqual(['run:started', 'step:started bad', 'step:failed bad', 'run:failed'])
    })

    it('handle.on receives only its own run’s events', async () => {
      const engine = await s.engine()
      const wf = workflow<string>(uid())
        .step('a', async (ctx) => (await sleep(2), ctx.payload))
        .step('b', async (ctx) => (await sleep(1), ctx.last))
      const h1 = await engine.start(wf, 'one')
      const h2 = await engine.start(wf, 'two')
      const seen1: string[] = []
      const seen2: string[] = []
      for (const name of all) {
        h1.on(name, (e: any) => seen1.push(e.runId))
        h2.on(name, (e: any) => seen2.push(e.runId))
      }
      const completed1: unknown[] = []
      h1.on('step:completed', (e) => completed1.push(e.output))
      h1.on('run:completed', (e) => completed1.push(`run ${String(e.output)}`))
      await Promise.all([h1.result(), h2.result()])
      expect(seen1.length).toBeGreaterThanOrEqual(3)
      expect(seen1.every((id) => id === h1.id)).toBe(true)
      expect(seen2.every((id) => id === h2.id)).toBe(true)
      expect(completed1).toEqual(['one', 'one', 'run one'])
    })

    it('handle.on attached right after start() sees the whole run, from run:started', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .step('a', () => 1)
        .step('b', () => 2)
      const handle = await engine.start(wf)
      const names: string[] = []
      for (const name of all) handle.on(name, (e: any) => names.push(e.step ? `${name} ${e.step}` : name))
      await handle.result()
      expect(names).toEqual(['run:started', 'step:started a', 'step:completed a', 'step:started b', 'step:completed b', 'run:completed'])
    })

    it('step:completed follows the journal write, for steps as for containers, when the store writes asynchronously', async () => {
      const inner = await s.store()
      const durable = new Set<string>()
      const store = storeWith(inner, {
        recordStep: async (runId, rec) => {
          await tick(1)
          await inner.recordStep(runId, rec)
          durable.add(rec.key)
        },
      })
      const engine = await s.engine({ store })
      const seen: [string, boolean][] = []
      engine.on('step:completed', (e) => seen.push([e.step, durable.has(e.key)]))
      let tries = 0
      const wf = workflow(uid())
        .step('sync', () => 1)
        .step('async', async () => 2)
        .step('retried', () => {
          if (++tries === 1) throw new Error('once')
          return 3
        }, { retry: { attempts: 2, delay: 1 } })
        .parallel('fan', [() => 4, async () => 5])
        .race('quote', [async () => 6])
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe(6)
      expect(seen.map(([name]) => name)).toEqual(['sync', 'async', 'retried', 'fan[0]', 'fan[1]', 'fan', 'quote[0]', 'quote'])
      expect(seen.filter(([, written]) => !written)).toEqual([])
    })

    it('a step whose journal write is still pending when the run is cancelled reports nothing after run:cancelled', async () => {
      const inner = await s.store()
      const writing = deferred()
      const store = storeWith(inner, {
        recordStep: async (runId, rec) => {
          writing.resolve()
          await tick(20)
          await inner.recordStep(runId, rec)
        },
      })
      const engine = await s.engine({ store })
      const events: string[] = []
      engine.on('step:completed', (e) => events.push(`step:completed ${e.step}`))
      engine.on('run:cancelled', () => events.push('run:cancelled'))
      const wf = workflow(uid()).step('a', () => 1).step('b', () => 2)
      const handle = await engine.start(wf)
      await writing.promise
      expect(await handle.cancel()).toBe(true)
      await tick(40)
      expect(events).toEqual(['run:cancelled'])
    })
  })

  describe('summary', () => {
    it('reports parallel efficiency and the critical path of a parallel run', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .step('prep', () => 0)
        .parallel('fan', [
          () => sleep(50),
          () => sleep(50),
          () => sleep(80),
          () => sleep(50),
        ])
      const handle = await engine.start(wf)
      const outcome = await handle.outcome()
      expect(outcome.status).toBe('completed')
      expect(outcome.summary.parallelEfficiency).toBeGreaterThan(1.5)
      expect(outcome.summary.wallMs).toBeGreaterThanOrEqual(75)
      expect(outcome.summary.stepMs).toBeGreaterThanOrEqual(220)
      expect(outcome.summary.criticalPath).toContain('fan[2]')
      expect(outcome.summary.criticalPath).not.toContain('fan[0]')
    })

    it('a parallel, race or forEach that .onError recovered is on the critical path by its own name, for the time it took', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .step('prep', () => 0)
        .race('quote', [async () => (await sleep(30), Promise.reject(new Error('carrier a down'))), async () => (await sleep(40), Promise.reject(new Error('carrier b down')))])
        .onError(() => 'flat rate')
        .forEach('items', () => [1, 2], (_item, flow) => flow.step('check', async (ctx) => (await sleep(20), ctx.item === 2 ? Promise.reject(new Error('bad item')) : ctx.item)))
        .onError(() => [])
        .step('confirm', (ctx) => ctx.steps.quote.output)
      const outcome = await (await engine.start(wf)).outcome()
      expect(outcome.output).toBe('flat rate')
      expect(outcome.summary.criticalPath).toEqual(['prep', 'quote', 'items', 'confirm'])
      const quote = (await engine.getSteps(outcome.runId)).find((r) => r.name === 'quote')!
      expect(quote.recovered).toBe(true)
      expect(outcome.summary.wallMs).toBeGreaterThanOrEqual(quote.durationMs)
    })
  })

  describe('sleep', () => {
    it('waits the duration and passes ctx.last through', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      let afterRan = false
      const wf = workflow(uid())
        .step('value', () => ({ v: 1 }))
        .sleep('cool-down', '10m')
        .step('after', (ctx) => {
          afterRan = true
          return { last: ctx.last, slept: ctx.steps['cool-down'].output }
        })
      const handle = await engine.start(wf)
      const result = handle.result()
      await vi.advanceTimersByTimeAsync(10 * 60_000 - 1)
      expect(afterRan).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      expect(afterRan).toBe(true)
      expect(await result).toEqual({ last: { v: 1 }, slept: { v: 1 } })
      expect((await engine.getSteps(handle.id)).find((r) => r.name === 'cool-down')).toMatchObject({ kind: 'sleep', status: 'completed' })
    })
  })
}

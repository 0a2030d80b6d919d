import { describe, expect, it, vi } from 'vitest'
import { PlanError, workflow, type AnyWorkflow, type Engine, type RunHandle, type Store } from '@stepline/core'
import { deferred, forever, inFlight, rejectionOf, sleep, storeWith, uid, type Deferred, type SuiteContext } from './helpers'

/**
 * `store`, but the transition that wakes a parked run answers only once `held` resolves (it has
 * landed by then: the row says running while the engine has not resumed the run yet).
 */
function answersWakeLate(store: Store): { store: Store; held: Deferred } {
  const held = deferred()
  return {
    held,
    store: storeWith(store, {
      transitionRun: async (...args: Parameters<Store['transitionRun']>) => {
        const moved = await store.transitionRun(...args)
        if (args[2] === 'running' && args[1].includes('waiting')) await held.promise
        return moved
      },
    }),
  }
}

/**
 * Starts `wf` (a run that waits for "approval"), sends it the event once parked, and returns when
 * the wake-up's transition has landed and is held: the store says running, the engine has not resumed it.
 */
async function sendWhileWakeHeld(engine: Engine, store: Store, wf: AnyWorkflow): Promise<{ handle: RunHandle<unknown>; sent: Promise<unknown> }> {
  const handle = await engine.start(wf)
  await vi.waitFor(async () => expect((await store.getRun(handle.id))?.status).toBe('waiting'))
  const sent = engine.send(handle.id, 'approval', 1)
  await vi.waitFor(async () => expect((await store.getRun(handle.id))?.status).toBe('running'))
  return { handle, sent }
}

export function recoveryTests(s: SuiteContext): void {
  describe('recover()', () => {
    it('resumes a crashed run on a new engine over the same store; finished steps are not run again', async () => {
      const store = await s.store()
      const id = uid()
      let firstCalls = 0
      let hang = true
      const secondEntered = deferred()
      const attempts: number[] = []
      const wf = workflow<{ n: number }>(id)
        .step('first', (ctx) => {
          firstCalls++
          return ctx.payload.n + 1
        })
        .step('second', async (ctx) => {
          attempts.push(ctx.run.attempt)
          if (hang) {
            secondEntered.resolve()
            await forever()
          }
          return ctx.last * 10
        })
        .step('third', (ctx) => ({ last: ctx.last, first: ctx.steps.first.output }))

      // Engine A "crashes": its second step never resolves.
      const engineA = await s.engine({ store })
      const crashed = await engineA.start(wf, { n: 5 })
      await secondEntered.promise
      expect((await store.getRun(crashed.id))?.status).toBe('running')

      hang = false
      const engineB = await s.engine({ store, workflows: [wf] })
      const handles = await engineB.recover()
      expect(handles.map((h) => h.id)).toEqual([crashed.id])
      expect(await handles[0]!.result()).toEqual({ last: 60, first: 6 })
      expect(firstCalls).toBe(1)
      expect(attempts).toEqual([1, 2])
      const run = await engineB.getRun(crashed.id)
      expect(run).toMatchObject({ status: 'completed', attempt: 2 })
      const steps = await engineB.getSteps(crashed.id)
      expect(steps.map((r) => [r.name, r.status])).toEqual([
        ['first', 'completed'],
        ['second', 'completed'],
        ['third', 'completed'],
      ])
    })

    it('a run started while the engine’s first recovery pass reads the store runs once, not resumed by it', async () => {
      const store = await s.store()
      // The store shows the run at once but confirms the insert a macrotask later (SQLite's
      // per-turn group commit does, and a read in between flushes the insert).
      const lateConfirm = storeWith(store, {
        createRun: async (...args: Parameters<typeof store.createRun>) => {
          const created = await store.createRun(...args)
          await new Promise((r) => setImmediate(r))
          return created
        },
      })
      let calls = 0
      const wf = workflow(uid()).step('once', () => ++calls)
      // Registering schedules the recovery pass for the next macrotask, before the insert is confirmed.
      const engine = await s.engine({ store: lateConfirm, workflows: [wf] })
      const run = await engine.start(wf)
      expect(await run.result()).toBe(1)
      expect(await engine.recover()).toEqual([])
      await sleep(5)
      expect(calls).toBe(1)
      expect(await store.getRun(run.id)).toMatchObject({ status: 'completed', attempt: 1 })
    })

    it('a parked run an event is waking is not resumed a second time by a recovery pass in between', async () => {
      const store = await s.store()
      const { store: slowWake, held } = answersWakeLate(store)
      let shipped = 0
      const wf = workflow(uid()).waitForEvent('approval').step('ship', () => ++shipped)
      const engine = await s.engine({ store: slowWake, workflows: [wf] })
      const { handle, sent } = await sendWhileWakeHeld(engine, store, wf)
      expect(await engine.recover()).toEqual([])
      held.resolve()
      await sent
      expect(await handle.result()).toBe(1)
      await sleep(5)
      expect(shipped).toBe(1)
    })

    it('a run that is parking is not resumed by a recovery pass before its row says so', async () => {
      const store = await s.store()
      const held = deferred()
      const slowPark = storeWith(store, {
        transitionRun: async (...args: Parameters<typeof store.transitionRun>) => {
          if (args[2] === 'waiting') await held.promise
          return store.transitionRun(...args)
        },
      })
      let shipped = 0
      const wf = workflow(uid()).waitForEvent('approval').step('ship', () => ++shipped)
      const engine = await s.engine({ store: slowPark, workflows: [wf] })
      const handle = await engine.start(wf)
      await vi.waitFor(() => expect(engine.activeRuns).toBe(0))
      expect((await store.getRun(handle.id))?.status).toBe('running')
      expect(await engine.recover()).toEqual([])
      held.resolve()
      await vi.waitFor(async () => expect((await store.getRun(handle.id))?.status).toBe('waiting'))
      await engine.send(handle.id, 'approval', 1)
      expect(await handle.result()).toBe(1)
      expect(shipped).toBe(1)
    })

    it('a run cancelled while a recovery pass reads its journal stays cancelled and is not resumed', async () => {
      const store = await s.store()
      const entered = deferred()
      let calls = 0
      const wf = workflow(uid()).step('work', async () => {
        calls++
        entered.resolve()
        return forever()
      })
      // Engine A "crashes" inside the step: the run stays running in the store.
      const engineA = await s.engine({ store })
      const crashed = await engineA.start(wf)
      await entered.promise

      const held = deferred()
      const reading = deferred()
      const slowJournal = storeWith(store, {
        getSteps: async (runId: string) => {
          reading.resolve()
          await held.promise
          return store.getSteps(runId)
        },
      })
      const engineB = await s.engine({ store: slowJournal, workflows: [wf], recover: false })
      const recovering = engineB.recover()
      await reading.promise
      await engineB.cancel(crashed.id, 'withdrawn')
      held.resolve()
      expect(await recovering).toEqual([])
      await sleep(5)
      expect(calls).toBe(1)
      expect(await store.getRun(crashed.id)).toMatchObject({ status: 'cancelled', attempt: 1 })
    })

    it('a cancel that arrives while a parked run is being woken ends it cancelled, not completed', async () => {
      const store = await s.store()
      const { store: slowWake, held } = answersWakeLate(store)
      const wf = workflow(uid()).waitForEvent('approval').step('ship', async (ctx) => (await sleep(30, ctx.signal), 'shipped'))
      const engine = await s.engine({ store: slowWake, workflows: [wf] })
      const { handle, sent } = await sendWhileWakeHeld(engine, store, wf)
      const cancelled = engine.cancel(handle.id, 'withdrawn')
      held.resolve()
      await Promise.all([sent, cancelled])
      expect(await handle.outcome()).toMatchObject({ status: 'cancelled' })
      await sleep(40)
      expect(await store.getRun(handle.id)).toMatchObject({ status: 'cancelled' })
    })

    it('a resumed forEach does not redo finished items', async () => {
      const store = await s.store()
      const calls: number[] = []
      let hang = true
      const hung = deferred()
      const wf = workflow(uid()).forEach(
        'each',
        () => [0, 1, 2, 3],
        (item, flow) =>
          flow.step('one', async () => {
            calls.push(item)
            if (item === 2 && hang) {
              hung.resolve()
              await forever()
            }
            return item * 100
          }),
        { concurrency: 1 },
      )
      const engineA = await s.engine({ store })
      const crashed = await engineA.start(wf)
      await hung.promise
      hang = false
      const engineB = await s.engine({ store, workflows: [wf] })
      const [resumed] = await engineB.recover()
      expect(resumed?.id).toBe(crashed.id)
      expect(await resumed!.result()).toEqual([0, 100, 200, 300])
      expect(calls).toEqual([0, 1, 2, 2, 3])
    })

    it('the summary of a resumed run counts the branches and items it replayed', async () => {
      const store = await s.store()
      const entered = deferred()
      let crash = true
      const wf = workflow(uid())
        .parallel('fetch', [async () => (await sleep(4), 'slow'), () => 'fast'])
        .forEach('each', () => [1, 2], (n, flow) => flow.step('double', () => n * 2))
        .if('big', () => true)
        .step('review', () => 'ok')
        .endIf()
        .step('ship', async () => {
          if (crash) {
            entered.resolve()
            await forever()
          }
          return 'shipped'
        })
      const engineA = await s.engine({ store })
      const crashed = await engineA.start(wf)
      await entered.promise
      crash = false
      const engineB = await s.engine({ store, workflows: [wf], recover: false })
      const [handle] = await engineB.recover()
      const outcome = await handle!.outcome()
      expect(outcome.output).toBe('shipped')
      expect(outcome.runId).toBe(crashed.id)
      // fetch[0], fetch[1], double ×2, review, ship: as the same run's summary without a crash.
      expect(outcome.summary.steps).toBe(6)
      expect(outcome.summary.criticalPath).toEqual(['fetch[0]', expect.stringMatching(/^double\[[01]\]$/), 'review', 'ship'])
    })

    it('refuses to resume a run whose plan changed: PlanError naming the hash, and no step of the new plan runs', async () => {
      const store = await s.store()
      const id = uid()
      const secondEntered = deferred()
      const v1 = workflow(id)
        .step('first', () => 1)
        .step('second', async () => {
          secondEntered.resolve()
          return forever()
        })
      const engineA = await s.engine({ store })
      const crashed = await engineA.start(v1)
      await secondEntered.promise

      const v2Calls: string[] = []
      const v2 = workflow(id)
        .step('first', () => (v2Calls.push('first'), 1))
        .step('second', () => (v2Calls.push('second'), 2))
        .step('third', () => (v2Calls.push('third'), 3))
      expect(v2.plan().hash).not.toBe(v1.plan().hash)
      const engineB = await s.engine({ store, workflows: [v2] })
      const handles = await engineB.recover()
      expect(handles.map((h) => h.id)).toEqual([crashed.id])
      const err = await rejectionOf(handles[0]!.result())
      expect(err).toBeInstanceOf(PlanError)
      expect(err.code).toBe('PLAN_CHANGED')
      expect(err.message).toContain(v1.plan().hash)
      expect((await engineB.getRun(crashed.id))?.status).toBe('failed')
      await new Promise((r) => setTimeout(r, 5))
      expect(v2Calls).toEqual([])
    })

    it('with resumeChangedPlans: true, a run whose plan changed resumes under the new plan from its journal', async () => {
      const store = await s.store()
      const id = uid()
      const secondEntered = deferred()
      let firstCalls = 0
      const v1 = workflow(id)
        .step('first', () => ++firstCalls)
        .step('second', async () => {
          secondEntered.resolve()
          return forever()
        })
      const engineA = await s.engine({ store })
      const crashed = await engineA.start(v1)
      await secondEntered.promise
      const v2 = workflow(id)
        .step('first', () => ++firstCalls)
        .step('second', (ctx) => ctx.last + 10)
        .step('third', (ctx) => ctx.last * 2)
      const engineB = await s.engine({ store, workflows: [v2], resumeChangedPlans: true })
      const [handle] = await engineB.recover()
      expect(await handle!.result()).toBe(22)
      expect(firstCalls).toBe(1)
    })

    it('a refused (plan changed) run does not disturb the workflow’s concurrency limit', async () => {
      const store = await s.store()
      const id = uid()
      const entered = deferred()
      const v1 = workflow<number>(id, { concurrency: 1 }).step('work', async () => {
        entered.resolve()
        return forever()
      })
      const engineA = await s.engine({ store })
      await engineA.start(v1, 0)
      await entered.promise

      const gauge = inFlight()
      const v2 = workflow<number>(id, { concurrency: 1 })
        .step('work', (ctx) => gauge.run(async () => (await sleep(3), ctx.payload)))
        .step('more', (ctx) => ctx.last)
      const engineB = await s.engine({ store, workflows: [v2] })
      const [refused] = await engineB.recover()
      expect(await rejectionOf(refused!.result())).toMatchObject({ code: 'PLAN_CHANGED' })
      const handles = [await engineB.start(v2, 1), await engineB.start(v2, 2), await engineB.start(v2, 3)]
      expect(await Promise.all(handles.map((h) => h.result()))).toEqual([1, 2, 3])
      expect(gauge.max).toBe(1)
    })

    it('runs resumed beyond the workflow’s concurrency are `queued` in the store until a slot frees, as new runs are, then run one at a time', async () => {
      const store = await s.store()
      const id = uid()
      let hang = true
      const entered: Deferred[] = [deferred(), deferred(), deferred()]
      const release = deferred()
      const wf = workflow<number>(id, { concurrency: 1 }).step('work', async (ctx) => {
        entered[ctx.payload]!.resolve()
        if (hang) await forever()
        await release.promise
        return ctx.payload
      })
      // Engine A "crashes" with one run in its step and two queued behind it.
      const engineA = await s.engine({ store })
      for (const n of [0, 1, 2]) await engineA.start(wf, n)
      await entered[0]!.promise
      entered.splice(0, 3, deferred(), deferred(), deferred())
      hang = false

      const engineB = await s.engine({ store, workflows: [wf] })
      const handles = await engineB.recover()
      expect(handles).toHaveLength(3)
      await Promise.race(entered.map((d) => d.promise))
      const statuses = async (): Promise<string[]> => (await Promise.all(handles.map(async (h) => (await store.getRun(h.id))!.status))).sort()
      expect(await statuses()).toEqual(['queued', 'queued', 'running'])
      release.resolve()
      expect((await Promise.all(handles.map((h) => h.result()))).sort()).toEqual([0, 1, 2])
      expect(await statuses()).toEqual(['completed', 'completed', 'completed'])
    })

    it('parked runs woken together beyond the workflow’s concurrency are `queued` until a slot frees', async () => {
      vi.useFakeTimers()
      const store = await s.store()
      const id = uid()
      const release = deferred()
      const wf = workflow<number>(id, { concurrency: 1 })
        .sleep('nap', '1h')
        .step('work', async (ctx) => (await release.promise, ctx.payload))
      const engine = await s.engine({ store, workflows: [wf] })
      const handles = [await engine.start(wf, 0), await engine.start(wf, 1)]
      await vi.waitFor(async () => expect((await Promise.all(handles.map(async (h) => (await store.getRun(h.id))!.status)))).toEqual(['sleeping', 'sleeping']))
      await vi.advanceTimersByTimeAsync(3_600_000)
      await vi.waitFor(async () => expect((await Promise.all(handles.map(async (h) => (await store.getRun(h.id))!.status))).sort()).toEqual(['queued', 'running']))
      release.resolve()
      expect(await Promise.all(handles.map((h) => h.result()))).toEqual([0, 1])
    })
  })
}

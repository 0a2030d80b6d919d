import { describe, expect, it, vi } from 'vitest'
import { ParallelError, RaceError, StepTimeoutError, workflow } from '@stepline/core'
import { deferred, errorChain, forever, inFlight, rejectionOf, rootCause, sleep, storeWith, tick, uid, type SuiteContext } from './helpers'

export function parallelRaceTests(s: SuiteContext): void {
  describe('parallel', () => {
    it('gives a tuple in branch order, whatever order branches finish in', async () => {
      const engine = await s.engine()
      const wf = workflow<{ id: number }>(uid())
        .parallel('fetch', [
          async (ctx) => {
            await sleep(15)
            return `user-${ctx.payload.id}`
          },
          async () => {
            await sleep(1)
            return 42
          },
          () => ({ sync: true }),
        ])
        .step('combine', (ctx) => {
          const [user, n, obj] = ctx.last
          return { user, n, obj, fromSteps: ctx.steps.fetch.output[0] }
        })
      const out = await engine.run(wf, { id: 7 })
      expect(out).toEqual({ user: 'user-7', n: 42, obj: { sync: true }, fromSteps: 'user-7' })
    })

    it('gives an object for an object of named branches', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).parallel('fetch', {
        user: async () => {
          await sleep(5)
          return 'ada'
        },
        order: () => 'o-1',
      })
      expect(await engine.run(wf)).toEqual({ user: 'ada', order: 'o-1' })
    })

    it('journals each branch and the node', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).parallel('fetch', [() => 'a', async () => 'b'])
      const handle = await engine.start(wf)
      await handle.result()
      const steps = await engine.getSteps(handle.id)
      const byName = Object.fromEntries(steps.map((r) => [r.name, r]))
      expect(byName['fetch']).toMatchObject({ kind: 'parallel', status: 'completed', output: ['a', 'b'] })
      expect(byName['fetch[0]']).toMatchObject({ status: 'completed', output: 'a' })
      expect(byName['fetch[1]']).toMatchObject({ status: 'completed', output: 'b' })
    })

    it('unnamed parallel gets a generated name', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .parallel([() => 1, () => 2])
        .step('sum', (ctx) => ctx.last[0] + ctx.last[1])
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe(3)
      expect((await engine.getSteps(handle.id)).map((r) => r.name)).toContain('parallel#1')
    })

    it('maxConcurrency bounds the branches in flight', async () => {
      const engine = await s.engine()
      const gauge = inFlight()
      const branch = (i: number) => () => gauge.run(async () => {
        await sleep(4)
        return i
      })
      const wf = workflow(uid()).parallel('bounded', [0, 1, 2, 3, 4, 5].map(branch), { maxConcurrency: 2 })
      expect(await engine.run(wf)).toEqual([0, 1, 2, 3, 4, 5])
      expect(gauge.max).toBe(2)
    })

    it('the first failure aborts the other branches through ctx.signal and fails the node with ParallelError', async () => {
      const engine = await s.engine()
      const boom = new Error('branch 0 broke')
      let otherSawAbort = false
      let afterStarted = false
      const wf = workflow(uid())
        .parallel('fetch', [
          async () => {
            await sleep(2)
            throw boom
          },
          async (ctx) => {
            ctx.signal.addEventListener('abort', () => (otherSawAbort = true))
            await forever(ctx.signal)
          },
        ])
        .step('after', () => {
          afterStarted = true
        })
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(err).toBeInstanceOf(ParallelError)
      expect(err).toMatchObject({ code: 'PARALLEL_FAILED', step: 'fetch' })
      expect(err.errors).toHaveLength(1)
      expect(rootCause(err.errors[0])).toBe(boom)
      expect(otherSawAbort).toBe(true)
      expect(afterStarted).toBe(false)
      expect((await engine.getSteps(handle.id)).find((r) => r.name === 'fetch')).toMatchObject({ status: 'failed' })
    })

    it('ParallelError keeps every real cause (and not the aborts it caused)', async () => {
      const engine = await s.engine()
      const a = new Error('a failed')
      const b = new Error('b failed')
      const wf = workflow(uid()).parallel('fetch', [
        () => {
          throw a
        },
        async () => {
          throw b
        },
        async (ctx) => forever(ctx.signal),
      ])
      const err = await rejectionOf(engine.run(wf))
      expect(err).toBeInstanceOf(ParallelError)
      const causes = (err as ParallelError).errors.map(rootCause)
      expect(causes).toHaveLength(2)
      expect(causes).toEqual(expect.arrayContaining([a, b]))
      expect(err.message).toContain('a failed')
      expect(err.message).toContain('b failed')
    })

    it('a branch that fails for its own reason after the abort keeps that cause too', async () => {
      const engine = await s.engine()
      const first = new Error('first failure')
      const cleanup = new Error('cleanup failed while aborting')
      const wf = workflow(uid()).parallel('fetch', [
        async () => {
          await sleep(1)
          throw first
        },
        async (ctx) => {
          await forever(ctx.signal).catch(() => undefined)
          throw cleanup
        },
      ])
      const err = await rejectionOf(engine.run(wf))
      expect(err).toBeInstanceOf(ParallelError)
      expect((err as ParallelError).errors.map(rootCause)).toEqual([first, cleanup])
    })

    it('a node-level timeout aborts every branch and fails with STEP_TIMEOUT', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const aborted: number[] = []
      const wf = workflow(uid()).parallel(
        'slow',
        [0, 1].map((i) => async (ctx: { signal: AbortSignal }) => {
          ctx.signal.addEventListener('abort', () => aborted.push(i))
          await sleep(60_000)
          return i
        }),
        { timeout: '2s' },
      )
      const handle = await engine.start(wf)
      let settled = false
      const settle = rejectionOf(handle.result()).finally(() => (settled = true))
      await vi.advanceTimersByTimeAsync(1999)
      expect(settled).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      expect(settled).toBe(true)
      const err = await settle
      expect(err.code).toBe('STEP_TIMEOUT')
      expect(errorChain(err).some((e) => e instanceof StepTimeoutError)).toBe(true)
      expect(aborted.sort()).toEqual([0, 1])
    })

    for (const kind of ['parallel', 'race'] as const) {
      it(`after a ${kind} timeout, a branch that later fails for its own reason is neither journaled nor reported`, async () => {
        const engine = await s.engine()
        const failed: string[] = []
        engine.on('step:failed', (e) => failed.push(e.step))
        const branchDone = deferred()
        const branches = [
          async () => {
            await sleep(30) // ignores ctx.signal
            branchDone.resolve()
            throw new Error('late failure of its own')
          },
        ]
        const start = workflow(uid())
        const wf = (kind === 'parallel' ? start.parallel('fetch', branches, { timeout: 5 }) : start.race('fetch', branches, { timeout: 5 }))
          .onError(() => 'fallback')
          .step('after', async (ctx) => {
            await branchDone.promise
            await tick(5)
            return ctx.last
          })
        const handle = await engine.start(wf)
        expect(await handle.result()).toBe('fallback')
        expect(failed).toEqual([])
        expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([
          ['fetch', 'completed'],
          ['after', 'completed'],
        ])
      })
    }
  })

  describe('race', () => {
    it('the first branch to succeed wins and the losers’ signals abort', async () => {
      const engine = await s.engine()
      let loserAborted = false
      const wf = workflow(uid())
        .race('quote', [
          async (ctx) => {
            ctx.signal.addEventListener('abort', () => (loserAborted = true))
            await sleep(50, ctx.signal)
            return 'slow'
          },
          async () => {
            await sleep(2)
            return 'fast'
          },
        ])
        .step('after', (ctx) => ({ last: ctx.last, fromSteps: ctx.steps.quote.output }))
      expect(await engine.run(wf)).toEqual({ last: 'fast', fromSteps: 'fast' })
      expect(loserAborted).toBe(true)
    })

    it('a loser that ignores its signal and fails after the run ended reports nothing after run:completed', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:failed', (e) => events.push(`step:failed ${e.step}`))
      engine.on('step:completed', (e) => events.push(`step:completed ${e.step}`))
      engine.on('run:completed', () => events.push('run:completed'))
      const loserDone = deferred()
      const wf = workflow(uid()).race('quote', [
        async () => 'fast',
        async () => {
          await sleep(20) // ignores ctx.signal
          loserDone.resolve()
          throw new Error('late failure')
        },
      ])
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('fast')
      await loserDone.promise
      await tick(5)
      expect(events).toEqual(['step:completed quote[0]', 'step:completed quote', 'run:completed'])
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([
        ['quote[0]', 'completed'],
        ['quote', 'completed'],
      ])
    })

    it('a loser that fails after the race was won, while the run goes on, is neither journaled nor reported', async () => {
      const engine = await s.engine()
      const failed: string[] = []
      engine.on('step:failed', (e) => failed.push(e.step))
      const loserDone = deferred()
      const wf = workflow(uid())
        .race('quote', [
          async () => 'fast',
          async () => {
            await sleep(5) // ignores ctx.signal
            loserDone.resolve()
            throw new Error('late failure')
          },
        ])
        .step('after', async (ctx) => {
          await loserDone.promise
          await tick(5)
          return ctx.last
        })
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('fast')
      expect(failed).toEqual([])
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([
        ['quote[0]', 'completed'],
        ['quote', 'completed'],
        ['after', 'completed'],
      ])
      expect((await handle.outcome()).summary.steps).toBe(2)
    })

    it('a branch that fails fast does not win over a later success', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).race('quote', [
        () => {
          throw new Error('primary down')
        },
        async () => {
          await sleep(5)
          return 'backup'
        },
      ])
      expect(await engine.run(wf)).toBe('backup')
    })

    it('an object of branches resolves to the winner’s value', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).race('quote', {
        primary: async (ctx) => {
          await sleep(30, ctx.signal)
          return 1
        },
        backup: () => 2,
      })
      expect(await engine.run(wf)).toBe(2)
    })

    it('all branches failing gives a RaceError, an AggregateError with every error', async () => {
      const engine = await s.engine()
      const errs = [new Error('a'), new Error('b'), new Error('c')]
      const wf = workflow(uid()).race('quote', [
        async () => {
          await sleep(3)
          throw errs[0]
        },
        () => {
          throw errs[1]
        },
        async () => {
          throw errs[2]
        },
      ])
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(err).toBeInstanceOf(RaceError)
      expect(err).toBeInstanceOf(AggregateError)
      expect(err.code).toBe('RACE_FAILED')
      expect((err as AggregateError).errors.map(rootCause)).toEqual(errs)
      expect((await engine.getRun(handle.id))?.status).toBe('failed')
    })

    it('two synchronous branches: the first wins, the second does not start; one branch journaled and reported', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:started', (e) => events.push(`started ${e.step}`))
      engine.on('step:completed', (e) => events.push(`completed ${e.step}`))
      const ran: string[] = []
      const wf = workflow(uid())
        .race('quote', [() => (ran.push('a'), 'a'), () => (ran.push('b'), 'b')])
        .step('after', (ctx) => ctx.last)
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('a')
      expect(ran).toEqual(['a'])
      expect(events).toEqual(['started quote', 'started quote[0]', 'completed quote[0]', 'completed quote', 'started after', 'completed after'])
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([
        ['quote[0]', 'completed'],
        ['quote', 'completed'],
        ['after', 'completed'],
      ])
      expect((await handle.outcome()).summary.steps).toBe(2)
    })

    it('two branches that succeed in the same tick: exactly one is journaled and reported, and it is the output', async () => {
      const engine = await s.engine()
      const completed: string[] = []
      engine.on('step:completed', (e) => completed.push(e.step))
      const go = deferred()
      const wf = workflow(uid())
        .race('quote', [async () => (await go.promise, 'a'), async () => (await go.promise, 'b')])
        .step('after', (ctx) => ctx.last)
      const handle = await engine.start(wf)
      await tick(2)
      go.resolve()
      const out = await handle.result()
      await tick(5)
      const branches = completed.filter((n) => n.startsWith('quote['))
      expect(branches).toHaveLength(1)
      expect(out).toBe(branches[0] === 'quote[0]' ? 'a' : 'b')
      const journal = (await engine.getSteps(handle.id)).map((r) => [r.name, r.status])
      expect(journal).toEqual([
        [branches[0], 'completed'],
        ['quote', 'completed'],
        ['after', 'completed'],
      ])
    })

    it('a race resumed after its winner was journaled but not the race: that branch wins, no branch runs again', async () => {
      const store = await s.store()
      const raceWrite = deferred()
      // Engine A "crashes" while it writes the race's own entry: the write never lands.
      const crashing = storeWith(store, {
        recordStep: (runId, rec) => {
          if (rec.kind !== 'race') return store.recordStep(runId, rec)
          raceWrite.resolve()
          return forever()
        },
      })
      let crash = true
      const ran: string[] = []
      const wf = workflow(uid())
        .race('quote', [
          // Slow on engine A (it loses), synchronous on engine B: run again, it would win.
          (ctx) => (ran.push('a'), crash ? forever(ctx.signal) : 'a'),
          async () => (ran.push('b'), await sleep(2), 'b'),
        ])
        .step('after', (ctx) => ctx.last)
      const engineA = await s.engine({ store: crashing })
      const crashed = await engineA.start(wf)
      await raceWrite.promise
      crash = false
      ran.length = 0
      const engineB = await s.engine({ store, workflows: [wf], recover: false })
      const [handle] = await engineB.recover()
      expect(handle?.id).toBe(crashed.id)
      expect(await handle!.result()).toBe('b')
      expect(ran).toEqual([])
      expect((await engineB.getSteps(crashed.id)).map((r) => [r.name, r.status, r.output])).toEqual([
        ['quote[1]', 'completed', 'b'],
        ['quote', 'completed', 'b'],
        ['after', 'completed', 'b'],
      ])
    })

    it('a race whose winner cannot be journaled fails with the store’s error, not a RaceError of the aborted losers', async () => {
      const inner = await s.store()
      const down = new Error('journal unavailable')
      const store = storeWith(inner, {
        recordStep: (runId, rec) => (rec.name === 'quote[1]' ? Promise.reject(down) : inner.recordStep(runId, rec)),
      })
      const engine = await s.engine({ store })
      let stubbornDone = false
      const wf = workflow(uid()).race('quote', [
        (ctx) => forever(ctx.signal),
        async () => 'b',
        async () => {
          await sleep(1000) // ignores ctx.signal: the race does not wait for it
          stubbornDone = true
          return 'c'
        },
      ])
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      // Failed before the branch that ignores its signal ended: the race did not wait for it.
      expect(stubbornDone).toBe(false)
      expect(err).not.toBeInstanceOf(RaceError)
      expect(errorChain(err)).toContain(down)
      expect(errorChain(err).some((e) => (e as { code?: unknown }).code === 'BRANCH_ABORTED')).toBe(false)
    })
  })
}

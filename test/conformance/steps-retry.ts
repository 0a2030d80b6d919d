import { describe, expect, it, vi } from 'vitest'
import { NonRetriableError, StepError, StepTimeoutError, workflow, type EngineEventPayload } from '@stepline/core'
import { deferred, errorChain, forever, rejectionOf, sleep, storeWith, tick, uid, type SuiteContext } from './helpers'

export function stepTests(s: SuiteContext): void {
  describe('step', () => {
    it('passes the payload as ctx.last to the first node and each output to the next, sync and async', async () => {
      const engine = await s.engine()
      const seen: unknown[] = []
      const wf = workflow<{ n: number }>(uid())
        .step('first', (ctx) => {
          seen.push(ctx.last)
          return ctx.payload.n + 1
        })
        .step('second', async (ctx) => {
          seen.push(ctx.last)
          await Promise.resolve()
          return { doubled: ctx.last * 2 }
        })
        .step('third', (ctx) => {
          seen.push(ctx.last)
          return `${ctx.last.doubled}!`
        })
      const out = await engine.run(wf, { n: 4 })
      expect(out).toBe('10!')
      expect(seen).toEqual([{ n: 4 }, 5, { doubled: 10 }])
    })

    it('exposes payload, earlier steps (output, status, attempts) and run identity in ctx', async () => {
      const engine = await s.engine()
      const id = uid()
      let captured: any
      const wf = workflow<{ user: string }>(id)
        .step('a', () => 'A')
        .step('b', async () => ({ b: true }))
        .step('inspect', (ctx) => {
          captured = {
            payload: ctx.payload,
            a: { output: ctx.steps.a.output, status: ctx.steps.a.status, attempts: ctx.steps.a.attempts },
            b: { output: ctx.steps.b.output, status: ctx.steps.b.status, attempts: ctx.steps.b.attempts },
            durationIsNumber: typeof ctx.steps.a.durationMs === 'number',
            run: { id: ctx.run.id, workflowId: ctx.run.workflowId, attempt: ctx.run.attempt },
          }
          return 'ok'
        })
      const handle = await engine.start(wf, { user: 'ada' })
      await handle.result()
      expect(captured).toEqual({
        payload: { user: 'ada' },
        a: { output: 'A', status: 'completed', attempts: 1 },
        b: { output: { b: true }, status: 'completed', attempts: 1 },
        durationIsNumber: true,
        run: { id: handle.id, workflowId: id, attempt: 1 },
      })
    })

    it('journals every step with output, status and attempts, in order, keyed by node id', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .step('a', () => 1)
        .step('b', async () => 2)
      const handle = await engine.start(wf)
      await handle.result()
      const steps = await engine.getSteps(handle.id)
      const plan = wf.plan()
      expect(steps.map((r) => ({ key: r.key, name: r.name, kind: r.kind, status: r.status, output: r.output, attempts: r.attempts }))).toEqual([
        { key: plan.nodes[0]!.id, name: 'a', kind: 'step', status: 'completed', output: 1, attempts: 1 },
        { key: plan.nodes[1]!.id, name: 'b', kind: 'step', status: 'completed', output: 2, attempts: 1 },
      ])
      const run = await engine.getRun(handle.id)
      expect(run).toMatchObject({ status: 'completed', output: 2, workflowId: wf.id })
    })

    it('fails the run with StepError keeping the thrown error as cause', async () => {
      const engine = await s.engine()
      const boom = new Error('boom')
      const wf = workflow(uid())
        .step('ok', () => 1)
        .step('bad', () => {
          throw boom
        })
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(err).toBeInstanceOf(StepError)
      expect(err).toMatchObject({ code: 'STEP_FAILED', step: 'bad', attempts: 1 })
      expect(err.cause).toBe(boom)
      expect((await engine.getRun(handle.id))?.status).toBe('failed')
      const bad = (await engine.getSteps(handle.id)).find((r) => r.name === 'bad')
      expect(bad).toMatchObject({ status: 'failed', attempts: 1 })
      expect(bad?.error?.message).toContain('boom')
    })
  })

  describe('retry', () => {
    it('exhausted retries fail the run with StepError (STEP_FAILED, attempts, cause) after step:retrying events', async () => {
      const engine = await s.engine()
      const retrying: EngineEventPayload<'step:retrying'>[] = []
      engine.on('step:retrying', (e) => retrying.push(e))
      const errors = [new Error('e1'), new Error('e2'), new Error('e3')]
      let calls = 0
      const wf = workflow(uid()).step(
        'flaky',
        () => {
          throw errors[calls++]
        },
        { retry: { attempts: 3, backoff: 'fixed', delay: 1 } },
      )
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(calls).toBe(3)
      expect(err).toBeInstanceOf(StepError)
      expect(err).toMatchObject({ code: 'STEP_FAILED', step: 'flaky', attempts: 3 })
      expect(err.cause).toBe(errors[2])
      expect(retrying.map((e) => ({ step: e.step, attempt: e.attempt, nextAttempt: e.nextAttempt, message: e.error.message, runId: e.runId }))).toEqual([
        { step: 'flaky', attempt: 1, nextAttempt: 2, message: 'e1', runId: handle.id },
        { step: 'flaky', attempt: 2, nextAttempt: 3, message: 'e2', runId: handle.id },
      ])
      const rec = (await engine.getSteps(handle.id)).find((r) => r.name === 'flaky')
      expect(rec).toMatchObject({ status: 'failed', attempts: 3 })
    })

    it('succeeds on the 3rd attempt, with ctx.attempt counting and attempts journaled', async () => {
      const engine = await s.engine()
      const attemptsSeen: number[] = []
      let stepsAttempts: unknown
      const wf = workflow(uid())
        .step(
          'flaky',
          (ctx) => {
            attemptsSeen.push(ctx.attempt)
            if (ctx.attempt < 3) throw new Error(`try ${ctx.attempt}`)
            return 'third time'
          },
          { retry: { attempts: 5, delay: 1 } },
        )
        .step('after', (ctx) => {
          stepsAttempts = ctx.steps.flaky.attempts
          return ctx.last
        })
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('third time')
      expect(attemptsSeen).toEqual([1, 2, 3])
      expect(stepsAttempts).toBe(3)
      const rec = (await engine.getSteps(handle.id)).find((r) => r.name === 'flaky')
      expect(rec).toMatchObject({ status: 'completed', attempts: 3, output: 'third time' })
    })

    it('NonRetriableError stops retrying at once', async () => {
      const engine = await s.engine()
      let calls = 0
      const fatal = new NonRetriableError('order does not exist')
      const wf = workflow(uid()).step(
        'lookup',
        () => {
          calls++
          throw fatal
        },
        { retry: { attempts: 5, delay: 1 } },
      )
      const err = await rejectionOf(engine.run(wf))
      expect(calls).toBe(1)
      expect(err).toMatchObject({ code: 'STEP_FAILED', attempts: 1 })
      expect(err.cause).toBe(fatal)
    })

    it('retryIf returning false stops retrying, and it receives the error', async () => {
      const engine = await s.engine()
      const messages: string[] = []
      let calls = 0
      const wf = workflow(uid()).step(
        'call',
        () => {
          calls++
          throw new Error(calls === 1 ? 'transient' : 'fatal')
        },
        {
          retry: {
            attempts: 5,
            delay: 1,
            retryIf: (e) => {
              messages.push((e as Error).message)
              return (e as Error).message === 'transient'
            },
          },
        },
      )
      const err = await rejectionOf(engine.run(wf))
      expect(calls).toBe(2)
      expect(messages).toEqual(['transient', 'fatal'])
      expect(err).toMatchObject({ code: 'STEP_FAILED', attempts: 2 })
      expect(err.cause.message).toBe('fatal')
    })

    /** Starts a workflow whose step always fails and records when each attempt happened (fake time). */
    async function attemptTimes(retry: Record<string, unknown>): Promise<{ times: number[]; settle: Promise<any> }> {
      vi.useFakeTimers()
      const engine = await s.engine()
      const t0 = Date.now()
      const times: number[] = []
      const wf = workflow(uid()).step(
        'flaky',
        () => {
          times.push(Date.now() - t0)
          throw new Error('no')
        },
        { retry: retry as any },
      )
      const handle = await engine.start(wf)
      const settle = rejectionOf(handle.result())
      await vi.advanceTimersByTimeAsync(0)
      return { times, settle }
    }

    it('fixed backoff waits `delay` before every retry', async () => {
      const { times, settle } = await attemptTimes({ attempts: 3, backoff: 'fixed', delay: '100ms' })
      expect(times).toEqual([0])
      await vi.advanceTimersByTimeAsync(99)
      expect(times).toHaveLength(1)
      await vi.advanceTimersByTimeAsync(1)
      expect(times).toEqual([0, 100])
      await vi.advanceTimersByTimeAsync(99)
      expect(times).toHaveLength(2)
      await vi.advanceTimersByTimeAsync(1)
      expect(times).toEqual([0, 100, 200])
      expect(await settle).toMatchObject({ code: 'STEP_FAILED', attempts: 3 })
    })

    it('exponential backoff doubles the delay per retry', async () => {
      const { times, settle } = await attemptTimes({ attempts: 4, backoff: 'exponential', delay: 100 })
      await vi.advanceTimersByTimeAsync(99)
      expect(times).toEqual([0])
      await vi.advanceTimersByTimeAsync(1)
      expect(times).toEqual([0, 100])
      await vi.advanceTimersByTimeAsync(199)
      expect(times).toHaveLength(2)
      await vi.advanceTimersByTimeAsync(1)
      expect(times).toEqual([0, 100, 300])
      await vi.advanceTimersByTimeAsync(399)
      expect(times).toHaveLength(3)
      await vi.advanceTimersByTimeAsync(1)
      expect(times).toEqual([0, 100, 300, 700])
      expect(await settle).toMatchObject({ attempts: 4 })
    })

    it('maxDelay caps the exponential delay', async () => {
      const { times, settle } = await attemptTimes({ attempts: 4, backoff: 'exponential', delay: 100, maxDelay: '150ms' })
      await vi.advanceTimersByTimeAsync(100)
      expect(times).toEqual([0, 100])
      await vi.advanceTimersByTimeAsync(149)
      expect(times).toHaveLength(2)
      await vi.advanceTimersByTimeAsync(1)
      expect(times).toEqual([0, 100, 250])
      await vi.advanceTimersByTimeAsync(150)
      expect(times).toEqual([0, 100, 250, 400])
      expect(await settle).toMatchObject({ attempts: 4 })
    })

    it('jitter keeps every delay within its bounds', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const delays: Record<string, number[]> = { full: [], half: [] }
      engine.on('step:retrying', (e) => delays[e.step]!.push(e.delayMs))
      const t0 = Date.now()
      const times: number[] = []
      const wf = workflow(uid())
        .step('full', () => {
          throw new Error('x')
        }, { retry: { attempts: 15, backoff: 'fixed', delay: 100, jitter: true } })
        .onError(() => 'go on')
        .step('half', () => {
          times.push(Date.now() - t0)
          throw new Error('y')
        }, { retry: { attempts: 15, backoff: 'exponential', delay: 100, maxDelay: 400, jitter: 0.5 } })
      const handle = await engine.start(wf)
      const settle = rejectionOf(handle.result())
      await vi.runAllTimersAsync()
      await settle
      expect(delays.full).toHaveLength(14)
      expect(delays.half).toHaveLength(14)
      for (const d of delays.full!) {
        expect(d).toBeGreaterThanOrEqual(0)
        expect(d).toBeLessThanOrEqual(100)
      }
      delays.half!.forEach((d, i) => {
        const base = Math.min(100 * 2 ** i, 400)
        expect(d).toBeGreaterThanOrEqual(base / 2)
        expect(d).toBeLessThanOrEqual(base)
      })
      // Randomised, not constant.
      expect(new Set(delays.full!.map(Math.round)).size).toBeGreaterThan(1)
      // The waits really happened: gaps between attempts equal the reported delays.
      const gaps = times.slice(1).map((t, i) => t - times[i]!)
      gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(Math.floor(delays.half![i]!) - 1))
    })

    it('a retryIf that throws fails the step with that error: no retry, journaled failed, step:failed reported', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:started', (e) => events.push(`started ${e.step}`))
      engine.on('step:retrying', (e) => events.push(`retrying ${e.step}`))
      engine.on('step:failed', (e) => events.push(`failed ${e.step}`))
      const bug = new Error('retryIf has a bug')
      const wf = workflow(uid()).step('charge', () => {
        throw new Error('declined')
      }, {
        retry: {
          attempts: 3,
          delay: 1,
          retryIf: () => {
            throw bug
          },
        },
      })
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(err).toBeInstanceOf(StepError)
      expect(err).toMatchObject({ code: 'STEP_FAILED', step: 'charge', attempts: 1 })
      expect(err.cause).toBe(bug)
      expect(events).toEqual(['started charge', 'failed charge'])
      const steps = await engine.getSteps(handle.id)
      expect(steps.map((r) => [r.name, r.status, r.attempts])).toEqual([['charge', 'failed', 1]])
      expect(steps[0]!.error?.message).toContain('retryIf has a bug')
    })
  })

  describe('cache', () => {
    it('a cache.key that throws fails the step without running it: journaled failed, step:failed reported', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:started', (e) => events.push(`started ${e.step}`))
      engine.on('step:failed', (e) => events.push(`failed ${e.step}`))
      const bug = new Error('no currency')
      let ran = 0
      const wf = workflow(uid()).step('rate', () => ++ran, {
        cache: {
          key: (): string => {
            throw bug
          },
        },
      })
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(err).toBeInstanceOf(StepError)
      expect(err).toMatchObject({ code: 'STEP_FAILED', step: 'rate', attempts: 0 })
      expect(err.cause).toBe(bug)
      expect(ran).toBe(0)
      expect(events).toEqual(['started rate', 'failed rate'])
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([['rate', 'failed']])
    })

    it('a cache.key that throws under .onError is recovered like a failed step', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .step('rate', () => 1, {
          cache: {
            key: (): string => {
              throw new Error('no currency')
            },
          },
        })
        .onError((ctx) => `fallback: ${ctx.error.message}`)
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('fallback: no currency')
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status, r.recovered])).toEqual([['rate', 'completed', true]])
    })

    for (const found of [true, false]) {
      it(`a run cancelled while the cache is read (${found ? 'hit' : 'miss'}) neither runs the step nor reports it after run:cancelled`, async () => {
        const inner = await s.store()
        const reading = deferred()
        const release = deferred()
        const store = storeWith(inner, {
          getCache: async () => {
            reading.resolve()
            await release.promise
            return found ? { value: 'cached' } : undefined
          },
        })
        const engine = await s.engine({ store })
        const events: string[] = []
        engine.on('step:completed', (e) => events.push(`step:completed ${e.step}`))
        engine.on('step:failed', (e) => events.push(`step:failed ${e.step}`))
        engine.on('run:cancelled', () => events.push('run:cancelled'))
        let ran = 0
        const wf = workflow(uid()).step('rate', () => ++ran, { cache: { key: () => 'eur' } })
        const handle = await engine.start(wf)
        await reading.promise
        expect(await handle.cancel()).toBe(true)
        release.resolve()
        await tick(10)
        expect(ran).toBe(0)
        expect(events).toEqual(['run:cancelled'])
      })
    }

    for (const how of ['throws', 'rejects'] as const) {
      it(`a cache lookup that ${how} (store error) fails the step without running it: journaled failed, step:failed reported`, async () => {
        const inner = await s.store()
        const down = new Error('cache unavailable')
        const store = storeWith(inner, {
          getCache: () => {
            if (how === 'throws') throw down
            return Promise.reject(down)
          },
        })
        const engine = await s.engine({ store })
        const events: string[] = []
        engine.on('step:started', (e) => events.push(`started ${e.step}`))
        engine.on('step:failed', (e) => events.push(`failed ${e.step}`))
        let ran = 0
        const wf = workflow(uid()).step('rate', () => ++ran, { cache: { key: () => 'eur' } })
        const handle = await engine.start(wf)
        const err = await rejectionOf(handle.result())
        expect(err).toBeInstanceOf(StepError)
        expect(err).toMatchObject({ code: 'STEP_FAILED', step: 'rate', attempts: 0 })
        expect(err.cause).toBe(down)
        expect(ran).toBe(0)
        expect(events).toEqual(['started rate', 'failed rate'])
        expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([['rate', 'failed']])
      })

      it(`a cache save that ${how} (store error) after the step completed: the step and the run complete, a warning says the output was not cached`, async () => {
        const inner = await s.store()
        const full = new Error('disk full')
        const store = storeWith(inner, {
          setCache: () => {
            if (how === 'throws') throw full
            return Promise.reject(full)
          },
        })
        const engine = await s.engine({ store })
        const warnings: string[] = []
        engine.on('log', (e) => e.level === 'warn' && warnings.push(`${e.step}: ${e.message}`))
        const wf = workflow(uid()).step('rate', () => 1.08, { cache: { key: () => 'eur' } }).step('use', (ctx) => ctx.last * 2)
        const handle = await engine.start(wf)
        expect(await handle.result()).toBe(2.16)
        expect(warnings).toEqual(['rate: step "rate": its output was not saved to the cache (disk full); the step completed, and the next run with this key calls it again'])
        expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([['rate', 'completed'], ['use', 'completed']])
      })
    }
  })

  describe('timeout', () => {
    it('a step exceeding `timeout` fails with StepTimeoutError (STEP_TIMEOUT) and its ctx.signal aborts', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      let abortedAt: number | undefined
      let reason: unknown
      const t0 = Date.now()
      const wf = workflow(uid()).step(
        'slow',
        async (ctx) => {
          ctx.signal.addEventListener('abort', () => {
            abortedAt = Date.now() - t0
            reason = ctx.signal.reason
          })
          await sleep(10_000)
          return 'late'
        },
        { timeout: '1s' },
      )
      const handle = await engine.start(wf)
      let settled = false
      const settle = rejectionOf(handle.result()).finally(() => (settled = true))
      await vi.advanceTimersByTimeAsync(999)
      expect(abortedAt).toBeUndefined()
      expect(settled).toBe(false)
      await vi.advanceTimersByTimeAsync(1)
      expect(abortedAt).toBe(1000)
      expect(settled).toBe(true)
      const err = await settle
      expect(err.code).toBe('STEP_TIMEOUT')
      expect(errorChain(err).some((e) => e instanceof StepTimeoutError)).toBe(true)
      expect(reason).toBeInstanceOf(StepTimeoutError)
      expect((await engine.getRun(handle.id))?.status).toBe('failed')
    })

    it('the timeout is per attempt: timed-out attempts are retried', async () => {
      vi.useFakeTimers()
      const engine = await s.engine()
      const t0 = Date.now()
      const starts: number[] = []
      const aborted: boolean[] = []
      const wf = workflow(uid()).step(
        'slow-then-fast',
        async (ctx) => {
          starts.push(Date.now() - t0)
          if (ctx.attempt < 3) {
            try {
              await forever(ctx.signal)
            } finally {
              aborted.push(ctx.signal.aborted)
            }
          }
          return `attempt ${ctx.attempt}`
        },
        { timeout: 500, retry: { attempts: 3, backoff: 'fixed', delay: 100 } },
      )
      const handle = await engine.start(wf)
      const result = handle.result()
      await vi.advanceTimersByTimeAsync(500)
      expect(starts).toEqual([0])
      await vi.advanceTimersByTimeAsync(100)
      expect(starts).toEqual([0, 600])
      await vi.advanceTimersByTimeAsync(600)
      expect(starts).toEqual([0, 600, 1200])
      expect(await result).toBe('attempt 3')
      expect(aborted).toEqual([true, true])
      const rec = (await engine.getSteps(handle.id)).find((r) => r.name === 'slow-then-fast')
      expect(rec).toMatchObject({ status: 'completed', attempts: 3 })
    })
  })
}

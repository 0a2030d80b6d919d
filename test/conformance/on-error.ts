import { describe, expect, it } from 'vitest'
import { ParallelError, RaceError, workflow } from '@stepline/core'
import { deferred, cancelDuringWrite, holdingWrites, rejectionOf, rootCause, sleep, tick, uid, type SuiteContext } from './helpers'

export function onErrorTests(s: SuiteContext): void {
  describe('onError', () => {
    it('node-level: the handler’s value replaces the output, ctx.error is the original error, the run goes on', async () => {
      const engine = await s.engine()
      const boom = new Error('card declined')
      let handlerError: unknown
      let seenInNext: unknown
      const wf = workflow(uid())
        .step('charge', () => {
          throw boom
        })
        .onError((ctx) => {
          handlerError = ctx.error
          return { fallback: true, reason: ctx.error.message }
        })
        .step('next', (ctx) => {
          seenInNext = { last: ctx.last, output: ctx.steps.charge.output, status: ctx.steps.charge.status }
          return 'done'
        })
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('done')
      expect(handlerError).toBe(boom)
      expect(seenInNext).toEqual({
        last: { fallback: true, reason: 'card declined' },
        output: { fallback: true, reason: 'card declined' },
        status: 'completed',
      })
      const rec = (await engine.getSteps(handle.id)).find((r) => r.name === 'charge')
      expect(rec).toMatchObject({ status: 'completed', recovered: true, output: { fallback: true, reason: 'card declined' } })
      expect((await engine.getRun(handle.id))?.status).toBe('completed')
    })

    it('node-level handler is not called when the node succeeds', async () => {
      const engine = await s.engine()
      let called = false
      const wf = workflow(uid())
        .step('fine', () => 'ok')
        .onError(() => ((called = true), 'fallback'))
      expect(await engine.run(wf)).toBe('ok')
      expect(called).toBe(false)
    })

    it('runs after retries are spent', async () => {
      const engine = await s.engine()
      let calls = 0
      const wf = workflow(uid())
        .step('flaky', () => {
          calls++
          throw new Error('nope')
        }, { retry: { attempts: 3, delay: 1 } })
        .onError(() => 'fallback')
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('fallback')
      expect(calls).toBe(3)
      // The journal keeps the attempts the step really made, and that it was recovered.
      const [entry] = await engine.getSteps(handle.id)
      expect(entry).toMatchObject({ name: 'flaky', status: 'completed', recovered: true, attempts: 3, output: 'fallback' })
    })

    it('throwing from the handler fails the run', async () => {
      const engine = await s.engine()
      const rethrown = new Error('handler gave up')
      let afterRan = false
      const wf = workflow(uid())
        .step('charge', () => {
          throw new Error('declined')
        })
        .onError(() => {
          throw rethrown
        })
        .step('after', () => (afterRan = true))
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(err === rethrown || rootCause(err) === rethrown).toBe(true)
      expect(afterRan).toBe(false)
      expect((await engine.getRun(handle.id))?.status).toBe('failed')
      expect((await engine.getSteps(handle.id)).find((r) => r.name === 'charge')?.status).toBe('failed')
    })

    it('a recovered node whose journal write is pending when the run is cancelled reports nothing after run:cancelled', async () => {
      const held = holdingWrites(await s.store(), (rec) => rec.recovered === true)
      const engine = await s.engine({ store: held.store })
      const events: string[] = []
      engine.on('step:completed', (e) => events.push(`step:completed ${e.step}`))
      engine.on('run:cancelled', () => events.push('run:cancelled'))
      const wf = workflow(uid())
        .step('charge', () => {
          throw new Error('declined')
        })
        .onError(() => 'fallback')
        .step('next', () => 1)
      const handle = await engine.start(wf)
      await cancelDuringWrite(handle, held)
      expect(events).toEqual(['run:cancelled'])
    })

    it('a handler that returns after its run was cancelled: its value is discarded, nothing is reported after run:cancelled', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:completed', (e) => events.push(`step:completed ${e.step}`))
      engine.on('run:cancelled', () => events.push('run:cancelled'))
      const handling = deferred()
      const handled = deferred()
      let nextRan = false
      const wf = workflow(uid())
        .step('charge', () => {
          throw new Error('declined')
        })
        .onError(async () => {
          handling.resolve()
          await sleep(10) // ignores ctx.signal
          handled.resolve()
          return 'fallback'
        })
        .step('next', () => (nextRan = true))
      const handle = await engine.start(wf)
      await handling.promise
      await handle.cancel()
      await handled.promise
      await tick(5)
      expect(await rejectionOf(handle.result())).toMatchObject({ code: 'RUN_CANCELLED' })
      expect(events).toEqual(['run:cancelled'])
      expect(nextRan).toBe(false)
      expect(await engine.getSteps(handle.id)).toEqual([])
    })

    it('workflow-level onError runs once with ctx.error when a run fails, and the run stays failed', async () => {
      const engine = await s.engine()
      const calls: { error: Error; runId: string; payload: unknown }[] = []
      const boom = new Error('boom')
      const wf = workflow<{ n: number }>(uid(), {
        onError: (ctx) => {
          calls.push({ error: ctx.error, runId: ctx.run.id, payload: ctx.payload })
          return 'ignored'
        },
      })
        .step('a', () => 1)
        .step('b', () => {
          throw boom
        })
      const handle = await engine.start(wf, { n: 1 })
      const err = await rejectionOf(handle.result())
      expect(err.code).toBe('STEP_FAILED')
      expect(calls).toHaveLength(1)
      expect(calls[0]!.runId).toBe(handle.id)
      expect(calls[0]!.payload).toEqual({ n: 1 })
      expect(calls[0]!.error === err || rootCause(calls[0]!.error) === boom).toBe(true)
      expect((await engine.getRun(handle.id))?.status).toBe('failed')

      // And not for a run that succeeds.
      const ok = workflow(uid(), { onError: () => calls.push({} as never) }).step('a', () => 1)
      await engine.run(ok)
      expect(calls).toHaveLength(1)
    })

    it('after parallel: recovers a ParallelError', async () => {
      const engine = await s.engine()
      let seen: unknown
      const wf = workflow(uid())
        .parallel('fetch', [() => 1, async () => {
          await sleep(1)
          throw new Error('branch broke')
        }])
        .onError((ctx) => {
          seen = ctx.error
          return [0, 0] as [number, number]
        })
        .step('after', (ctx) => ({ last: ctx.last, output: ctx.steps.fetch.output }))
      expect(await engine.run(wf)).toEqual({ last: [0, 0], output: [0, 0] })
      expect(seen).toBeInstanceOf(ParallelError)
    })

    it('after race: recovers a RaceError', async () => {
      const engine = await s.engine()
      let seen: unknown
      const wf = workflow(uid())
        .race('quote', [() => {
          throw new Error('a')
        }, async () => {
          throw new Error('b')
        }])
        .onError((ctx) => {
          seen = ctx.error
          return { fallback: true }
        })
      expect(await engine.run(wf)).toEqual({ fallback: true })
      expect(seen).toBeInstanceOf(RaceError)
    })

    it('after an .if(): ctx.last in the handler is the branch node’s input, not an output from inside the branch', async () => {
      const engine = await s.engine()
      let seen: unknown
      const wf = workflow(uid())
        .step('price', () => ({ total: 5000 }))
        .if('large', (ctx) => ctx.last.total > 1000)
        .step('review', () => 'reviewed')
        .step('approve', (): string => {
          throw new Error('approver away')
        })
        .endIf()
        .onError((ctx) => {
          seen = ctx.last
          return 'fallback'
        })
      expect(await engine.run(wf)).toBe('fallback')
      expect(seen).toEqual({ total: 5000 })
    })

    it('after forEach: recovers an item failure', async () => {
      const engine = await s.engine()
      let message = ''
      const wf = workflow(uid())
        .forEach('each', () => [1, 2], (item, flow) =>
          flow.step('one', () => {
            if (item === 2) throw new Error('item broke')
            return item
          }),
        )
        .onError((ctx) => {
          message = ctx.error.message
          return [] as number[]
        })
        .step('after', (ctx) => ({ last: ctx.last, output: ctx.steps.each.output }))
      expect(await engine.run(wf)).toEqual({ last: [], output: [] })
      expect(message).toContain('item broke')
    })
  })
}

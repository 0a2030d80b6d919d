import { describe, expect, it, vi } from 'vitest'
import { workflow, type EngineEventPayload } from '@stepline/core'
import { deferred, cancelDuringWrite, holdingWrites, forever, rejectionOf, sleep, tick, uid, type SuiteContext } from './helpers'

export function branchTests(s: SuiteContext): void {
  /** The workflow of the DESIGN example, with every branch recording that it ran. */
  function tiers(ran: string[], conditionsEvaluated: string[] = []) {
    return workflow<{ total: number }>(uid())
      .step('combine', (ctx) => ({ total: ctx.payload.total }))
      .if('large', (ctx) => {
        conditionsEvaluated.push('large')
        return ctx.last.total > 1000
      })
      .step('review', (ctx) => {
        ran.push('review')
        return `review ${ctx.last.total}`
      })
      .elseIf('medium', (ctx) => {
        conditionsEvaluated.push('medium')
        return ctx.last.total > 100
      })
      .step('light-review', async (ctx) => {
        ran.push('light-review')
        await sleep(1)
        return `light ${ctx.last.total}`
      })
      .elseIf('positive', (ctx) => {
        conditionsEvaluated.push('positive')
        return ctx.last.total > 0
      })
      .step('tiny', () => {
        ran.push('tiny')
        return 'tiny'
      })
      .else()
      .step('auto-approve', () => {
        ran.push('auto-approve')
        return 'auto'
      })
      .endIf()
      .step('after', (ctx) => ({ last: ctx.last, skipped: ctx.steps.review.status }))
  }

  describe('if / elseIf / else / endIf', () => {
    it('runs only the first true condition’s branch; ctx.last after endIf is its output', async () => {
      const engine = await s.engine()
      const ran: string[] = []
      const evaluated: string[] = []
      const wf = tiers(ran, evaluated)
      // 500 makes both `medium` and `positive` true: only the first one counts.
      expect(await engine.run(wf, { total: 500 })).toEqual({ last: 'light 500', skipped: 'skipped' })
      expect(ran).toEqual(['light-review'])
      expect(evaluated).toEqual(['large', 'medium'])
    })

    it('journals the steps of branches not taken as skipped, with step:skipped events', async () => {
      const engine = await s.engine()
      const skippedEvents: EngineEventPayload<'step:skipped'>[] = []
      engine.on('step:skipped', (e) => skippedEvents.push(e))
      const wf = tiers([])
      const handle = await engine.start(wf, { total: 5000 })
      expect(await handle.result()).toEqual({ last: 'review 5000', skipped: 'completed' })
      const steps = await engine.getSteps(handle.id)
      const status = Object.fromEntries(steps.filter((r) => r.kind === 'step').map((r) => [r.name, r.status]))
      expect(status).toEqual({
        combine: 'completed',
        review: 'completed',
        'light-review': 'skipped',
        tiny: 'skipped',
        'auto-approve': 'skipped',
        after: 'completed',
      })
      expect(skippedEvents.map((e) => e.step).sort()).toEqual(['auto-approve', 'light-review', 'tiny'])
      expect(skippedEvents.every((e) => e.runId === handle.id)).toBe(true)
    })

    it('takes .else() when no condition is true', async () => {
      const engine = await s.engine()
      const ran: string[] = []
      expect(await engine.run(tiers(ran), { total: -1 })).toEqual({ last: 'auto', skipped: 'skipped' })
      expect(ran).toEqual(['auto-approve'])
    })

    it('without .else(), when no branch is taken, the previous output passes through', async () => {
      const engine = await s.engine()
      let ran = false
      const wf = workflow(uid())
        .step('value', () => ({ v: 1 }))
        .if('never', () => false)
        .step('inside', () => {
          ran = true
          return 'inside'
        })
        .endIf()
        .step('after', (ctx) => ctx.last)
      const handle = await engine.start(wf)
      expect(await handle.result()).toEqual({ v: 1 })
      expect(ran).toBe(false)
      expect((await engine.getSteps(handle.id)).find((r) => r.name === 'inside')?.status).toBe('skipped')
    })

    it('nested ifs: the inner choice runs inside the taken outer branch; the other outer branch is skipped entirely', async () => {
      const engine = await s.engine()
      const ran: string[] = []
      const wf = workflow<{ a: boolean; b: boolean }>(uid())
        .if('outer', (ctx) => ctx.payload.a)
        .if('inner', (ctx) => ctx.payload.b)
        .step('a-and-b', () => (ran.push('a-and-b'), 'ab'))
        .else()
        .step('a-not-b', () => (ran.push('a-not-b'), 'a!b'))
        .endIf()
        .else()
        .if('inner2', () => true)
        .step('not-a', () => (ran.push('not-a'), '!a'))
        .endIf()
        .endIf()
        .step('after', (ctx) => ctx.last)
      const handle = await engine.start(wf, { a: true, b: false })
      expect(await handle.result()).toBe('a!b')
      expect(ran).toEqual(['a-not-b'])
      const status = Object.fromEntries((await engine.getSteps(handle.id)).filter((r) => r.kind === 'step').map((r) => [r.name, r.status]))
      expect(status).toMatchObject({ 'a-and-b': 'skipped', 'a-not-b': 'completed', 'not-a': 'skipped', after: 'completed' })

      ran.length = 0
      expect(await engine.run(wf, { a: false, b: true })).toBe('!a')
      expect(ran).toEqual(['not-a'])
    })

    it('awaits async conditions', async () => {
      const engine = await s.engine()
      const wf = workflow<{ n: number }>(uid())
        .if('slow-no', async () => {
          await sleep(2)
          return false
        })
        .step('no', () => 'no')
        .elseIf('slow-yes', async (ctx) => {
          await sleep(1)
          return ctx.payload.n === 1
        })
        .step('yes', () => 'yes')
        .endIf()
      expect(await engine.run(wf, { n: 1 })).toBe('yes')
      expect(await engine.run(wf, { n: 2 })).toEqual({ n: 2 })
    })
  })

  describe('if: a run cancelled while a skipped step is journaled', () => {
    it('a skipped step whose journal write is pending when the run is cancelled reports nothing after run:cancelled', async () => {
      const held = holdingWrites(await s.store(), (rec) => rec.status === 'skipped')
      const engine = await s.engine({ store: held.store })
      const events: string[] = []
      engine.on('step:skipped', (e) => events.push(`step:skipped ${e.step}`))
      engine.on('step:completed', (e) => events.push(`step:completed ${e.step}`))
      engine.on('run:cancelled', () => events.push('run:cancelled'))
      const wf = workflow(uid())
        .if('big', () => false)
        .step('review', () => 'reviewed')
        .step('second', () => 'second')
        .endIf()
        .step('next', () => 1)
      const handle = await engine.start(wf)
      await cancelDuringWrite(handle, held)
      expect(events).toEqual(['run:cancelled'])
    })
  })

  describe('if: a condition that throws', () => {
    it('fails the .if() node: journaled failed, step:failed reported, no case runs and nothing is skipped', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:failed', (e) => events.push(`failed ${e.step}`))
      engine.on('step:skipped', (e) => events.push(`skipped ${e.step}`))
      const bug = new Error('condition bug')
      const ran: string[] = []
      const wf = workflow(uid())
        .step('first', () => 1)
        .if('big', () => false)
        .step('review', () => ran.push('review'))
        .elseIf('medium', (): boolean => {
          throw bug
        })
        .step('light', () => ran.push('light'))
        .else()
        .step('auto', () => ran.push('auto'))
        .endIf()
      const handle = await engine.start(wf)
      expect(await rejectionOf(handle.result())).toBe(bug)
      expect(ran).toEqual([])
      expect(events).toEqual(['failed big'])
      const steps = await engine.getSteps(handle.id)
      expect(steps.map((r) => [r.name, r.kind, r.status])).toEqual([
        ['first', 'step', 'completed'],
        ['big', 'branch', 'failed'],
      ])
      expect(steps[1]!.error?.message).toBe('condition bug')
    })

    it('an async condition that rejects fails the node too, and .onError recovers it', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .if('big', async (): Promise<boolean> => {
          throw new Error('lookup down')
        })
        .step('review', () => 'review')
        .endIf()
        .onError((ctx) => `recovered: ${ctx.error.message}`)
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('recovered: lookup down')
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status, r.recovered])).toEqual([['big', 'completed', true]])
    })
  })

  describe('if: a step that fails inside the taken case', () => {
    it('fails the .if() node too: journaled failed with the case’s error after the step, step:failed for both in that order', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:failed', (e) => events.push(`failed ${e.step} ${e.error.message}`))
      engine.on('step:completed', (e) => events.push(`completed ${e.step}`))
      const wf = workflow(uid())
        .step('first', () => 1)
        .if('big', () => true)
        .step('charge', (): number => {
          throw new Error('card declined')
        })
        .step('ship', () => 'shipped')
        .else()
        .step('auto', () => 'auto')
        .endIf()
        .step('after', () => 'after')
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(err).toMatchObject({ code: 'STEP_FAILED', step: 'charge' })
      const steps = await engine.getSteps(handle.id)
      expect(steps.filter((r) => r.kind !== 'decision').map((r) => [r.name, r.kind, r.status])).toEqual([
        ['first', 'step', 'completed'],
        ['auto', 'step', 'skipped'],
        ['charge', 'step', 'failed'],
        ['big', 'branch', 'failed'],
      ])
      expect(steps.find((r) => r.name === 'charge')!.error?.message).toBe('card declined')
      // The node fails with the error its case failed with, the one the run fails with.
      expect(steps.find((r) => r.kind === 'branch')!.error).toMatchObject({ message: err.message, code: 'STEP_FAILED' })
      expect(events).toEqual(['completed first', 'failed charge card declined', `failed big ${err.message}`])
    })

    it('nested .if()s: the step, then the inner .if(), then the outer .if() are journaled failed', async () => {
      const engine = await s.engine()
      const failed: string[] = []
      engine.on('step:failed', (e) => failed.push(e.step))
      const wf = workflow(uid())
        .if('outer', () => true)
        .if('inner', () => true)
        .step('deep', async (): Promise<number> => {
          await sleep(1)
          throw new Error('deep failure')
        })
        .endIf()
        .endIf()
      const handle = await engine.start(wf)
      expect(await rejectionOf(handle.result())).toMatchObject({ step: 'deep' })
      expect(failed).toEqual(['deep', 'inner', 'outer'])
      const steps = await engine.getSteps(handle.id)
      expect(steps.filter((r) => r.status === 'failed').map((r) => r.name)).toEqual(['deep', 'inner', 'outer'])
    })

    it('.onError on the .if() recovers it: journaled completed and recovered with the case’s error, no step:failed for the .if()', async () => {
      const engine = await s.engine()
      const failed: string[] = []
      const completed: [string, boolean | undefined][] = []
      engine.on('step:failed', (e) => failed.push(e.step))
      engine.on('step:completed', (e) => completed.push([e.step, e.recovered]))
      const wf = workflow(uid())
        .if('big', () => true)
        .step('charge', (): string => {
          throw new Error('card declined')
        })
        .endIf()
        .onError((ctx) => `recovered: ${(ctx.error.cause as Error).message}`)
        .step('after', (ctx) => ctx.last)
      const handle = await engine.start(wf)
      expect(await handle.result()).toBe('recovered: card declined')
      expect(failed).toEqual(['charge'])
      expect(completed).toEqual([['big', true], ['after', undefined]])
      const steps = (await engine.getSteps(handle.id)).filter((r) => r.kind !== 'decision')
      expect(steps.map((r) => [r.name, r.status, r.recovered])).toEqual([
        ['charge', 'failed', undefined],
        ['big', 'completed', true],
        ['after', 'completed', undefined],
      ])
      expect(steps[1]!.error).toMatchObject({ code: 'STEP_FAILED' })
    })

    it('a case that parks (waitForEvent) writes no failed entry for the .if(); the resumed run completes it', async () => {
      const engine = await s.engine()
      const failed: string[] = []
      engine.on('step:failed', (e) => failed.push(e.step))
      const wf = workflow(uid())
        .if('needs-approval', () => true)
        .waitForEvent('approval')
        .step('ship', (ctx) => `shipped ${String(ctx.last)}`)
        .endIf()
      const handle = await engine.start(wf)
      await vi.waitFor(async () => expect((await engine.getRun(handle.id))?.status).toBe('waiting'))
      expect((await engine.getSteps(handle.id)).filter((r) => r.status === 'failed')).toEqual([])
      await engine.send(handle.id, 'approval', 'ok')
      expect(await handle.result()).toBe('shipped ok')
      expect(failed).toEqual([])
      const steps = (await engine.getSteps(handle.id)).filter((r) => r.kind !== 'decision')
      expect(steps.map((r) => [r.name, r.status])).toEqual([
        ['approval', 'completed'],
        ['ship', 'completed'],
        ['needs-approval', 'completed'],
      ])
    })

    it('a run cancelled while a case runs writes no failed entry and reports no step:failed for the .if()', async () => {
      const engine = await s.engine()
      const failed: string[] = []
      engine.on('step:failed', (e) => failed.push(e.step))
      const entered = deferred()
      const wf = workflow(uid())
        .if('big', () => true)
        .step('waits', async (ctx) => {
          entered.resolve()
          await forever(ctx.signal)
        })
        .endIf()
      const handle = await engine.start(wf)
      await entered.promise
      expect(await handle.cancel('withdrawn')).toBe(true)
      expect(await rejectionOf(handle.result())).toMatchObject({ code: 'RUN_CANCELLED' })
      await tick(10)
      expect(failed).toEqual([])
      expect((await engine.getSteps(handle.id)).filter((r) => r.status === 'failed')).toEqual([])
    })
  })

  describe('if / else on a resumed run', () => {
    /**
     * A workflow whose step `hang` never ends on the first engine (a crash) and returns on the
     * second; `after` reads what the branches left in ctx.steps.
     */
    function crashing(hangAt: 'inside' | 'after') {
      const entered = deferred()
      let crash = true
      const hang = async (): Promise<string> => {
        if (crash) {
          entered.resolve()
          await forever()
        }
        return 'resumed'
      }
      const wf = workflow<{ big: boolean }>(uid())
        .if('outer', (ctx) => ctx.payload.big)
        .if('inner', () => true)
        .step('deep', () => 'deep ran')
        .endIf()
        .step('big', () => 'big ran')
        .step('hang-inside', () => (hangAt === 'inside' ? hang() : 'no hang'))
        .else()
        .if('inner-small', () => true)
        .step('deep-small', () => 'deep-small ran')
        .endIf()
        .step('small', () => 'small ran')
        .endIf()
        .step('hang-after', () => (hangAt === 'after' ? hang() : 'no hang'))
        .step('after', (ctx) => ({
          deep: [ctx.steps.deep?.status, ctx.steps.deep?.output],
          big: [ctx.steps.big?.status, ctx.steps.big?.output],
          small: [ctx.steps.small?.status, ctx.steps.small?.output],
          deepSmall: ctx.steps['deep-small']?.status,
        }))
      return { wf, entered: entered.promise, resume: () => (crash = false) }
    }

    const expected = {
      deep: ['completed', 'deep ran'],
      big: ['completed', 'big ran'],
      small: ['skipped', undefined],
      deepSmall: 'skipped',
    }

    /** Crashes the run at `where`, recovers it in a second engine: the result it then reaches. */
    async function crashAndRecover(where: Parameters<typeof crashing>[0]): Promise<unknown> {
      const store = await s.store()
      const { wf, entered, resume } = crashing(where)
      const engineA = await s.engine({ store })
      const crashed = await engineA.start(wf, { big: true })
      await entered
      resume()
      const engineB = await s.engine({ store, workflows: [wf], recover: false })
      const [handle] = await engineB.recover()
      expect(handle?.id).toBe(crashed.id)
      return handle!.result()
    }

    it('after a finished .if(), ctx.steps still has the steps of the taken and the skipped branches', async () => {
      expect(await crashAndRecover('after')).toEqual(expected)
    })

    it('resumed inside a taken branch, ctx.steps has the skipped branch’s steps (nested ones too)', async () => {
      expect(await crashAndRecover('inside')).toEqual(expected)
    })
  })
}

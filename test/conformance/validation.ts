import { describe, expect, it } from 'vitest'
import { type } from 'arktype'
import * as v from 'valibot'
import { z } from 'zod'
import { ValidationError, workflow, type Engine } from '@stepline/core'
import { pathOf, rejectionOf, uid, type SuiteContext } from './helpers'

export function validationTests(s: SuiteContext): void {
  /** Starts `wf` with a bad payload and checks the error and that no run exists. */
  async function expectRejected(engine: Engine, wf: any, payload: unknown, paths: PropertyKey[][]): Promise<ValidationError> {
    let stepRan = false
    const withStep = wf.step('never', () => (stepRan = true))
    const err = await rejectionOf(engine.start(withStep, payload))
    expect(err).toBeInstanceOf(ValidationError)
    expect(err.code).toBe('VALIDATION_FAILED')
    const issues = (err as ValidationError).issues
    expect(issues.map((i) => pathOf(i.path)).sort()).toEqual(paths.sort())
    for (const i of issues) expect(typeof i.message).toBe('string')
    for (const p of paths) expect(err.message).toContain(p.join('.'))
    expect((await engine.listRuns()).filter((r) => r.workflowId === wf.id)).toEqual([])
    expect(stepRan).toBe(false)
    return err
  }

  describe('input validation (Standard Schema)', () => {
    it('zod 4: an invalid payload throws ValidationError listing every issue with its path; no run is created', async () => {
      const engine = await s.engine()
      const schema = z.object({ name: z.string(), age: z.number().min(0), address: z.object({ zip: z.string() }) })
      const wf = workflow(uid(), { input: schema })
      await expectRejected(engine, wf, { name: 1, age: -1, address: { zip: 5 } }, [['name'], ['age'], ['address', 'zip']])
    })

    it('valibot: an invalid payload throws ValidationError with every issue; no run is created', async () => {
      const engine = await s.engine()
      const schema = v.object({ name: v.string(), age: v.pipe(v.number(), v.minValue(0)) })
      const wf = workflow(uid(), { input: schema })
      await expectRejected(engine, wf, { name: 1, age: -1 }, [['name'], ['age']])
    })

    it('arktype: an invalid payload throws ValidationError with every issue; no run is created', async () => {
      const engine = await s.engine()
      const schema = type({ name: 'string', age: 'number >= 0' })
      const wf = workflow(uid(), { input: schema })
      await expectRejected(engine, wf, { name: 1, age: -1 }, [['name'], ['age']])
    })

    it('zod 4: ctx.payload is the parsed value (defaults and transforms applied)', async () => {
      const engine = await s.engine()
      const schema = z.object({ email: z.string().transform((e) => e.toLowerCase()), qty: z.number().default(1) })
      const wf = workflow(uid(), { input: schema }).step('read', (ctx) => ({ payload: ctx.payload, last: ctx.last }))
      const handle = await engine.start(wf, { email: 'ADA@Example.COM' } as any)
      expect(await handle.result()).toEqual({ payload: { email: 'ada@example.com', qty: 1 }, last: { email: 'ada@example.com', qty: 1 } })
      expect((await engine.getRun(handle.id))?.payload).toEqual({ email: 'ada@example.com', qty: 1 })
    })

    it('valibot and arktype: ctx.payload is the parsed value', async () => {
      const engine = await s.engine()
      const vb = workflow(uid(), { input: v.object({ n: v.optional(v.number(), 5) }) }).step('read', (ctx) => ctx.payload)
      expect(await engine.run(vb, {} as any)).toEqual({ n: 5 })
      const ak = workflow(uid(), { input: type({ n: 'string.numeric.parse' }) }).step('read', (ctx) => ctx.payload)
      expect(await engine.run(ak, { n: '42' } as any)).toEqual({ n: 42 })
    })
  })
}

import { workflow, type inferInput, type inferOutput, type inferSteps } from '@stepline/core'
import { expectTypeOf } from 'vitest'

const wf = workflow<{ id: string }>('types')
  .parallel('both', [() => 1, async () => 'a'])
  .step('tuple', (ctx) => {
    expectTypeOf(ctx.last).toEqualTypeOf<[number, string]>()
    return ctx.last
  })
  .parallel('obj', { n: () => 1, s: () => 'a' })
  .step('object', (ctx) => {
    expectTypeOf(ctx.last).toEqualTypeOf<{ n: number; s: string }>()
    return ctx.last
  })
  .race('first', [() => 1, async () => 'a'])
  .step('union', (ctx) => {
    expectTypeOf(ctx.last).toEqualTypeOf<number | string>()
    return [1, 2, 3]
  })
  .forEach('each', (ctx) => ctx.last, (n, flow) => flow.step('double', () => n * 2))
  .step('array', (ctx) => {
    expectTypeOf(ctx.last).toEqualTypeOf<number[]>()
    return ctx.last.length > 1
  })
  .if('big', (ctx) => ctx.last)
    .step('inside', () => 'yes' as const)
  .endIf()
  .step('after', (ctx) => {
    expectTypeOf(ctx.last).toEqualTypeOf<'yes' | boolean>()
    expectTypeOf(ctx.steps.inside.output).toEqualTypeOf<'yes' | undefined>()
    return null
  })

expectTypeOf<inferInput<typeof wf>>().toEqualTypeOf<{ id: string }>()
expectTypeOf<inferOutput<typeof wf>>().toEqualTypeOf<null>()
expectTypeOf<inferSteps<typeof wf>['both']['output']>().toEqualTypeOf<[number, string]>()

// Names are unique across the whole workflow; a second use is a type error (and a PlanError).
// @ts-expect-error the name "tuple" is already used in this workflow
wf.step('tuple', () => 0)
// Generated names are used names too: the branches of "both" are "both[0]" and "both[1]".
// @ts-expect-error the name "both[0]" is already used in this workflow
wf.step('both[0]', () => 0)

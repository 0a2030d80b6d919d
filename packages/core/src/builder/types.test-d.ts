import { describe, expectTypeOf, test } from 'vitest'
import { type } from 'arktype'
import * as v from 'valibot'
import { z } from 'zod'
import { cpu, createEngine, workflow, type inferInput, type inferOutput, type inferSteps } from '@stepline/core'
import type { AnyWorkflow, StepInfo } from './types'

interface Order {
  id: string
  total: number
}

const sleepMs = (n: number): Promise<number> => new Promise((resolve) => setTimeout(() => resolve(n), 1))

describe('payload', () => {
  test('typed from the generic', () => {
    workflow<Order>('w').step('a', (ctx) => {
      expectTypeOf(ctx.payload).toEqualTypeOf<Order>()
      return null
    })
  })

  test('typed from a zod 4 input schema', () => {
    const wf = workflow('w', { input: z.object({ id: z.string(), total: z.number(), note: z.string().optional() }) })
    wf.step('a', (ctx) => {
      expectTypeOf(ctx.payload).toEqualTypeOf<{ id: string; total: number; note?: string | undefined }>()
      expectTypeOf(ctx.last).toEqualTypeOf<{ id: string; total: number; note?: string | undefined }>()
      return null
    })
    expectTypeOf<inferInput<typeof wf>>().toEqualTypeOf<{ id: string; total: number; note?: string | undefined }>()
  })

  test('typed from valibot and arktype schemas (no "excessively deep" instantiation)', () => {
    workflow('v', { input: v.object({ orderId: v.string() }) }).step('a', (ctx) => {
      expectTypeOf(ctx.payload).toEqualTypeOf<{ orderId: string }>()
      return null
    })
    workflow('a', { input: type({ orderId: 'string' }), timeout: '1m' }).step('a', (ctx) => {
      expectTypeOf(ctx.payload).toEqualTypeOf<{ orderId: string }>()
      return null
    })
  })

  test('the workflow onError option sees the schema payload', () => {
    workflow('w', {
      input: z.object({ id: z.string() }),
      onError: (ctx) => {
        expectTypeOf(ctx.payload).toEqualTypeOf<{ id: string }>()
        expectTypeOf(ctx.error).toEqualTypeOf<Error>()
      },
    })
  })

  test('unknown without a generic or schema', () => {
    workflow('w').step('a', (ctx) => {
      expectTypeOf(ctx.payload).toBeUnknown()
      return null
    })
  })

  test('reading a property the payload does not have is an error', () => {
    workflow<Order>('w').step('a', (ctx) => {
      // @ts-expect-error `nope` is not on Order
      return ctx.payload.nope
    })
  })
})

describe('ctx.last', () => {
  test('is the payload for the first step', () => {
    workflow<Order>('w').step('a', (ctx) => {
      expectTypeOf(ctx.last).toEqualTypeOf<Order>()
      return 1
    })
  })

  test('is the previous sync step output', () => {
    workflow<Order>('w')
      .step('a', (ctx) => ctx.payload.total)
      .step('b', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number>()
        return String(ctx.last)
      })
      .step('c', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<string>()
        return null
      })
  })

  test('is the previous async step output, awaited', () => {
    workflow<Order>('w')
      .step('a', async (ctx) => ({ doubled: ctx.payload.total * 2 }))
      .step('b', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<{ doubled: number }>()
        return null
      })
  })

  test('a wrong type for last is an error', () => {
    workflow<Order>('w')
      .step('a', () => 1)
      .step('b', (ctx) => {
        // @ts-expect-error last is a number
        const s: string = ctx.last
        return s
      })
  })
})

describe('ctx.steps', () => {
  test('holds every earlier named step with its output', () => {
    workflow<Order>('w')
      .step('a', () => 1)
      .step('b', async () => 'two')
      .step('c', (ctx) => {
        expectTypeOf(ctx.steps.a.output).toEqualTypeOf<number>()
        expectTypeOf(ctx.steps.b.output).toEqualTypeOf<string>()
        expectTypeOf(ctx.steps.a).toEqualTypeOf<StepInfo<number>>()
        expectTypeOf(ctx.steps.a.attempts).toEqualTypeOf<number>()
        expectTypeOf(ctx.steps.a.durationMs).toEqualTypeOf<number>()
        return null
      })
  })

  test('unknown step names are errors', () => {
    workflow<Order>('w')
      .step('a', () => 1)
      .step('b', (ctx) => {
        // @ts-expect-error no step "zzz"
        return ctx.steps.zzz
      })
  })

  test('a later step is not visible to an earlier one', () => {
    workflow('w')
      .step('a', (ctx) => {
        // @ts-expect-error "b" comes later
        return ctx.steps.b
      })
      .step('b', () => 1)
  })

  test('inferSteps gives the steps at the end', () => {
    const wf = workflow('w')
      .step('a', () => 1)
      .step('b', () => 'x')
    expectTypeOf<inferSteps<typeof wf>>().toEqualTypeOf<{ a: StepInfo<number>; b: StepInfo<string> }>()
  })
})

describe('parallel', () => {
  test('an array gives a tuple, async branches awaited', () => {
    workflow<Order>('w')
      .parallel([(ctx) => ctx.payload.total, async (ctx) => ctx.payload.id, () => sleepMs(1).then(() => true as const)])
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<[number, string, true]>()
        return null
      })
  })

  test('an object gives an object', () => {
    workflow<Order>('w')
      .parallel({ user: async () => ({ name: 'Ada' }), count: () => 3 })
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<{ user: { name: string }; count: number }>()
        return null
      })
  })

  test('branches see ctx typed from the chain', () => {
    workflow<Order>('w')
      .step('a', () => 'x')
      .parallel([
        (ctx) => {
          expectTypeOf(ctx.last).toEqualTypeOf<string>()
          expectTypeOf(ctx.steps.a.output).toEqualTypeOf<string>()
          return 1
        },
      ])
  })

  test('a named parallel is added to ctx.steps', () => {
    workflow<Order>('w')
      .parallel('fetch', [() => 1, async () => 'two'])
      .step('after', (ctx) => {
        expectTypeOf(ctx.steps.fetch.output).toEqualTypeOf<[number, string]>()
        expectTypeOf(ctx.last).toEqualTypeOf<[number, string]>()
        return null
      })
  })

  test('an unnamed parallel is not in ctx.steps', () => {
    workflow('w')
      .parallel([() => 1])
      .step('after', (ctx) => {
        expectTypeOf(ctx.steps).toEqualTypeOf<{}>()
        return null
      })
  })
})

describe('race', () => {
  test('gives the union of its branches', () => {
    workflow<Order>('w')
      .race([async () => 1, () => 'two'])
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number | string>()
        return null
      })
  })

  test('object form and named race', () => {
    workflow<Order>('w')
      .race('quote', { primary: async () => ({ price: 1 }), backup: async () => null })
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<{ price: number } | null>()
        expectTypeOf(ctx.steps.quote.output).toEqualTypeOf<{ price: number } | null>()
        return null
      })
  })
})

describe('if / elseIf / else / endIf', () => {
  test('after endIf, last is the union of the branches when there is an else', () => {
    workflow<Order>('w')
      .step('n', () => 1)
      .if('big', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number>()
        return ctx.last > 10
      })
      .step('review', async () => 'reviewed' as const)
      .elseIf('medium', (ctx) => {
        // each condition sees the output from before the .if()
        expectTypeOf(ctx.last).toEqualTypeOf<number>()
        return ctx.last > 5
      })
      .step('light', () => true)
      .else()
      .step('auto', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number>()
        return { auto: true }
      })
      .endIf()
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<'reviewed' | boolean | { auto: boolean }>()
        return null
      })
  })

  test('without else, the pre-if type joins the union', () => {
    workflow<Order>('w')
      .step('n', () => 1)
      .if('big', (ctx) => ctx.last > 10)
      .step('review', () => 'reviewed')
      .endIf()
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<string | number>()
        return null
      })
  })

  test('a branch step sees the pre-if output as last', () => {
    workflow<Order>('w')
      .step('n', () => 'str')
      .if('big', () => true)
      .step('inside', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<string>()
        return 1
      })
      .endIf()
  })

  test('an .elseIf() condition sees only the steps from before the .if()', () => {
    // Conditions run before any branch does: the earlier branches' steps are not in ctx.steps yet.
    workflow<Order>('w')
      .step('n', () => 1)
      .if('big', () => false)
      .step('review', () => 'r')
      .elseIf('medium', (ctx) => {
        expectTypeOf(ctx.steps).toEqualTypeOf<{ n: StepInfo<number> }>()
        // @ts-expect-error "review" has not run or been skipped when this condition is called
        void ctx.steps.review
        return true
      })
      .step('light', (ctx) => {
        // Inside the branch the skipped ones are journaled: `review` is there (output undefined).
        expectTypeOf(ctx.steps.review.output).toEqualTypeOf<string | undefined>()
        return 'l'
      })
      .endIf()
  })

  test('steps declared inside branches have output T | undefined', () => {
    workflow<Order>('w')
      .step('n', () => 1)
      .if('big', () => true)
      .step('review', () => 'r')
      .parallel('both', [() => 1])
      .else()
      .step('auto', () => true)
      .endIf()
      .step('after', (ctx) => {
        expectTypeOf(ctx.steps.n.output).toEqualTypeOf<number>()
        expectTypeOf(ctx.steps.review.output).toEqualTypeOf<string | undefined>()
        expectTypeOf(ctx.steps.both.output).toEqualTypeOf<[number] | undefined>()
        expectTypeOf(ctx.steps.auto.output).toEqualTypeOf<boolean | undefined>()
        return null
      })
  })

  test('nested ifs', () => {
    workflow<Order>('w')
      .step('n', () => 1)
      .if('outer', () => true)
      .step('a', () => 'a' as const)
      .if('inner', () => true)
      .step('b', () => 'b' as const)
      .endIf()
      .endIf()
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<'a' | 'b' | number>()
        expectTypeOf(ctx.steps.b.output).toEqualTypeOf<'b' | undefined>()
        return null
      })
  })

  test('misuse is a type error', () => {
    const wf = workflow('w').step('a', () => 1)
    // @ts-expect-error .else() without .if()
    wf.else()
    // @ts-expect-error .endIf() without .if()
    wf.endIf()
    // @ts-expect-error .elseIf() without .if()
    wf.elseIf('x', () => true)

    const afterElse = wf.if('c', () => true).step('b', () => 2).else()
    // @ts-expect-error .elseIf() after .else()
    afterElse.elseIf('d', () => true)
    // @ts-expect-error a second .else()
    afterElse.else()

    // @ts-expect-error an .if() name already used
    wf.if('a', () => true)
  })

  test('an open if is not closed by a nested endIf', () => {
    const wf = workflow('w').if('outer', () => true).if('inner', () => true).endIf().endIf()
    // @ts-expect-error both .if()s are closed
    wf.endIf()
  })
})

describe('forEach', () => {
  test('gives an array of the body last output; item and ctx.item typed', () => {
    workflow<{ items: Order[] }>('w')
      .step('prep', () => 'p')
      .forEach(
        'each',
        (ctx) => ctx.payload.items,
        (item, flow) => {
          expectTypeOf(item).toEqualTypeOf<Order>()
          return flow
            .step('reserve', async (ctx) => {
              expectTypeOf(ctx.item).toEqualTypeOf<Order>()
              expectTypeOf(ctx.index).toEqualTypeOf<number>()
              expectTypeOf(ctx.last).toEqualTypeOf<Order>()
              // body steps see the outer steps
              expectTypeOf(ctx.steps.prep.output).toEqualTypeOf<string>()
              return { reserved: ctx.item.id }
            })
            .step('count', (ctx) => {
              expectTypeOf(ctx.last).toEqualTypeOf<{ reserved: string }>()
              expectTypeOf(ctx.steps.reserve.output).toEqualTypeOf<{ reserved: string }>()
              return ctx.index + 1
            })
        },
        { concurrency: 4 },
      )
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number[]>()
        expectTypeOf(ctx.steps.each.output).toEqualTypeOf<number[]>()
        // the body's steps are not outer steps
        // @ts-expect-error "reserve" lives in the body
        return ctx.steps.reserve
      })
  })

  test('unnamed, with async items', () => {
    workflow('w')
      .forEach(
        async () => [1, 2, 3],
        (_item, flow) => flow.step('s', (ctx) => String(ctx.item)),
      )
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<string[]>()
        return null
      })
  })

  test('outside a forEach, ctx.item and ctx.index are undefined', () => {
    workflow('w').step('a', (ctx) => {
      expectTypeOf(ctx.item).toEqualTypeOf<undefined>()
      expectTypeOf(ctx.index).toEqualTypeOf<undefined>()
      return null
    })
  })

  test('a body step reusing an outer name is an error', () => {
    workflow('w')
      .step('a', () => 1)
      // @ts-expect-error "a" is already used
      .forEach(() => [1], (_i, flow) => flow.step('a', () => 2))
  })
})

describe('onError', () => {
  test('last becomes T | handler return; ctx.error is Error', () => {
    workflow<Order>('w')
      .step('a', () => 1)
      .onError((ctx) => {
        expectTypeOf(ctx.error).toEqualTypeOf<Error>()
        // the failed node produced nothing: ctx.last is what it received
        expectTypeOf(ctx.last).toEqualTypeOf<Order>()
        expectTypeOf(ctx.payload).toEqualTypeOf<Order>()
        return { fallback: true as const, reason: ctx.error.message }
      })
      .step('b', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number | { fallback: true; reason: string }>()
        expectTypeOf(ctx.steps.a.output).toEqualTypeOf<number | { fallback: true; reason: string }>()
        return null
      })
  })

  test('async handlers are awaited; after a race', () => {
    workflow('w')
      .step('prep', () => 'p' as const)
      .race('quote', [async () => 1])
      .onError(async (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<'p'>()
        return 'fallback'
      })
      .step('b', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number | string>()
        expectTypeOf(ctx.steps.quote.output).toEqualTypeOf<number | string>()
        return null
      })
  })
  test('the handler does not see the failed node in ctx.steps', () => {
    // The failed node has no entry yet while its handler runs; ctx.error holds what it failed with.
    workflow('w')
      .step('n', () => 1)
      .step('charge', () => 'id')
      .onError((ctx) => {
        expectTypeOf(ctx.steps).toEqualTypeOf<{ n: StepInfo<number> }>()
        // @ts-expect-error "charge" is the node being recovered
        void ctx.steps.charge
        return null
      })
      .step('after', (ctx) => {
        expectTypeOf(ctx.steps.charge.output).toEqualTypeOf<string | null>()
        return null
      })
    // An erased workflow keeps `any` steps in its handlers.
    const erased: AnyWorkflow = workflow<number>('chain')
    erased.onError((ctx) => expectTypeOf(ctx.steps.anything.output).toBeAny())
  })

  test('after endIf the handler sees the pre-if output', () => {
    workflow('w')
      .step('n', () => 1)
      .if('c', () => true)
      .step('inside', () => 'x')
      .endIf()
      .onError((ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number>()
        return false
      })
      .step('after', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<number | string | boolean>()
        return null
      })
  })
})

describe('sleep', () => {
  test('passes last through', () => {
    workflow('w')
      .step('a', async () => ({ x: 1 }))
      .sleep('cool-down', '10m')
      .sleep('again', 500)
      .step('b', (ctx) => {
        expectTypeOf(ctx.last).toEqualTypeOf<{ x: number }>()
        return null
      })
  })

  test('a duration that is not one is a type error', () => {
    // @ts-expect-error not a duration
    workflow('w').sleep('s', 'soon')
  })
})

describe('names', () => {
  test('a duplicate step name is a type error', () => {
    const wf = workflow('w').step('a', () => 1)
    // @ts-expect-error "a" is already used
    wf.step('a', () => 2)
    // @ts-expect-error "a" is already used
    wf.parallel('a', [() => 1])
    // @ts-expect-error "a" is already used
    wf.race('a', [() => 1])
    // @ts-expect-error "a" is already used
    wf.sleep('a', '1s')
    // @ts-expect-error "a" is already used
    wf.forEach('a', () => [1], (_i, flow) => flow)
  })

  test('a name used in one branch cannot be reused in another', () => {
    const wf = workflow('w').if('c', () => true).step('a', () => 1).else()
    // @ts-expect-error "a" is already used in the .if() branch
    wf.step('a', () => 2)
  })

  test('.if() and .elseIf() names are reserved inside the branch', () => {
    const wf = workflow('w').if('large', () => true)
    // @ts-expect-error "large" is the .if()'s name
    wf.step('large', () => 1)
    const wf2 = wf.step('a', () => 1).elseIf('medium', () => true)
    // @ts-expect-error "medium" is the .elseIf()'s name
    wf2.step('medium', () => 2)
    // @ts-expect-error "large" is the outer .if()'s name
    wf2.if('large', () => true)
  })

  test('after .endIf() the .if() name is in ctx.steps with the branch output, and reserved', () => {
    const wf = workflow<number>('w')
      .if('large', (ctx) => ctx.last > 10)
      .step('review', () => 'reviewed' as const)
      .endIf()
      .step('after', (ctx) => {
        expectTypeOf(ctx.steps.large.output).toEqualTypeOf<'reviewed' | number>()
        return null
      })
    // @ts-expect-error "large" is already used by the .if()
    wf.step('large', () => 1)
    // Recovering the branch node changes its output in ctx.steps too.
    workflow<number>('w')
      .if('large', () => true)
      .step('review', () => 'r')
      .else()
      .step('auto', () => 'a')
      .endIf()
      .onError(() => false)
      .step('after', (ctx) => {
        expectTypeOf(ctx.steps.large.output).toEqualTypeOf<string | boolean>()
        return null
      })
    // A nested .if() may not have run: its output is T | undefined.
    workflow<number>('w')
      .if('outer', () => true)
      .if('inner', () => true)
      .step('x', () => 'x')
      .endIf()
      .endIf()
      .step('after', (ctx) => {
        expectTypeOf(ctx.steps.inner.output).toEqualTypeOf<string | number | undefined>()
        expectTypeOf(ctx.steps.outer.output).toEqualTypeOf<string | number>()
        return null
      })
  })

  test('.elseIf() names stay reserved after .endIf()', () => {
    const wf = workflow('w').if('large', () => true).elseIf('medium', () => true).endIf()
    // @ts-expect-error "medium" labels a case of the .if() "large"
    wf.step('medium', () => 1)
    // @ts-expect-error "medium" labels a case of the .if() "large"
    wf.if('medium', () => true)
    // Reserved, not in ctx.steps: the case has no entry of its own.
    wf.step('after', (ctx) => {
      // @ts-expect-error "medium" is not in ctx.steps
      return ctx.steps.medium
    })
  })

  test('a forEach body may not reuse the forEach name or an open .if() name', () => {
    // @ts-expect-error "each" is the forEach's own name
    workflow('w').forEach('each', () => [1], (_i, flow) => flow.step('each', () => 2))
    workflow('w')
      .if('big', () => true)
      // @ts-expect-error "big" is the open .if()'s name
      .forEach('each', () => [1], (_i, flow) => flow.step('big', () => 2))
    workflow('w')
      .if('big', () => true)
      .elseIf('medium', () => true)
      // @ts-expect-error "medium" is the open .elseIf()'s name, also for an unnamed forEach
      .forEach(() => [1], (_i, flow) => flow.step('medium', () => 2))
  })

  test('the names inside a forEach body stay reserved after it', () => {
    const wf = workflow('w').forEach('each', () => [1], (_i, flow) => flow.step('one', () => 1).if('two', () => true).elseIf('three', () => true).endIf())
    // @ts-expect-error "one" is a step of the body
    wf.step('one', () => 2)
    // @ts-expect-error "two" is an .if() of the body
    wf.sleep('two', '1s')
    // @ts-expect-error "three" is an .elseIf() of the body
    wf.parallel('three', [() => 1])
    // @ts-expect-error a second body may not reuse it either
    wf.forEach(() => [1], (_i, flow) => flow.step('one', () => 2))
    // Nested bodies count too.
    const nested = workflow('w').forEach('outer', () => [[1]], (_i, flow) => flow.forEach('inner', (ctx) => ctx.item, (_j, f) => f.step('deep', () => 1)))
    // @ts-expect-error "deep" is a step of the inner body
    nested.step('deep', () => 2)
    // @ts-expect-error "inner" is the inner forEach
    nested.step('inner', () => 2)
    // The body's steps are still not in ctx.steps after it; new names are fine.
    wf.step('after', (ctx) => {
      // @ts-expect-error "one" lives in the body
      return ctx.steps.one
    })
    // An unnamed forEach's body, and a body that adds nothing.
    const unnamed = workflow('w').forEach(() => [1], (_i, flow) => flow.step('one', () => 1))
    // @ts-expect-error "one" is a step of the body
    unnamed.step('one', () => 2)
    workflow('w').forEach('each', () => [1], (_i, flow) => flow).step('next', () => 1)
  })

  test('branch names of a named parallel or race are reserved', () => {
    const wf = workflow('w')
      .parallel('fetch', [() => 1, () => 'a'])
      .race('quote', { primary: () => 1, backup: () => 2 })
    // @ts-expect-error "fetch[0]" is the first branch of "fetch"
    wf.step('fetch[0]', () => 1)
    // @ts-expect-error "fetch[1]" is the second branch of "fetch"
    wf.sleep('fetch[1]', '1s')
    // @ts-expect-error "quote[backup]" is a branch of "quote"
    wf.step('quote[backup]', () => 1)
    // Only the branches there are; an array of unknown length reserves none (the compiler checks).
    wf.step('fetch[2]', () => 1).step('quote[other]', () => 1)
    const fns: (() => number)[] = []
    workflow('w').parallel('many', fns).step('many[0]', () => 1)
  })

  test('the step of a cpu() forEach body is reserved', () => {
    const wf = workflow('w').forEach('score', () => [1], cpu<number>({ module: 'file:///tasks/score.task.js' }))
    // @ts-expect-error "score:task" is the cpu() body's step
    wf.step('score:task', () => 1)
    wf.step('score:task2', (ctx) => {
      expectTypeOf(ctx.last).toEqualTypeOf<number[]>()
      return null
    })
    // A function body has no such step.
    workflow('w').forEach('score', () => [1], (_i, flow) => flow.step('one', () => 1)).step('score:task', () => 1)
  })

  test('an erased workflow accepts any name', () => {
    let wf: AnyWorkflow = workflow<number>('chain')
    for (let i = 0; i < 3; i++) wf = wf.step(`s${i}`, (ctx) => ctx.last + 1)
    void wf
  })
})

describe('engine.run', () => {
  const engine = createEngine()

  test('returns the workflow output and requires the payload type', async () => {
    const wf = workflow<Order>('w')
      .step('a', (ctx) => ctx.payload.total)
      .step('b', async (ctx) => ({ total: ctx.last }))
    expectTypeOf<inferOutput<typeof wf>>().toEqualTypeOf<{ total: number }>()
    expectTypeOf(engine.run(wf, { id: 'o', total: 1 })).toEqualTypeOf<Promise<{ total: number }>>()
    // @ts-expect-error the payload is required
    void engine.run(wf)
    // @ts-expect-error the payload has the wrong type
    void engine.run(wf, { id: 1, total: 1 })
  })

  test('schema workflows take the schema output type', () => {
    const wf = workflow('w', { input: z.object({ name: z.string() }) }).step('greet', (ctx) => `hi ${ctx.payload.name}`)
    expectTypeOf(engine.run(wf, { name: 'Ada' })).toEqualTypeOf<Promise<string>>()
    // @ts-expect-error name must be a string
    void engine.run(wf, { name: 1 })
  })

  test('a workflow with no steps outputs its payload; unknown payload is optional', () => {
    expectTypeOf(engine.run(workflow<number>('w'), 1)).toEqualTypeOf<Promise<number>>()
    expectTypeOf(engine.run(workflow('w').step('a', () => 1))).toEqualTypeOf<Promise<number>>()
  })

  test('start returns a typed handle', async () => {
    const wf = workflow<Order>('w').step('a', () => 'done' as const)
    const handle = await engine.start(wf, { id: 'o', total: 1 })
    expectTypeOf(handle.result()).toEqualTypeOf<Promise<'done'>>()
  })
})

import { expectTypeOf, test } from 'vitest'
import { workflow } from '@stepline/core'
import { sequence, fail, testRun } from '@stepline/testing'

const wf = workflow<{ n: number }>('typed')
  .step('double', (ctx) => ctx.payload.n * 2)
  .parallel('both', [() => 'a' as const, async () => true])

test('testRun result is typed from the workflow', async () => {
  const run = await testRun(wf, { n: 1 })
  expectTypeOf(run.output).toEqualTypeOf<['a', boolean] | undefined>()
  expectTypeOf(run.steps.double.output).toEqualTypeOf<number>()
  expectTypeOf(run.steps.both.calls).toEqualTypeOf<number>()
  // @ts-expect-error no step "nope"
  void run.steps.nope
})

test('mocks are checked against the step output type', async () => {
  await testRun(wf, { n: 1 }, { mocks: { double: 4, 'both[0]': 'a', extra: 'anything' } })
  await testRun(wf, { n: 1 }, { mocks: { double: sequence(fail('x'), 4), both: (ctx) => ['a', ctx.payload.n > 0] as ['a', boolean] } })
  // @ts-expect-error double returns a number
  await testRun(wf, { n: 1 }, { mocks: { double: 'four' } })
  // @ts-expect-error the payload must match the workflow's input
  await testRun(wf, { n: 'one' })
})

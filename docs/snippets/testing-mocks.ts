import { workflow } from '@stepline/core'
import { fail, sequence, testRun, value } from '@stepline/testing'
import { expect, test } from 'vitest'

declare const crm: { find(email: string): Promise<{ id: string; tier: 'free' | 'pro' }> }
declare const mailer: { send(to: string, body: string): Promise<string> }
declare const inventory: { reserve(sku: string): Promise<string> }

const onboard = workflow<{ email: string; skus: string[] }>('onboard')
  .step('lookup', (ctx) => crm.find(ctx.payload.email))
  .parallel('notify', {
    mail: (ctx) => mailer.send(ctx.payload.email, 'welcome'),
    slack: () => 'posted',
  })
  .race('quote', [async () => 10, async () => 12])
  .forEach('reserve', (ctx) => ctx.payload.skus, (sku, flow) =>
    flow.step('reserve-one', () => inventory.reserve(sku), { retry: { attempts: 3, delay: '1s' } }))
  .step('make-formatter', () => (n: number) => n.toFixed(2))

test('every kind of mock', async () => {
  const format = (n: number): string => `€${n}`
  const run = await testRun(onboard, { email: 'ada@example.com', skus: ['a', 'b'] }, {
    mocks: {
      lookup: { id: 'c-1', tier: 'pro' }, // a value (type-checked against the step's output)
      'notify[mail]': (ctx) => `mail to ${ctx.payload.email}`, // a function of ctx; parallel branch `name[key]`
      'quote[1]': fail('backup down'), // throws; race branches are `name[0]`, `name[1]`, …
      // Each forEach item has its own sequence: every item fails once, then succeeds.
      'reserve-one': sequence(fail('locked'), (ctx) => `reserved ${String(ctx.item)}`),
      'make-formatter': value(format), // value(): return the function itself, do not call it
    },
  })
  expect(run.steps.lookup.output.tier).toBe('pro')
  expect(run.steps.notify.output).toEqual({ mail: 'mail to ada@example.com', slack: 'posted' })
  expect(run.steps.quote.output).toBe(10)
  expect(run.steps.reserve.output).toEqual(['reserved a', 'reserved b'])
  expect(run.records('reserve-one').map((r) => r.attempts)).toEqual([2, 2])
  expect(run.calls('reserve-one')).toBe(4)
  expect(run.output).toBe(format)
})

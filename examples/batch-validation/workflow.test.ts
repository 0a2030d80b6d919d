import { describe, expect, it } from 'vitest'
import { testRun } from '@stepline/testing'
import { batchValidation, validateRecord, type CustomerRecord } from './workflow'

/** The forEach item a mock was called for (mock functions see `ctx.item` typed as `undefined`). */
const itemOf = <T>(ctx: { item: unknown }): T => ctx.item as T
const realDelay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

const five: CustomerRecord[] = [
  { id: 'a', email: 'a@example.com', age: 30, country: 'DE' },
  { id: 'b', email: 'b@example.com', age: 41, country: 'FR' },
  { id: 'c', email: 'not-an-address', age: 22, country: 'NL' },
  { id: 'd', email: 'd@spam.test', age: 50, country: 'US' },
  { id: 'e', email: 'e@example.com', age: 19, country: 'JP' },
]

describe('batch-validation', () => {
  it('validates 1,000 generated records: 51 invalid, each with its rule and reason', async () => {
    const run = await testRun(batchValidation, { count: 1000 })
    run.expectStatus('completed').expectOrder('load', 'validate-records', 'report')
    const report = run.output!
    expect(report.total).toBe(1000)
    // Every 47th from #5 (22 emails), every 61st from #7 (17 ages), every 89th from #11 (12 countries); no overlap.
    expect(report.invalid).toHaveLength(51)
    expect(report.valid).toBe(949)
    const byRule = (rule: string): number => report.invalid.filter((r) => r.rule === rule).length
    expect([byRule('email'), byRule('age'), byRule('country')]).toEqual([22, 17, 12])
    expect(report.invalid[0]).toEqual({ id: 'rec-0005', rule: 'email', reason: 'email "user5.example.com" is not an address' })
    expect(report.invalid).toContainEqual({ id: 'rec-0068', rule: 'age', reason: 'age 212 is outside 0–130' })
    expect(run.calls('validate')).toBe(1000)
  })

  it('isolates one record’s error: the run completes and the record is reported', async () => {
    const run = await testRun(batchValidation, { count: 5 }, { mocks: { load: five } })
    run.expectStatus('completed')
    expect(run.output).toEqual({
      total: 5,
      valid: 3,
      invalid: [
        { id: 'c', rule: 'email', reason: 'email "not-an-address" is not an address' },
        { id: 'd', rule: 'email', reason: 'email domain of "d@spam.test" is blocked' },
      ],
    })
    // The failed item's entry is kept, recovered by the body's .onError(), with its error.
    const c = run.records('validate').find((r) => r.item?.[0] === 2)!
    expect(c.status).toBe('completed')
    expect(c.recovered).toBe(true)
    expect(c.error?.message).toBe('email "not-an-address" is not an address')
    expect(run.records('validate').filter((r) => r.recovered)).toHaveLength(2)
    expect(run.steps['validate-records'].status).toBe('completed')
  })

  it('an error that is not a broken rule (a bug) still fails the run, naming the item', async () => {
    const run = await testRun(batchValidation, { count: 5 }, {
      mocks: {
        load: five,
        validate: (ctx) => {
          if (ctx.index === 1) throw new TypeError("Cannot read properties of undefined (reading 'email')")
          return validateRecord(itemOf<CustomerRecord>(ctx), ctx.signal)
        },
      },
    })
    run.expectStatus('failed')
    expect(run.error?.message).toContain('validate-records[1]')
    expect(run.ran('report')).toBe(false)
  })

  it('reports progress per chunk of 25 until done === total', async () => {
    const run = await testRun(batchValidation, { count: 1000 })
    const progress = run.events.filter((e) => e.type === 'run:progress')
    expect(progress).toHaveLength(40)
    expect(progress.every((e) => e.step === 'validate-records' && e.total === 1000)).toBe(true)
    const done = progress.map((e) => e.done as number)
    expect(done).toEqual([...done].sort((a, b) => a - b))
    expect(done.at(-1)).toBe(1000)
  })

  it('keeps the input order however the items finish', async () => {
    const records = Array.from({ length: 40 }, (_, i) => ({ id: `r${i}`, email: `r${i}@example.com`, age: 30, country: 'DE' }))
    const finished: number[] = []
    const run = await testRun(batchValidation, { count: 40 }, {
      mocks: {
        load: records,
        // Later records answer sooner, so items finish out of order.
        validate: async (ctx) => {
          await realDelay(8 - (ctx.index! % 8))
          finished.push(ctx.index!)
          const record = itemOf<CustomerRecord>(ctx)
          return { id: record.id, valid: true, record }
        },
      },
    })
    run.expectStatus('completed')
    expect(finished).not.toEqual([...finished].sort((a, b) => a - b))
    expect(run.steps['validate-records'].output.map((r) => r.id)).toEqual(records.map((r) => r.id))
  })
})

import { describe, expect, it } from 'vitest'
import { createEngine, StepError, ValidationError, type Ctx } from '@stepline/core'
import { fail, fakeClock, replayRun, sequence, testRun, type MocksFor } from '@stepline/testing'
import { processOrder, type Order } from './workflow'

// Every step that talks to a service is mocked, so runs take no real time; prices are 10 per
// unit and the customer is not gold (no discount), so the total is 10 × the quantity.
const services: MocksFor<typeof processOrder> = {
  'fetch[customer]': { id: 'cus-1', name: 'Grace Hopper', tier: 'standard' },
  'fetch[prices]': { 'SKU-A': 10 },
  'fraud-check': { approved: true, by: 'fraud model (score 0.1)' },
  charge: (ctx: Ctx<any, any, any, any>) => ({ chargeId: 'ch_test', amount: ctx.steps.price.output.total }),
  'reserve-item': (ctx: Ctx<unknown, unknown, unknown, { sku: string; qty: number }>) => ({ sku: ctx.item.sku, qty: ctx.item.qty, bin: 'B-1' }),
  'quote[primary]': { carrier: 'ParcelCo', price: 6 },
  'quote[backup]': fail('backup is slower'),
}

const order = (qty: number): Order => ({ orderId: 'ord-1', customerId: 'cus-1', items: [{ sku: 'SKU-A', qty, kg: 0.5 }] })

describe('process-order', () => {
  it.each([
    { qty: 200, total: 2000, taken: 'large-order', ran: 'manual-review', skipped: ['fraud-check', 'auto-approve'], by: 'risk team' },
    { qty: 50, total: 500, taken: 'medium-order', ran: 'fraud-check', skipped: ['manual-review', 'auto-approve'], by: 'fraud model (score 0.1)' },
    { qty: 5, total: 50, taken: 'else', ran: 'auto-approve', skipped: ['manual-review', 'fraud-check'], by: 'rule: small order' },
  ])('a total of $total takes the "$taken" branch', async ({ qty, total, taken, ran, skipped, by }) => {
    const run = await testRun(processOrder, order(qty), { mocks: services })
    run.expectStatus('completed').expectBranch('large-order', taken).expectSkipped(...skipped).expectOrder('fetch', 'price', ran, 'charge', 'reserve', 'quote', 'confirm')
    expect(run.steps.price.output.total).toBe(total)
    expect(run.output).toMatchObject({ approvedBy: by, charged: total, shipping: 'ParcelCo, 6.00', reserved: [`${qty}× SKU-A @ B-1`] })
  })

  it('a rejected fraud check fails the run at charge without retrying', async () => {
    // `charge` runs for real: it refuses the order before it calls the gateway.
    const { charge: _real, ...others } = services
    const run = await testRun(processOrder, order(50), { mocks: { ...others, 'fraud-check': { approved: false, by: 'fraud model (score 0.93)' } } })
    run.expectStatus('failed').expectAttempts('charge', 1)
    expect(run.error).toBeInstanceOf(StepError)
    expect(run.error?.message).toContain('order rejected by fraud model (score 0.93)')
    expect(run.ran('reserve')).toBe(false)
  })

  it('falls back to the flat rate when both carriers fail the race', async () => {
    const run = await testRun(processOrder, order(5), {
      mocks: { ...services, 'quote[primary]': fail('primary carrier API timed out'), 'quote[backup]': fail('backup carrier has no service') },
    })
    run.expectStatus('completed')
    expect(run.calls('quote[primary]')).toBe(1)
    expect(run.calls('quote[backup]')).toBe(1)
    const [quote] = run.records('quote')
    expect(quote?.recovered).toBe(true)
    expect(quote?.error?.name).toBe('RaceError')
    expect(run.steps.quote.output).toEqual({
      carrier: 'flat rate (fallback)',
      price: 14.9,
      reason:
        'Race "quote": all 2 branches failed: Step "quote[primary]" failed after 1 attempt: primary carrier API timed out; ' +
        'Step "quote[backup]" failed after 1 attempt: backup carrier has no service',
    })
    expect(run.output?.shipping).toBe('flat rate (fallback), 14.90')
  })

  it('the backup carrier wins when the primary fails', async () => {
    const run = await testRun(processOrder, order(5), {
      mocks: { ...services, 'quote[primary]': fail('primary carrier API timed out'), 'quote[backup]': { carrier: 'QuickShip', price: 7.5 } },
    })
    expect(run.output?.shipping).toBe('QuickShip, 7.50')
    expect(run.records('quote')[0]?.recovered).toBeFalsy()
  })

  it('retries the flaky charge until it succeeds on the 3rd attempt, with backoff on virtual time', async () => {
    const clock = fakeClock()
    const run = await testRun(processOrder, order(5), {
      clock,
      mocks: { ...services, charge: sequence(fail('503 payment gateway busy'), fail('503 payment gateway busy'), { chargeId: 'ch_3rd', amount: 50 }) },
    })
    run.expectStatus('completed').expectAttempts('charge', 3)
    expect(run.calls('charge')).toBe(3)
    expect(run.trace.filter((t) => t.step === 'charge' && t.type === 'retrying').map((t) => t.attempt)).toEqual([1, 2])
    expect(run.output?.chargeId).toBe('ch_3rd')
    // Exponential from 40 ms with jitter 0.5: the waits are 20–40 ms, then 40–80 ms.
    expect(clock.elapsed()).toBeGreaterThanOrEqual(60)
    expect(clock.elapsed()).toBeLessThanOrEqual(120)
  })

  it('gives up on the charge after 4 attempts', async () => {
    const run = await testRun(processOrder, order(5), { mocks: { ...services, charge: fail('503 payment gateway busy') } })
    run.expectStatus('failed').expectAttempts('charge', 4)
    expect(run.ran('reserve')).toBe(false)
  })

  it('rejects an invalid payload with ValidationError before a run exists', async () => {
    const engine = createEngine()
    const start = engine.start(processOrder, { orderId: '', customerId: 'cus-1', items: [] })
    await expect(start).rejects.toBeInstanceOf(ValidationError)
    const error = (await start.catch((e: unknown) => e)) as ValidationError
    expect(error.issues.map((i) => i.path?.map((p) => (typeof p === 'object' ? String(p.key) : String(p))).join('.'))).toEqual(['orderId', 'items'])
    expect(await engine.listRuns()).toHaveLength(0)
    await engine.close()
  })

  it('a recorded run (real stand-ins) replays to the same result', async () => {
    const engine = createEngine()
    const handle = await engine.start(processOrder, {
      orderId: 'ord-7',
      customerId: 'cus-7',
      items: [
        { sku: 'SKU-MOUSE', qty: 2, kg: 0.2 },
        { sku: 'SKU-CABLE', qty: 3, kg: 0.1 },
      ],
    })
    const outcome = await handle.outcome()
    expect(outcome.status).toBe('completed')
    const recorded = { run: (await engine.getRun(handle.id))!, steps: await engine.getSteps(handle.id) }
    await engine.close()
    // The real gateway is busy twice per charge: the recording holds three attempts.
    expect(recorded.steps.find((s) => s.name === 'charge')?.attempts).toBe(3)

    const report = await replayRun(processOrder, recorded)
    expect(report.message).toBe('replay matches the recorded run')
    expect(report.ok).toBe(true)
  })
})

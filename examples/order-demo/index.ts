/**
 * Order processing with Stepline: schema-checked input, parallel fetches, a branch on the
 * order size, a flaky payment call with retries, per-item reservations, and a race between
 * two carriers with a fallback. Prints one line per step as the run goes, then the result
 * and the run summary. Exits 1 when the run fails.
 *
 *   pnpm --filter ./examples/order-demo start                   # backup carrier wins the race
 *   pnpm --filter ./examples/order-demo start -- --carriers-down # both fail: flat-rate fallback
 */
import { NonRetriableError, createEngine, workflow } from '@stepline/core'
import { z } from 'zod'
import { carriers, catalog, customers, inventory, payments, risk } from './services'

const carriersDown = process.argv.includes('--carriers-down')

const Order = z.object({
  orderId: z.string().min(1),
  customerId: z.string().min(1),
  items: z.array(z.object({ sku: z.string(), qty: z.number().int().positive(), kg: z.number().positive() })).min(1),
})

const processOrder = workflow('process-order', { input: Order, timeout: '30s' })
  .parallel('fetch', {
    customer: (ctx) => customers.get(ctx.payload.customerId, ctx.signal),
    prices: (ctx) => catalog.prices(ctx.payload.items.map((i) => i.sku), ctx.signal),
  })
  .step('price', (ctx) => {
    const { customer, prices } = ctx.last
    const subtotal = ctx.payload.items.reduce((sum, i) => sum + (prices[i.sku] ?? 0) * i.qty, 0)
    const discount = customer.tier === 'gold' ? Math.round(subtotal * 0.05) : 0
    return { customer: customer.name, subtotal, discount, total: subtotal - discount }
  })
  .if('large-order', (ctx) => ctx.last.total > 1000)
    .step('manual-review', async (ctx) => {
      ctx.log.info('queued for a human', { total: ctx.last.total })
      return { approved: true, by: 'risk team' }
    })
  .elseIf('medium-order', (ctx) => ctx.last.total > 200)
    .step('fraud-check', async (ctx) => {
      const score = await risk.score(ctx.payload.customerId, ctx.last.total)
      return { approved: score < 0.8, by: `fraud model (score ${score})` }
    })
  .else()
    .step('auto-approve', () => ({ approved: true, by: 'rule: small order' }))
  .endIf()
  .step(
    'charge',
    (ctx) => {
      if (!ctx.last.approved) throw new NonRetriableError(`order rejected by ${ctx.last.by}`)
      return payments.charge(ctx.steps.price.output.total, ctx.signal)
    },
    { retry: { attempts: 4, backoff: 'exponential', delay: '40ms', maxDelay: '500ms', jitter: 0.5 }, timeout: '2s' },
  )
  .forEach(
    'reserve',
    (ctx) => ctx.payload.items,
    (item, flow) => flow.step('reserve-item', (ctx) => inventory.reserve(item.sku, item.qty, ctx.signal), { retry: 2 }),
    { concurrency: 2 },
  )
  .race('quote', {
    primary: (ctx) => carriers.primary(totalKg(ctx.payload.items), carriersDown, ctx.signal),
    backup: (ctx) => carriers.backup(totalKg(ctx.payload.items), carriersDown, ctx.signal),
  }, { timeout: '1s' })
  .onError((ctx) => ({ carrier: 'flat rate (fallback)', price: 14.9, reason: ctx.error.message }))
  .step('confirm', (ctx) => ({
    orderId: ctx.payload.orderId,
    customer: ctx.steps.price.output.customer,
    charged: ctx.steps.charge.output.amount,
    chargeId: ctx.steps.charge.output.chargeId,
    reserved: ctx.steps.reserve.output.map((r) => `${r.qty}× ${r.sku} @ ${r.bin}`),
    shipping: `${ctx.last.carrier}, ${ctx.last.price.toFixed(2)}`,
  }))

function totalKg(items: { qty: number; kg: number }[]): number {
  return items.reduce((sum, i) => sum + i.qty * i.kg, 0)
}

// ---- run it, printing live events -------------------------------------------------------

const engine = createEngine({ workflows: [processOrder] })
// `.if()` nodes report under the name of their `.if()`; say so in the output.
const branches = new Set(processOrder.plan().nodes.filter((n) => n.kind === 'branch').map((n) => n.name))
const t0 = performance.now()
const at = (): string => `${(performance.now() - t0).toFixed(0).padStart(5)} ms`
const where = (item: number[] | undefined): string => (item ? `[${item.join('][')}]` : '')

engine
  .on('step:completed', (e) => {
    if (branches.has(e.step)) return console.log(`${at()}  ◆ ${e.step.padEnd(22)} branch done`)
    const flag = e.recovered ? '  (recovered by onError)' : e.cached ? '  (cached)' : ''
    const tries = e.attempt > 1 ? `, ${e.attempt} attempts` : ''
    console.log(`${at()}  ✓ ${(e.step + where(e.item)).padEnd(22)} ${e.durationMs.toFixed(0).padStart(4)} ms${tries}${flag}`)
  })
  .on('step:failed', (e) => console.log(`${at()}  ✗ ${(e.step + where(e.item)).padEnd(22)} ${e.error.message}`))
  .on('step:retrying', (e) =>
    console.log(`${at()}  ↻ ${(e.step + where(e.item)).padEnd(22)} attempt ${e.attempt} failed (${e.error.message}); retry in ${e.delayMs.toFixed(0)} ms`),
  )
  .on('step:skipped', (e) => console.log(`${at()}  – ${e.step.padEnd(22)} skipped (branch not taken)`))
  .on('run:progress', (e) => console.log(`${at()}  … ${e.step.padEnd(22)} ${e.done}/${e.total} items`))
  .on('log', (e) => console.log(`${at()}  ℹ ${(e.step ?? '').padEnd(22)} ${e.message} ${e.data === undefined ? '' : JSON.stringify(e.data)}`))

console.log(`Stepline demo: workflow "${processOrder.id}" (plan ${processOrder.plan().hash})${carriersDown ? ', carriers down' : ''}\n`)

const run = await engine.start(processOrder, {
  orderId: 'ord-1042',
  customerId: 'cus-77',
  items: [
    { sku: 'SKU-KEYBOARD', qty: 1, kg: 1.1 },
    { sku: 'SKU-MOUSE', qty: 2, kg: 0.2 },
    { sku: 'SKU-MONITOR', qty: 1, kg: 6.5 },
    { sku: 'SKU-CABLE', qty: 3, kg: 0.1 },
  ],
})
const outcome = await run.outcome()

console.log(`\nRun ${run.id}: ${outcome.status}`)
if (outcome.status === 'completed') console.log(outcome.output)
else console.log(`  ${outcome.error?.name}: ${outcome.error?.message}`)

const s = outcome.summary
console.log('\nSummary')
console.log(`  wall time            ${s.wallMs.toFixed(0)} ms`)
console.log(`  summed step time     ${s.stepMs.toFixed(0)} ms over ${s.steps} steps`)
console.log(`  parallel efficiency  ${s.parallelEfficiency.toFixed(2)}× (summed step time / wall time)`)
console.log(`  critical path        ${s.criticalPath.join(' → ')} (${s.criticalPathMs.toFixed(0)} ms)`)

await engine.close()
if (outcome.status !== 'completed') process.exitCode = 1

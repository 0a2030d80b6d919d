/**
 * Order processing with Stepline: runs the workflow of ./workflow.ts (schema-checked input,
 * parallel fetches, a branch on the order size, a flaky payment call with retries, per-item
 * reservations, a race between two carriers with a fallback) on one order. Prints one line per
 * step as the run goes, then the result and the run summary, and checks the result: the
 * order's total, the branch taken, the charge retried twice, the race won by the quicker carrier
 * (or the fallback). Exits 1 when the run fails or a check does not hold.
 *
 *   pnpm --filter ./examples/order-processing start                   # backup carrier wins the race
 *   pnpm --filter ./examples/order-processing start -- --carriers-down # both fail: flat-rate fallback
 */
import assert from 'node:assert/strict'
import { createEngine } from '@stepline/core'
import { carriers, processOrder } from './workflow'

carriers.down = process.argv.includes('--carriers-down')

const engine = createEngine({ workflows: [processOrder] })
// `.if()` nodes report under the name of their `.if()`; say so in the output.
const branches = new Set(processOrder.plan().nodes.filter((n) => n.kind === 'branch').map((n) => n.name))
const t0 = performance.now()
const at = (): string => `${(performance.now() - t0).toFixed(0).padStart(5)} ms`
const where = (item: number[] | undefined): string => (item ? `[${item.join('][')}]` : '')
const attempts = new Map<string, number>()

engine
  .on('step:completed', (e) => {
    attempts.set(e.step, e.attempt)
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

console.log(`Stepline order processing: workflow "${processOrder.id}" (plan ${processOrder.plan().hash})${carriers.down ? ', carriers down' : ''}\n`)

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

// The run is deterministic but for timings: check what it printed. 583 of goods less 5 % for a
// gold customer is 554, a medium order, so the fraud check approves it.
assert.equal(outcome.status, 'completed', 'the run should complete')
assert.deepEqual(outcome.output, {
  orderId: 'ord-1042',
  customer: 'Ada Lovelace',
  approvedBy: 'fraud model (score 0.12)',
  charged: 554,
  chargeId: 'ch_55400',
  reserved: ['1× SKU-KEYBOARD @ B-121', '2× SKU-MOUSE @ B-92', '1× SKU-MONITOR @ B-111', '3× SKU-CABLE @ B-93'],
  // QuickShip answers in 70 ms, ParcelCo in 140 ms: the backup wins the race.
  shipping: carriers.down ? 'flat rate (fallback), 14.90' : 'QuickShip, 12.47',
})
assert.equal(attempts.get('charge'), 3, 'the gateway answers 503 twice: charge should take 3 attempts')
assert.equal(attempts.has('manual-review') || attempts.has('auto-approve'), false, 'only the medium-order branch should run')
console.log('\nchecks passed')

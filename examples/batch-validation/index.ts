/**
 * Validates 1,000 generated records with Stepline: a `forEach` with 8 workers taking chunks of
 * 25, an `.onError()` in the body that turns each broken rule into a report line, throttled
 * progress, and a summary with the throughput. Checks the report against the generator's
 * broken records: every one reported under the right rule, no other. Exits 1 when the run fails
 * or a check does not hold.
 *
 *   pnpm --filter ./examples/batch-validation start
 *   pnpm --filter ./examples/batch-validation start -- 5000   # another record count
 */
import assert from 'node:assert/strict'
import { createEngine } from '@stepline/core'
import { batchValidation } from './workflow'

const count = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 1000)

const engine = createEngine({ workflows: [batchValidation] })
const t0 = performance.now()
const at = (): string => `${(performance.now() - t0).toFixed(0).padStart(5)} ms`

// One progress event per chunk of 25 would be 40 lines: print about every fifth of the batch.
let printedAt = 0
engine.on('run:progress', (e) => {
  if (e.done !== e.total && e.done - printedAt < e.total / 5) return
  printedAt = e.done
  const pct = ((100 * e.done) / e.total).toFixed(0).padStart(3)
  console.log(`${at()}  ${e.step}: ${String(e.done).padStart(5)}/${e.total} (${pct}%)  ${e.itemsPerSecond.toFixed(0)} records/s`)
})
engine.on('step:failed', (e) => {
  // Broken rules are recovered by .onError() and show up in the report; this is anything else.
  if (e.error.name !== 'InvalidRecordError') console.log(`${at()}  ✗ ${e.step}${e.item ? `[${e.item.join('][')}]` : ''}: ${e.error.message}`)
})

console.log(`Validating ${count} records (workflow "${batchValidation.id}", 8 workers, chunks of 25)\n`)
const run = await engine.start(batchValidation, { count })
const outcome = await run.outcome()

if (outcome.status !== 'completed') {
  console.log(`\nRun ${run.id} ${outcome.status}: ${outcome.error?.name}: ${outcome.error?.message}`)
} else {
  const report = outcome.output!
  console.log(`\nInvalid records (${report.invalid.length}), by rule:`)
  const byRule = new Map<string, typeof report.invalid>()
  for (const r of report.invalid) byRule.set(r.rule, [...(byRule.get(r.rule) ?? []), r])
  for (const [rule, lines] of byRule) {
    console.log(`  ${rule} (${lines.length})`)
    for (const l of lines.slice(0, 3)) console.log(`    ${l.id}  ${l.reason}`)
    if (lines.length > 3) console.log(`    … and ${lines.length - 3} more: ${lines.slice(3).map((l) => l.id).join(', ')}`)
  }
  const s = outcome.summary
  console.log('\nSummary')
  console.log(`  records              ${report.total} (${report.valid} valid, ${report.invalid.length} invalid)`)
  console.log(`  wall time            ${s.wallMs.toFixed(0)} ms`)
  console.log(`  throughput           ${((report.total / s.wallMs) * 1000).toFixed(0)} records/s`)
  console.log(`  parallel efficiency  ${s.parallelEfficiency.toFixed(2)}× over ${s.steps} steps`)
}

await engine.close()

// generateRecords breaks every 47th email (from #5), every 61st age (from #7), every 89th
// country (from #11); a record breaking several rules is reported under the first one checked.
const expected = Array.from({ length: count }, (_, i) => ({ i, rule: i % 47 === 5 ? 'email' : i % 61 === 7 ? 'age' : i % 89 === 11 ? 'country' : '' }))
  .filter((r) => r.rule)
  .map((r) => ({ id: `rec-${String(r.i).padStart(4, '0')}`, rule: r.rule }))
assert.equal(outcome.status, 'completed', 'the run should complete: broken records are report lines, not failures')
const report = outcome.output!
assert.equal(report.total, count)
assert.equal(report.valid, count - expected.length)
assert.deepEqual(
  report.invalid.map((r) => ({ id: r.id, rule: r.rule })),
  expected,
  'the report should list the broken records, in input order, each under the rule it breaks',
)
console.log('\nchecks passed')

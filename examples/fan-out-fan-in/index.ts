/**
 * Fan-out / fan-in with Stepline: runs the job of ./workflow.ts (three batches and a metadata
 * lookup in parallel, a merge, a report and a notification at the same time, a cleanup) and
 * prints one line per step as the run goes, then the result and the run summary. The summary's
 * parallel efficiency (summed step time ÷ wall time) is well above 1 because the batches
 * overlap. Checks the merged totals, that the four branches overlapped and that the
 * rate-limited notification was retried. Exits 1 when the run fails or a check does not hold.
 *
 *   pnpm --filter ./examples/fan-out-fan-in start
 */
import assert from 'node:assert/strict'
import { createEngine } from '@stepline/core'
import { fanOutFanIn } from './workflow'

const engine = createEngine({ workflows: [fanOutFanIn] })
const branches = new Set(['is-report'])
const t0 = performance.now()
const at = (): string => `${(performance.now() - t0).toFixed(0).padStart(5)} ms`
const where = (item: number[] | undefined): string => (item ? `[${item.join('][')}]` : '')
// The `process[…]` branches that had started when the first of them completed.
const processStarted = new Set<string>()
let startedWhenFirstDone = 0
const attempts = new Map<string, number>()

engine
  .on('step:started', (e) => {
    if (e.step.startsWith('process[')) processStarted.add(e.step)
    if (!branches.has(e.step)) console.log(`${at()}  ▶ ${(e.step + where(e.item)).padEnd(20)} started`)
  })
  .on('step:completed', (e) => {
    if (e.step.startsWith('process[') && startedWhenFirstDone === 0) startedWhenFirstDone = processStarted.size
    attempts.set(e.step, e.attempt)
    if (branches.has(e.step)) return
    const tries = e.attempt > 1 ? `, ${e.attempt} attempts` : ''
    console.log(`${at()}  ✓ ${(e.step + where(e.item)).padEnd(20)} ${e.durationMs.toFixed(0).padStart(4)} ms${tries}`)
  })
  .on('step:failed', (e) => console.log(`${at()}  ✗ ${(e.step + where(e.item)).padEnd(20)} ${e.error.message}`))
  .on('step:retrying', (e) =>
    console.log(`${at()}  ↻ ${(e.step + where(e.item)).padEnd(20)} attempt ${e.attempt} failed (${e.error.message}); retry in ${e.delayMs.toFixed(0)} ms`),
  )

console.log(`Stepline fan-out / fan-in: workflow "${fanOutFanIn.id}" (plan ${fanOutFanIn.plan().hash})\n`)

const records = 30_000
const run = await engine.start(fanOutFanIn, { jobId: 'job-2024-11', records })
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

assert.equal(outcome.status, 'completed', 'the run should complete')
assert.deepEqual(outcome.output, {
  jobId: 'job-2024-11',
  dataset: 'events-job-2024-11',
  owner: 'data-platform',
  processed: records,
  checksum: (records * (records - 1)) / 2, // every record id 0 … 29 999 once: no batch lost or doubled
  report: `https://reports.example.test/job-2024-11?records=${records}`,
  notified: 'msg-1',
  tempFilesRemoved: 3,
})
assert.equal(startedWhenFirstDone, 4, 'all four process branches should be running before the first one completes')
assert.equal(attempts.get('notify'), 2, 'the chat API rate-limits the first post: notify should take 2 attempts')
console.log('\nchecks passed')

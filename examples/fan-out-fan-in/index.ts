/**
 * Fan-out / fan-in with Stepline: runs the job of ./workflow.ts (three batches and a metadata
 * lookup in parallel, a merge, a report and a notification at the same time, a cleanup) and
 * prints one line per step as the run goes, then the result and the run summary. The summary's
 * parallel efficiency (summed step time ÷ wall time) is well above 1 because the batches
 * overlap. Exits 1 when the run fails.
 *
 *   pnpm --filter ./examples/fan-out-fan-in start
 */
import { createEngine } from '@stepline/core'
import { fanOutFanIn } from './workflow'

const engine = createEngine({ workflows: [fanOutFanIn] })
const branches = new Set(['is-report'])
const t0 = performance.now()
const at = (): string => `${(performance.now() - t0).toFixed(0).padStart(5)} ms`
const where = (item: number[] | undefined): string => (item ? `[${item.join('][')}]` : '')

engine
  .on('step:started', (e) => {
    if (!branches.has(e.step)) console.log(`${at()}  ▶ ${(e.step + where(e.item)).padEnd(20)} started`)
  })
  .on('step:completed', (e) => {
    if (branches.has(e.step)) return
    const tries = e.attempt > 1 ? `, ${e.attempt} attempts` : ''
    console.log(`${at()}  ✓ ${(e.step + where(e.item)).padEnd(20)} ${e.durationMs.toFixed(0).padStart(4)} ms${tries}`)
  })
  .on('step:failed', (e) => console.log(`${at()}  ✗ ${(e.step + where(e.item)).padEnd(20)} ${e.error.message}`))
  .on('step:retrying', (e) =>
    console.log(`${at()}  ↻ ${(e.step + where(e.item)).padEnd(20)} attempt ${e.attempt} failed (${e.error.message}); retry in ${e.delayMs.toFixed(0)} ms`),
  )

console.log(`Stepline fan-out / fan-in: workflow "${fanOutFanIn.id}" (plan ${fanOutFanIn.plan().hash})\n`)

const run = await engine.start(fanOutFanIn, { jobId: 'job-2024-11', records: 30_000 })
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

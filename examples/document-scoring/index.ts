/**
 * Scores 200 synthetic documents with a `forEach` whose body is a `cpu()` task: each chunk of
 * 10 documents is one task on the engine's worker-thread pool. Runs the workflow twice, with a
 * one-thread pool and with the default pool (one thread per core), and prints both wall times,
 * the speedup, the top 10 and the run summary. Exits 1 when a run fails.
 *
 *   pnpm --filter ./examples/document-scoring start
 *   pnpm --filter ./examples/document-scoring start -- 500   # another document count
 */
import { availableParallelism } from 'node:os'
import { createEngine, type RunOutcome, type WorkerOptions } from '@stepline/core'
import { documentScoring, type Scored, type ScoringInput } from './workflow'

const count = Number(process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? 200)
const input: ScoringInput = { count, query: ['durable', 'worker', 'retry', 'journal'] }

async function scoreWith(label: string, workers: WorkerOptions): Promise<{ outcome: RunOutcome<Scored[]>; ms: number }> {
  const engine = createEngine({ workers, workflows: [documentScoring] })
  let threads = 0
  engine.on('run:progress', (e) => {
    threads = Math.max(threads, e.pool?.threads ?? 0)
  })
  try {
    // Warm the pool up so that both timings count scoring, not thread start-up and module loading.
    await engine.run(documentScoring, { ...input, count: (workers.max ?? availableParallelism()) * 10 })
    const t0 = performance.now()
    const run = await engine.start(documentScoring, input)
    const outcome = await run.outcome()
    const ms = performance.now() - t0
    console.log(`${label.padEnd(28)} ${ms.toFixed(0).padStart(6)} ms  (${threads} thread${threads === 1 ? '' : 's'}, run ${outcome.status})`)
    return { outcome, ms }
  } finally {
    await engine.close()
  }
}

console.log(`Scoring ${count} documents for "${input.query.join(' ')}" (chunks of 10, ${availableParallelism()} cores)\n`)
const one = await scoreWith('workers: { max: 1 }', { max: 1 })
const all = await scoreWith('default pool', {})
console.log(`speedup                      ${(one.ms / all.ms).toFixed(2)}×`)

const failed = [one, all].find((r) => r.outcome.status !== 'completed')
if (failed) {
  console.log(`\nRun ${failed.outcome.status}: ${failed.outcome.error?.name}: ${failed.outcome.error?.message}`)
  process.exitCode = 1
} else {
  const top = all.outcome.output!
  console.log('\nTop 10')
  top.forEach((d, i) => console.log(`  ${String(i + 1).padStart(2)}. ${d.id}  ${d.score.toFixed(4)}  ${d.fingerprint}  ${d.title}`))
  const s = all.outcome.summary
  console.log('\nSummary (default pool)')
  console.log(`  wall time            ${s.wallMs.toFixed(0)} ms`)
  console.log(`  summed step time     ${s.stepMs.toFixed(0)} ms over ${s.steps} steps`)
  console.log(`  parallel efficiency  ${s.parallelEfficiency.toFixed(2)}×`)
  console.log(`  critical path        ${s.criticalPath.join(' → ')}`)
  const same = JSON.stringify(one.outcome.output) === JSON.stringify(top)
  console.log(`  same top 10 on 1 thread: ${same ? 'yes' : 'NO'}`)
  if (!same) process.exitCode = 1
}

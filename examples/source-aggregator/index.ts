/**
 * Aggregates 50 feeds with Stepline: at most 10 fetches in flight, each retried with
 * exponential backoff; feeds that stay down are reported, not fatal. Prints retries and
 * failures as they happen, then a report: sources ok/failed, items before and after
 * de-duplication, the newest items, wall time. Checks the report against the feeds' known
 * behaviour: the down feeds failed, the flaky ones recovered, never more than 10 fetches in
 * flight, no duplicate left. Exits 1 when the run fails or a check does not hold.
 *
 *   pnpm --filter ./examples/source-aggregator start
 */
import assert from 'node:assert/strict'
import { createEngine } from '@stepline/core'
import { behaviourOf, feeds, sourceAggregator, storiesOf } from './workflow'

const sources = Array.from({ length: 50 }, (_, i) => `feed-${String(i + 1).padStart(2, '0')}`)
const kinds = sources.map((s) => behaviourOf(s).kind)
const engine = createEngine({ workflows: [sourceAggregator] })
const t0 = performance.now()
const at = (): string => `${(performance.now() - t0).toFixed(0).padStart(5)} ms`

let retries = 0
const triesOf = new Map<number, number>() // per source index, from the retry events
engine
  .on('step:retrying', (e) => {
    retries++
    triesOf.set(e.item![0]!, e.attempt)
    console.log(`${at()}  ↻ ${sources[e.item![0]!]} attempt ${e.attempt} failed (${e.error.message}); retry in ${e.delayMs} ms`)
  })
  .on('step:completed', (e) => {
    if (e.step !== 'fetch-source') return
    // A step recovered by .onError() reports the attempts it took: the retry events counted the same.
    if (e.recovered && e.attempt !== (triesOf.get(e.item![0]!) ?? 0) + 1) throw new Error(`attempt ${e.attempt} disagrees with the retry events`)
    if (e.recovered) console.log(`${at()}  ✗ ${sources[e.item![0]!]} given up after ${e.attempt} attempts`)
    else if (e.attempt > 1) console.log(`${at()}  ✓ ${sources[e.item![0]!]} ok on attempt ${e.attempt}`)
  })
  .on('run:progress', (e) => {
    if (e.done % 10 === 0) console.log(`${at()}  … ${e.done}/${e.total} sources done`)
  })

console.log(
  `Fetching ${sources.length} feeds, 10 at a time ` +
    `(${kinds.filter((k) => k === 'flaky').length} flaky, ${kinds.filter((k) => k === 'slow').length} slow, ${kinds.filter((k) => k === 'down').length} down)\n`,
)
const run = await engine.start(sourceAggregator, { sources })
const outcome = await run.outcome()

if (outcome.status !== 'completed') {
  console.log(`\nRun ${run.id} ${outcome.status}: ${outcome.error?.name}: ${outcome.error?.message}`)
} else {
  const report = outcome.output!
  console.log('\nNewest items')
  for (const item of report.items.slice(0, 5)) console.log(`  ${item.publishedAt.slice(0, 16).replace('T', ' ')}  ${item.id.padEnd(10)} from ${item.source}`)
  const s = outcome.summary
  console.log('\nReport')
  console.log(`  sources              ${report.ok.length} ok, ${report.failed.length} failed`)
  for (const f of report.failed) console.log(`    ${f.source}: ${f.reason}`)
  console.log(`  items                ${report.fetched} fetched, ${report.items.length} after de-duplication`)
  console.log(`  retries              ${retries}`)
  console.log(`  most fetches at once ${feeds.maxInFlight}`)
  console.log(`  wall time            ${s.wallMs.toFixed(0)} ms (summed step time ${s.stepMs.toFixed(0)} ms, ${s.parallelEfficiency.toFixed(1)}× parallel)`)
}

await engine.close()

assert.equal(outcome.status, 'completed', 'the run should complete: a feed that stays down is reported, not fatal')
const report = outcome.output!
const down = sources.filter((_, i) => kinds[i] === 'down')
const up = sources.filter((_, i) => kinds[i] !== 'down')
assert.deepEqual(report.failed.map((f) => f.source), down, 'exactly the down feeds should be reported as failed')
assert.deepEqual(report.ok, up)
// A flaky feed answers 503 twice, then works (2 retries); a down one uses all 4 attempts (3 retries).
assert.equal(retries, 2 * kinds.filter((k) => k === 'flaky').length + 3 * down.length)
assert.ok(feeds.maxInFlight <= 10, `at most 10 fetches in flight, saw ${feeds.maxInFlight}`)
assert.equal(report.fetched, 8 * up.length)
const unique = new Set(up.flatMap((s) => storiesOf(s).map((item) => item.id)))
assert.deepEqual(report.items.map((i) => i.id).sort(), [...unique].sort(), 'every story once, duplicates dropped')
console.log('\nchecks passed')

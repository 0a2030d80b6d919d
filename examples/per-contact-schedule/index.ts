/**
 * Plans the next send for 20 contacts with Stepline: per contact, timezone offset, best hour and
 * channel are worked out in parallel and combined with the company's holiday calendar, a slow
 * lookup cached per company. Prints the schedule sorted by send time, then how often the slow
 * lookup really ran. A second run shows the cache is shared by every run of the engine's store.
 * Checks that the calendar was looked up once per company, then never, and that the schedule
 * is sorted and never sends on a weekend or company holiday. Exits 1 when a run fails or a
 * check does not hold.
 *
 *   pnpm --filter ./examples/per-contact-schedule start
 */
import assert from 'node:assert/strict'
import { createEngine } from '@stepline/core'
import { holidayCalendars, perContactSchedule, sampleContacts } from './workflow'

const contacts = sampleContacts(20)
const now = '2025-12-31T15:00:00.000Z'
const engine = createEngine({ workflows: [perContactSchedule] })

// Count, per run, how the `holidays` step of each contact got its calendar.
const calendar = new Map<string, { ran: number; cached: number }>()
engine.on('step:completed', (e) => {
  if (e.step !== 'holidays') return
  const c = calendar.get(e.runId) ?? { ran: 0, cached: 0 }
  if (e.cached) c.cached++
  else c.ran++
  calendar.set(e.runId, c)
})

console.log(`Planning the next send for ${contacts.length} contacts of ${new Set(contacts.map((c) => c.companyId)).size} companies, as of ${now}\n`)

let failed = false
const lookupsPerRun: number[] = []
for (const label of ['first run', 'second run']) {
  const before = [...holidayCalendars.lookups.values()].reduce((a, b) => a + b, 0)
  const run = await engine.start(perContactSchedule, { contacts, now })
  const outcome = await run.outcome()
  if (outcome.status !== 'completed') {
    console.log(`${label}: ${outcome.status}: ${outcome.error?.name}: ${outcome.error?.message}`)
    failed = true
    break
  }
  const lookups = [...holidayCalendars.lookups.values()].reduce((a, b) => a + b, 0) - before
  const stats = calendar.get(run.id) ?? { ran: 0, cached: 0 }
  lookupsPerRun.push(lookups)
  if (label === 'first run') {
    console.log(`${'send at (UTC)'.padEnd(16)}  ${'contact'.padEnd(12)} ${'channel'.padEnd(7)}  ${'local time'.padEnd(32)}  skipped`)
    for (const s of outcome.output!) {
      console.log(`${s.sendAt.slice(0, 16).replace('T', ' ')}  ${s.contactId} ${s.name.padEnd(8)} ${s.channel.padEnd(7)}  ${s.local.padEnd(32)}  ${s.skipped.join(', ') || '—'}`)
    }
    console.log('')
  }
  console.log(
    `${label}: holiday calendar looked up ${lookups} time(s) for ${stats.ran + stats.cached} contacts ` +
      `(${stats.cached} cache hits); wall time ${outcome.summary.wallMs.toFixed(0)} ms, ` +
      `parallel efficiency ${outcome.summary.parallelEfficiency.toFixed(2)}×`,
  )
  const schedule = outcome.output!
  assert.deepEqual(schedule.map((s) => s.contactId).sort(), contacts.map((c) => c.id).sort(), 'one send per contact')
  assert.deepEqual(schedule.map((s) => s.sendAt), schedule.map((s) => s.sendAt).sort(), 'the schedule should be sorted by send time')
  for (const s of schedule) assert.match(s.local, /^(Mon|Tue|Wed|Thu|Fri) (?!2026-01-01 )/, `${s.contactId} should not get a send on a weekend or New Year's Day: ${s.local}`)
}

await engine.close()

assert.equal(failed, false, 'both runs should complete')
const companies = new Set(contacts.map((c) => c.companyId)).size
assert.deepEqual(lookupsPerRun, [companies, 0], 'the slow lookup should run once per company in the first run, never in the second')
console.log('\nchecks passed')

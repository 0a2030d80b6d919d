import { createEngine, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'

declare function nextMonday9am(tz: string): Date

const trial = workflow<{ email: string; tz: string }>('trial')
  .step('welcome', (ctx) => ({ to: ctx.payload.email }))
  .sleep('trial-period', '14d') // ≥ parkAfter at the top level: parks as `sleeping`
  .step('reminder', (ctx) => `reminded ${ctx.last.to}`)
  .sleepUntil('monday', (ctx) => nextMonday9am(ctx.payload.tz)) // or a Date, an ISO string, ms
  .step('report', () => 'weekly report sent')

const engine = createEngine({ store: sqliteStore(), workflows: [trial] })
engine.on('run:parked', (e) => console.log(`${e.runId} ${e.status} until ${new Date(e.wakeAt ?? 0).toISOString()}`))

const run = await engine.start(trial, { email: 'ada@example.com', tz: 'Europe/Paris' })
// Soon after: the row says `sleeping` with its wake time; no timer or memory is held for it.
console.log((await engine.getRun(run.id))?.status) // 'sleeping'
// `run.result()` still resolves when the run wakes in this engine, or in the next process.

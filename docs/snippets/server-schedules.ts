import { createEngine, workflow } from '@stepline/core'
import { schedule, startSchedules } from '@stepline/server'
import { sqliteStore } from '@stepline/store-sqlite'

const report = workflow<{ scheduledAt: string }>('weekday-report', {
  triggers: [
    schedule('0 9 * * 1-5', { timezone: 'America/New_York' }), // 09:00 New York time, Monday to Friday
    schedule('*/30 * * * * *', { payload: { scheduledAt: 'every 30 s' } }), // 6 fields: seconds first
  ],
}).step('send', (ctx) => `report of ${ctx.payload.scheduledAt}`)

const engine = createEngine({ store: sqliteStore(), workflows: [report] })
const schedules = startSchedules(engine, [report], {
  catchUp: 10, // default: after a restart, start at most the 10 most recent missed ticks per schedule
  onError: (error, tick) => console.error(`${tick.workflowId}[${tick.index}] at ${tick.at.toISOString()}`, error),
  // clock: a Clock (default: the engine's clock, so a fake clock given to createEngine drives the ticks too)
})

await schedules.settled() // missed ticks (if any) have started their runs
for (const s of schedules.next()) console.log(s.workflowId, s.index, s.cron, s.at.toISOString())

schedules.stop() // cancels every timer; runs already started go on
await engine.close()

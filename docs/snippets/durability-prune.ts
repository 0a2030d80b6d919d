import { createEngine, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'

const report = workflow<{ month: string }>('report')
  .step('fetch-rates', () => ({ eur: 1.08 }), { cache: { key: (ctx) => ctx.payload.month, ttl: '1d' } })
  .step('render', (ctx) => `rates: ${ctx.last.eur}`)

const engine = createEngine({ store: sqliteStore(), workflows: [report] })

// One run per month, however many processes on this file ask for it.
await engine.run(report, { month: '2026-01' }, { idempotencyKey: 'report-2026-01' })

// Keep 30 days of finished runs: deletes completed, failed and cancelled runs that ended
// before then, with their journals and events. Running and parked runs are never pruned.
const deleted = await engine.prune({ olderThan: '30d' })
console.log(`${deleted} runs pruned`)

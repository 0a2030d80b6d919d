import { createEngine, workflow } from '@stepline/core'
import { z } from 'zod'

const order = workflow('process-order', { input: z.object({ orderId: z.string(), total: z.number() }) })
  .parallel('fetch', {
    customer: async (ctx) => ({ id: ctx.payload.orderId, tier: 'gold' as const }),
    stock: async () => ({ available: true }),
  })
  .if('large', (ctx) => ctx.payload.total > 1000)
    .step('review', () => 'reviewed by a human')
  .else()
    .step('auto-approve', () => 'approved by rule')
  .endIf()
  .step('charge', (ctx) => ({ charged: ctx.payload.total, approval: ctx.last }), {
    retry: { attempts: 3, backoff: 'exponential', delay: '200ms' },
    timeout: '5s',
  })

const engine = createEngine()
const run = await engine.start(order, { orderId: 'o-1', total: 120 })
console.log(await run.result()) // { charged: 120, approval: 'approved by rule' }
console.log((await run.outcome()).summary.criticalPath) // e.g. [ 'fetch[stock]', 'auto-approve', 'charge' ]

import { createEngine, isSteplineError, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'

const refund = workflow<{ orderId: string; amount: number }>('refund')
  .step('request', (ctx) => ({ orderId: ctx.payload.orderId, amount: ctx.payload.amount }))
  // Parks as `waiting`; the event's data is the node's output.
  .waitForEvent<'approval', { approved: boolean; by: string }>('approval', {
    timeout: '2d', // no event in 2 days: the node fails with WAIT_TIMEOUT …
    match: (ctx) => ctx.payload.orderId, // … a key engine.send({ match }) finds the run by
  })
  .onError(() => ({ approved: false, by: 'timeout' })) // … unless .onError() recovers it
  .step('pay-out', (ctx) => (ctx.last.approved ? `refunded by ${ctx.last.by}` : 'refund declined'))

const engine = createEngine({ store: sqliteStore(), workflows: [refund] })
const run = await engine.start(refund, { orderId: 'o-42', amount: 30 })

// By run id (kept if the run has not reached its wait yet) …
await engine.send(run.id, 'approval', { approved: true, by: 'maria' })
// … or, in place of the line above, to every run waiting with a match key:
// const { runIds } = await engine.send({ match: 'o-42' }, 'approval', { approved: true, by: 'maria' })
console.log(await run.result()) // 'refunded by maria'

try {
  await engine.send(run.id, 'approval', { approved: false, by: 'bob' })
} catch (error) {
  if (isSteplineError(error, 'EVENT_ALREADY_DELIVERED')) console.log('answered once already')
  if (isSteplineError(error, 'EVENT_NOT_AWAITED')) console.log('the run no longer waits (finished or timed out)')
}

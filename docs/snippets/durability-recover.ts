import { createEngine, isSteplineError, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'

const order = workflow<{ orderId: string }>('order')
  .step('reserve', (ctx) => ({ orderId: ctx.payload.orderId }))
  .step('ship', (ctx) => `shipped ${ctx.last.orderId}`)

// recover: false — nothing resumes until you say so (e.g. after a health check passed).
const engine = createEngine({
  store: sqliteStore({ path: './.stepline/orders.db' }),
  workflows: [order],
  recover: false, // default true: resume on createEngine and on each register()
  parkAfter: '1s', // default: top-level sleeps at least this long park the run
  resumeChangedPlans: false, // default: a run whose plan changed fails with PLAN_CHANGED
})

engine.on('run:resumed', (e) => console.log(`resumed ${e.runId}, attempt ${e.attempt}`))

// Resumes every unfinished run of a registered workflow and arms the wake-up of parked runs.
for (const handle of await engine.recover()) {
  const outcome = await handle.outcome()
  if (isSteplineError(outcome.error, 'PLAN_CHANGED')) {
    // Started under another definition: finish it by hand, or deploy with resumeChangedPlans: true.
    console.log(outcome.error.message)
  }
}

import { createEngine, workflow } from '@stepline/core'

const slow = workflow('slow').step('wait', (ctx) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, 60_000, 'done')
  ctx.signal.addEventListener('abort', () => (clearTimeout(t), reject(ctx.signal.reason)))
}))

const engine = createEngine({ workflows: [slow] })
const run = await engine.start(slow)

// A handle's events are this run's only; attached right after `start`, it sees them all.
run.on('step:started', (e) => console.log(`started ${e.step}`))
run.on('run:cancelled', (e) => console.log(`cancelled: ${e.error.message}`))

console.log(await run.cancel('customer withdrew')) // true (or engine.cancel(run.id, 'customer withdrew')); false once it has ended
const outcome = await run.outcome()
console.log(outcome.status) // 'cancelled'

// Any run in the store, by id.
console.log((await engine.getRun(run.id))?.status) // 'cancelled'
console.log((await engine.listRuns({ workflowId: 'slow', status: ['cancelled'], limit: 10 })).length) // 1
console.log(await engine.getSteps(run.id)) // []: the step in flight was aborted, not journaled
console.log(engine.handle(run.id).id === run.id) // true

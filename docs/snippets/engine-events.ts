import { createEngine, workflow } from '@stepline/core'

const wf = workflow<string[]>('events')
  .forEach('each', (ctx) => ctx.last, (item, flow) => flow.step('upper', () => item.toUpperCase()), { concurrency: 4 })

const engine = createEngine({ workflows: [wf] })
engine
  .on('run:started', (e) => console.log(`run ${e.runId} of ${e.workflowId}, attempt ${e.attempt}`))
  .on('step:started', (e) => console.log(`  ${e.step}${e.item ? `[${e.item.join('][')}]` : ''} started`))
  .on('step:completed', (e) => console.log(`  ${e.step} ok in ${e.durationMs.toFixed(1)} ms${e.cached ? ' (cached)' : ''}`))
  .on('step:retrying', (e) => console.log(`  ${e.step} attempt ${e.attempt} failed: ${e.error.message}; next in ${e.delayMs} ms`))
  .on('step:failed', (e) => console.log(`  ${e.step} failed after ${e.attempt} attempts: ${e.error.message}`))
  .on('step:skipped', (e) => console.log(`  ${e.step} skipped`))
  .on('run:progress', (e) => console.log(`  ${e.step}: ${e.done}/${e.total} (${e.itemsPerSecond.toFixed(0)}/s)`))
  .on('log', (e) => console.log(`  [${e.level}] ${e.message}`))
  .on('run:completed', (e) => console.log(`done in ${e.summary.wallMs.toFixed(1)} ms`, e.output))
  .on('run:failed', (e) => console.log(`failed: ${e.error.message}`))
  .on('run:cancelled', (e) => console.log(`cancelled: ${e.error.message}`))

await engine.run(wf, ['a', 'b', 'c'])

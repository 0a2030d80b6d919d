import { createEngine, workflow } from '@stepline/core'

const order = workflow<{ id: string }>('order')
  .parallel('fetch', {
    user: async () => ({ name: 'Ada' }),
    total: async () => 42,
  })
  .step('receipt', (ctx) => `${ctx.last.user.name} pays ${ctx.last.total}`)

const engine = createEngine({ workflows: [order] })

// Listen on the engine to see every event of every run, from the very first one.
engine.on('step:completed', (e) => console.log(`✓ ${e.step} (${e.durationMs.toFixed(1)} ms)`))

// `start` returns a handle at once; `run` (above) is `start` + `result()`.
const handle = await engine.start(order, { id: 'o-1' })
console.log(handle.id, handle.status) // 'mip8k2x1c4f0a9zq3k7w1' 'running'

const receipt = await handle.result() // the output; rejects with the run's error
console.log(receipt) // 'Ada pays 42'

const outcome = await handle.outcome() // never rejects
console.log(outcome.status) // 'completed' | 'failed' | 'cancelled'
console.log(outcome.summary.wallMs, outcome.summary.criticalPath) // e.g. 1.2 [ 'fetch[total]', 'receipt' ]

// Start by id once registered; the payload is then `unknown`.
const again = await engine.start('order', { id: 'o-2' })
await again.result()

import { createEngine } from '@stepline/core'

const engine = createEngine({
  workers: {
    min: 0, // threads kept alive (default 0: the first cpu task starts one)
    max: 4, // most threads (default os.availableParallelism())
    idleTimeout: '30s', // an idle thread exits, down to `min` (default '30s')
    maxQueue: 1000, // tasks waiting for a thread before a step fails (default unbounded)
    resourceLimits: { maxOldGenerationSizeMb: 512 }, // per thread; exceeding it fails the step
  },
})

// One progress event per finished chunk; cpu forEach nodes also report the pool.
engine.on('run:progress', (e) => {
  if (e.pool) console.log(`${e.step}: ${e.done}/${e.total}, ${e.pool.threads} threads, ${(e.pool.utilization * 100).toFixed(0)}% busy, ${e.pool.queued} queued`)
})

await engine.close() // also ends the pool's threads

import { createEngine, inlineExecutor, memoryStore, systemClock, workflow } from '@stepline/core'

const hello = workflow<{ name: string }>('hello').step('greet', (ctx) => `Hello, ${ctx.payload.name}!`)

const engine = createEngine({
  store: memoryStore(), // the run journal (default: a new memory store)
  concurrency: 100, // steps and parallel/race branches in flight at once, across all runs
  clock: systemClock, // time for timeouts, retry waits and sleep
  executor: inlineExecutor(), // how steps run (default: plain steps inline, cpu() steps in a worker pool)
  logger: console, // also print ctx.log lines here
  workflows: [hello], // same as engine.register(hello)
})

engine.register(hello) // registering the same definition again is a no-op
console.log(engine.workflows()) // [ 'hello' ]
await engine.close()

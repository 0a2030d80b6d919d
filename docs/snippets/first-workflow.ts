import { createEngine, workflow } from '@stepline/core'
import { z } from 'zod'

// 1. Define: a typed chain of named steps. Nothing runs yet.
const greet = workflow('greet', { input: z.object({ name: z.string(), times: z.number().int().min(1) }) })
  .step('normalise', (ctx) => ctx.payload.name.trim())
  .step('shout', (ctx) => ctx.last.toUpperCase())
  .step('repeat', (ctx) => Array.from({ length: ctx.payload.times }, () => `Hello, ${ctx.last}!`))

// 2. Run: an engine holds the run journal (in memory by default) and executes runs.
const engine = createEngine()
const lines = await engine.run(greet, { name: ' Ada ', times: 2 })
//    ^? string[]
console.log(lines) // [ 'Hello, ADA!', 'Hello, ADA!' ]

import { toMermaid, workflow, type Plan } from '@stepline/core'

const order = workflow<{ total: number }>('order')
  .step('validate', (ctx) => ctx.payload)
  .parallel('fetch', [() => 'user', () => 'stock'], { maxConcurrency: 2 })
  .if('large', () => true)
    .step('review', () => 'reviewed')
  .else()
    .step('auto', () => 'auto')
  .endIf()
  .forEach('reserve', () => [1, 2], (n, flow) => flow.step('one', () => n), { concurrency: 4 })
  .race('quote', [() => 1, () => 2])
  .onError(() => 0)
  .sleep('cool-down', '10m')

const plan: Plan = order.plan()
console.log(plan.hash) // e.g. '5f0c2d0a9b1e7c44': the definition's version

// Plain data: it survives JSON unchanged.
const copy = JSON.parse(JSON.stringify(plan)) as Plan
console.log(JSON.stringify(copy) === JSON.stringify(plan)) // true

// Mermaid: paste into a ```mermaid block on GitHub, or mermaid.live.
console.log(order.toMermaid() === toMermaid(plan)) // true

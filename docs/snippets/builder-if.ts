import { workflow } from '@stepline/core'

const approval = workflow<{ total: number }>('approval')
  .step('price', (ctx) => ({ total: ctx.payload.total }))
  .if('large', (ctx) => ctx.last.total > 1000)
    .step('review', () => ({ approved: true, by: 'human' as const }))
  .elseIf('medium', (ctx) => ctx.last.total > 100)
    .step('light-review', () => ({ approved: true, by: 'model' as const }))
  .else()
    .step('auto-approve', () => ({ approved: true, by: 'rule' as const }))
  .endIf()
  .step('record', (ctx) => {
    // `ctx.last` is the union of the three branches' outputs.
    const by: 'human' | 'model' | 'rule' = ctx.last.by
    // A step declared inside a branch may not have run: its output is `T | undefined`.
    const reviewed = ctx.steps.review.output?.approved ?? false
    return { by, reviewed, status: ctx.steps.review.status } // 'completed' or 'skipped'
  })

// Without `.else()`, a run that takes no branch passes `ctx.last` through unchanged.
const optional = workflow<number>('optional')
  .if('negative', (ctx) => ctx.last < 0)
    .step('abs', (ctx) => String(-ctx.last))
  .endIf()
  .step('show', (ctx) => ctx.last) // string | number

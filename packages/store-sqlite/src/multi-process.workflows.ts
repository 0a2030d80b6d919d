// The workflows both sides of multi-process.test.ts run: the test process and its children
// (multi-process.child.mjs) register the same definitions, so they share plan hashes.
import { workflow } from '@stepline/core'

/** One step execution: which process ran which step of which run. */
export interface Exec {
  runId: string
  step: string
  pid: number
}

/**
 * `quick` (one step), `approval` (a step, a wait for the event "approval", a step) and `slow` (a
 * step that returns once `gate` resolves, then one more), telling `onExec` each step they execute.
 */
export function workflows(onExec: (exec: Exec) => void, gate: () => Promise<unknown> = () => new Promise((r) => setTimeout(r, 300))) {
  const exec = (runId: string, step: string): void => onExec({ runId, step, pid: process.pid })
  return {
    quick: workflow<{ n?: number } | undefined>('quick').step('a', (ctx) => (exec(ctx.run.id, 'a'), { n: ctx.payload?.n ?? null })),
    approval: workflow('approval')
      .step('before', (ctx) => (exec(ctx.run.id, 'before'), 'asked'))
      .waitForEvent('approval')
      .step('after', (ctx) => (exec(ctx.run.id, 'after'), { got: ctx.last, pid: process.pid })),
    slow: workflow('slow')
      .step('wait', async (ctx) => (exec(ctx.run.id, 'wait'), await gate(), 'waited'))
      .step('then', (ctx) => (exec(ctx.run.id, 'then'), 'done')),
  }
}

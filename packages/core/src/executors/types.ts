import type { StepNode } from '../plan/types'

/**
 * Carries out one step attempt. The inline executor calls the function on this thread; the
 * pool executor (for `cpu()` steps) sends it to a worker thread.
 */
export interface Executor {
  readonly name: string
  execute(node: StepNode, fn: (ctx: any) => unknown, ctx: unknown): unknown
  close?(): Promise<void>
}

import type { StepNode } from '../plan/types'
import type { CpuInput } from './cpu'
import type { PoolStats } from './pool'

/**
 * Carries out steps. The default executor runs plain steps on this thread and `cpu()` steps in
 * a worker pool; the testing package wraps it to answer mocks.
 */
export interface Executor {
  readonly name: string
  /** Runs one attempt of a step (or a `parallel`/`race` branch): its output or a promise of it. */
  execute(node: StepNode, fn: (ctx: any) => unknown, ctx: unknown): unknown
  /** Runs a chunk of a `forEach` whose body is a `cpu()` task, as one task; outputs in input order. */
  executeChunk?(node: StepNode, inputs: CpuInput[], signal: AbortSignal): Promise<unknown[]>
  /** Worker-pool utilisation, when the executor has a pool. */
  stats?(): PoolStats | undefined
  close?(): Promise<void>
}

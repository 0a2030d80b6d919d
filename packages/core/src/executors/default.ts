import { NonRetriableError, SteplineError, deserializeError, isSerializedError, isSteplineError, messageOf } from '../errors'
import type { StepNode } from '../plan/types'
import { modulePath, type CpuInput } from './cpu'
import { CpuPool, type PoolStats, type WorkerOptions } from './pool'
import type { Executor } from './types'

/**
 * The engine's default executor: plain steps run inline on this thread, `cpu()` steps in a
 * piscina worker pool made on first use.
 * @example
 * createEngine({ executor: defaultExecutor({ workers: { max: 4 } }) })
 */
export function defaultExecutor(options: { workers?: WorkerOptions } = {}): DefaultExecutor {
  return new DefaultExecutor(options.workers)
}

/** The executor `createEngine` uses unless told otherwise: see `defaultExecutor()`. */
export class DefaultExecutor implements Executor {
  readonly name = 'default'
  readonly pool: CpuPool

  constructor(workers?: WorkerOptions) {
    this.pool = new CpuPool(workers)
  }

  execute(node: StepNode, fn: (ctx: any) => unknown, ctx: any): unknown {
    if (node.cpu === undefined) return fn(ctx)
    // A buffer moved to a worker is gone from this thread, so move `last`'s buffers only when
    // no other task gets them after this one: not from a parallel/race branch (its siblings
    // share `last`), nor from an attempt that may be retried.
    const move = node.kind === 'step' && ctx.attempt >= (node.retry?.attempts ?? 1)
    return this.pool.run(node.cpu, cpuInput(node, ctx), ctx.signal, move).catch((e: unknown) => {
      throw cpuFailure(node, e)
    })
  }

  executeChunk(node: StepNode, inputs: CpuInput[], signal: AbortSignal): Promise<unknown[]> {
    return this.pool.runChunk(node.cpu!, inputs, signal).catch((e: unknown) => {
      throw cpuFailure(node, e)
    })
  }

  stats(): PoolStats | undefined {
    return this.pool.stats()
  }

  close(): Promise<void> {
    return this.pool.close()
  }
}

/** The structured-clone input a cpu task receives from a step's ctx. */
export function cpuInput(node: StepNode, ctx: { payload: unknown; last: unknown; steps: Record<string, { output?: unknown } | undefined>; item: unknown; index: number | undefined; run: CpuInput['run']; attempt: number }): CpuInput {
  const { id, workflowId, attempt } = ctx.run
  // Only what is set crosses the thread: every field is cloned for every task. The worker
  // fills in an empty `steps`.
  const input = { last: ctx.last, run: { id, workflowId, attempt }, attempt: ctx.attempt } as CpuInput
  if (node.cpu?.payload) input.payload = ctx.payload
  if (node.cpu?.steps) {
    const steps: Record<string, unknown> = {}
    for (const name of node.cpu.steps) steps[name] = ctx.steps[name]?.output
    input.steps = steps
  }
  if (ctx.index !== undefined) {
    input.item = ctx.item
    input.index = ctx.index
  }
  return input
}

/** Names the step and module; aborts (timeout, cancel) pass through unchanged. */
function cpuFailure(node: StepNode, e: unknown): unknown {
  const where = `Step "${node.name}" (cpu module ${modulePath(node.cpu!)}, export "${node.cpu!.export}")`
  // What the task threw comes as data (cpu-worker.mjs), even when it is named AbortError.
  if (isSerializedError(e)) return taskFailure(where, deserializeError(e))
  const name = (e as { name?: unknown } | null)?.name
  if (name === 'AbortError') return e
  if (name === 'DataCloneError') {
    const message = String((e as { message?: unknown }).message)
    // The pool's postMessage on this thread threw a DOMException: the input. One from the
    // worker arrives as plain data (cpu-worker.mjs): the result.
    return new SteplineError(
      'CPU_TASK_FAILED',
      e instanceof DOMException
        ? `${where}: its input (\`last\`, and the payload and step outputs it asks for) could not be sent to a worker thread: ${message} Inputs go by structured clone: no functions or symbols, and no buffer an earlier cpu task was given (it moved there).`
        : `${where}: what it returned (or threw) could not be sent back from the worker thread: ${message} Return what structured clone can copy: no functions, symbols or class instances' methods.`,
      { cause: e },
    )
  }
  return taskFailure(where, e)
}

function taskFailure(where: string, cause: unknown): SteplineError {
  const message = `${where} failed in a worker thread: ${messageOf(cause)}`
  // Retries look at this error's code, so a NonRetriableError from the task must stay one.
  if (isSteplineError(cause, 'NON_RETRIABLE')) return new NonRetriableError(message, { cause })
  return new SteplineError('CPU_TASK_FAILED', message, { cause })
}

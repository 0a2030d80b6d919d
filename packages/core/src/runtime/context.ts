import type { Logger, RunInfo } from '../builder/types'
import type { StepRecord } from '../store/types'
import type { AbortScope } from './abort-scope'
import type { Frame } from './frame'
import type { RunState } from './run-state'

/**
 * The `ctx` a step receives. A class rather than an object literal so every ctx shares one
 * shape; `signal` and `log` are built only when read.
 */
export class StepContext {
  readonly payload: unknown
  readonly last: unknown
  readonly steps: Record<string, StepRecord>
  readonly item: unknown
  readonly index: number | undefined
  readonly attempt: number
  error: Error | undefined
  readonly #run: RunState
  readonly #scope: AbortScope
  readonly #step: string
  readonly #itemKey: string

  constructor(run: RunState, frame: Frame, scope: AbortScope, attempt: number, step: string) {
    this.payload = run.payload
    this.last = frame.last
    this.steps = frame.steps
    this.item = frame.item
    this.index = frame.index
    this.attempt = attempt
    this.error = undefined
    this.#run = run
    this.#scope = scope
    this.#step = step
    this.#itemKey = frame.itemKey
  }

  /** @internal see `stepKeyOf` */
  static itemKeyOf(ctx: StepContext): string {
    return ctx.#itemKey
  }

  get run(): RunInfo {
    return this.#run.info
  }

  get signal(): AbortSignal {
    return this.#scope.signal
  }

  get log(): Logger {
    const run = this.#run
    const step = this.#step
    const write = (level: 'debug' | 'info' | 'warn' | 'error') => (message: string, data?: unknown) => {
      run.services.logger?.[level]?.(`[${run.workflowId} ${run.id} ${step}] ${message}`, data)
      if (run.listening('log')) run.emit('log', { runId: run.id, workflowId: run.workflowId, level, message, data, step })
    }
    return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') }
  }
}

/**
 * The journal key of the step an executor is asked to run: the node id plus `@i` per
 * enclosing `forEach` item. For executors that mock or record steps by key.
 * @example
 * const executor = { name: 'rec', execute: (node, fn, ctx) => (seen.push(stepKeyOf(node, ctx)), fn(ctx)) }
 */
export function stepKeyOf(node: { id: string }, ctx: unknown): string {
  if (!(ctx instanceof StepContext)) throw new TypeError('stepKeyOf: expected the ctx an executor was given')
  const itemKey = StepContext.itemKeyOf(ctx)
  return itemKey === '' ? node.id : node.id + itemKey
}

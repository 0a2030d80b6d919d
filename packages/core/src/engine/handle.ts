import { EventEmitter } from 'eventemitter3'
import type { EngineEvents } from '../events'
import type { RunStatus } from '../store/types'
import type { RunSummary } from '../runtime/summary'

/** How a run ended. Read `summary` only when you need it: it is computed on first read. */
export interface RunOutcome<TOutput = unknown> {
  runId: string
  workflowId: string
  status: 'completed' | 'failed' | 'cancelled'
  output: TOutput | undefined
  error: Error | undefined
  readonly summary: RunSummary
}

/**
 * A started run: its id, live status, result and events.
 * @example
 * const run = await engine.start(order, payload)
 * run.on('step:completed', (e) => console.log(e.step))
 * const output = await run.result()
 */
export interface RunHandle<TOutput = unknown> {
  readonly id: string
  readonly workflowId: string
  /** `queued` while waiting for a slot under the workflow's `concurrency`. */
  readonly status: RunStatus
  /** The run's output; rejects with the run's error when it failed or was cancelled. */
  result(): Promise<TOutput>
  /** Resolves when the run ends, whatever the end; never rejects. */
  outcome(): Promise<RunOutcome<TOutput>>
  /**
   * Cancels the run: no further step starts and in-flight steps see `ctx.signal` abort. Resolves
   * `true` when this call ended the run, `false` when it had already ended (completed, failed,
   * or cancelled by an earlier call).
   */
  cancel(reason?: string): Promise<boolean>
  /** Listens to this run's events only. */
  on<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this
  off<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this
}

/** What a handle needs from whoever runs (or ran) the run. */
export interface HandleSource<TOutput> {
  status(): RunStatus
  outcome(): Promise<RunOutcome<TOutput>>
  cancel(reason?: string): Promise<boolean>
  emitter(): EventEmitter<EngineEvents>
}

export class RunHandleImpl<TOutput> implements RunHandle<TOutput> {
  readonly id: string
  readonly workflowId: string
  readonly #source: HandleSource<TOutput>

  constructor(id: string, workflowId: string, source: HandleSource<TOutput>) {
    this.id = id
    this.workflowId = workflowId
    this.#source = source
  }

  get status(): RunStatus {
    return this.#source.status()
  }

  async result(): Promise<TOutput> {
    const o = await this.#source.outcome()
    if (o.status === 'completed') return o.output as TOutput
    throw o.error
  }

  outcome(): Promise<RunOutcome<TOutput>> {
    return this.#source.outcome()
  }

  cancel(reason?: string): Promise<boolean> {
    return this.#source.cancel(reason)
  }

  on<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this {
    ;(this.#source.emitter().on as (e: string, l: unknown) => unknown)(event, listener)
    return this
  }

  off<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this {
    ;(this.#source.emitter().off as (e: string, l: unknown) => unknown)(event, listener)
    return this
  }
}

import { EventEmitter } from 'eventemitter3'

function unwrap(o: RunOutcome): unknown {
  if (o.status === 'completed') return o.output
  throw o.error
}
import { CancelledError, SteplineError, serializeError } from '../errors'
import type { EngineEvents } from '../events'
import { RunState } from '../runtime/run-state'
import { summarize, type RunSummary } from '../runtime/summary'
import { runSequence } from '../runtime/walker'
import { toError } from '../runtime/step'
import type { RunStatus, StepRecord } from '../store/types'
import type { Limiter } from '../runtime/limiter'
import type { PlanNode } from '../plan/types'
import type { HandleSource, RunHandle, RunOutcome } from './handle'

/** A finished run's outcome; the summary is computed on first read. */
export class Outcome<T = unknown> implements RunOutcome<T> {
  readonly runId: string
  readonly workflowId: string
  readonly status: 'completed' | 'failed' | 'cancelled'
  readonly output: T | undefined
  readonly error: Error | undefined
  #summary: RunSummary | undefined
  readonly #nodes: readonly PlanNode[]
  readonly #records: readonly StepRecord[]
  readonly #startedAt: number
  readonly #endedAt: number

  constructor(
    runId: string,
    workflowId: string,
    status: 'completed' | 'failed' | 'cancelled',
    output: T | undefined,
    error: Error | undefined,
    nodes: readonly PlanNode[],
    records: readonly StepRecord[],
    startedAt: number,
    endedAt: number,
  ) {
    this.runId = runId
    this.workflowId = workflowId
    this.status = status
    this.output = output
    this.error = error
    this.#nodes = nodes
    this.#records = records
    this.#startedAt = startedAt
    this.#endedAt = endedAt
  }

  get summary(): RunSummary {
    return (this.#summary ??= summarize(this.#nodes, this.#records, this.#startedAt, this.#endedAt))
  }

  toJSON(): object {
    return { runId: this.runId, workflowId: this.workflowId, status: this.status, output: this.output, error: this.error && serializeError(this.error), summary: this.summary }
  }
}

/**
 * A run this engine is executing, and its handle: drives the walker, owns the run's end
 * (complete, fail, cancel, time out). One object per run rather than a handle wrapping a
 * source: runs are many and short, so what they allocate is the hot path too.
 */
export class ActiveRun implements RunHandle<unknown> {
  readonly state: RunState
  readonly #limiter: Limiter | undefined
  readonly #onEnd: (run: ActiveRun) => void
  readonly #outcome: Promise<Outcome>
  #resolve!: (o: Outcome) => void
  #disarmTimeout: (() => void) | undefined
  /** True while this run holds a slot of its workflow's run limiter. */
  holdsSlot = false

  constructor(state: RunState, limiter: Limiter | undefined, onEnd: (run: ActiveRun) => void) {
    this.state = state
    this.#limiter = limiter
    this.#onEnd = onEnd
    this.#outcome = new Promise((resolve) => (this.#resolve = resolve))
  }

  get id(): string {
    return this.state.id
  }

  get workflowId(): string {
    return this.state.workflowId
  }

  get status(): RunStatus {
    return this.state.status
  }

  result(): Promise<unknown> {
    return this.#outcome.then(unwrap)
  }

  outcome(): Promise<Outcome> {
    return this.#outcome
  }

  on<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this {
    ;(this.emitter().on as (e: string, l: unknown) => unknown)(event, listener)
    return this
  }

  off<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this {
    ;(this.emitter().off as (e: string, l: unknown) => unknown)(event, listener)
    return this
  }

  emitter(): EventEmitter<EngineEvents> {
    return (this.state.emitter ??= new EventEmitter<EngineEvents>())
  }

  /** Runs the workflow from the start (or from the journal, when `state.replay` is set). */
  async execute(): Promise<void> {
    const s = this.state
    if (s.done) return
    const { clock } = s.services
    s.status = 'running'
    s.startedAt = clock.now()
    if (s.listening('run:started')) s.emit('run:started', { runId: s.id, workflowId: s.workflowId, payload: s.payload, attempt: s.info.attempt })
    const timeoutMs = s.compiled.plan.options.timeoutMs
    if (timeoutMs !== undefined) {
      this.#disarmTimeout = clock.setTimer(() => {
        const err = new SteplineError('RUN_TIMEOUT', `Run ${s.id} of workflow "${s.workflowId}" timed out after ${timeoutMs} ms. Raise the workflow's \`timeout\` option or make its steps faster.`)
        void this.finish('failed', undefined, err)
      }, timeoutMs)
    }
    let output: unknown
    try {
      output = await runSequence(s, s.compiled.plan.nodes, s.compiled.fns, s.rootFrame())
    } catch (error) {
      return this.finish('failed', undefined, error)
    }
    return this.finish('completed', output, undefined)
  }

  async cancel(reason?: string): Promise<void> {
    return this.finish('cancelled', undefined, new CancelledError(this.state.id, reason))
  }

  /**
   * Ends the run once: journals the end, aborts in-flight work, emits, resolves the handle.
   * Synchronous when the store writes synchronously and no workflow `onError` must run.
   */
  finish(status: 'completed' | 'failed' | 'cancelled', output: unknown, error: unknown): void | Promise<void> {
    const s = this.state
    if (s.done) return
    s.done = true
    s.status = status
    s.endedAt = s.services.clock.now()
    if (s.startedAt === 0) s.startedAt = s.endedAt
    this.#disarmTimeout?.()
    const err = error === undefined ? undefined : toError(error)
    if (err !== undefined) s.scope.abort(err)
    const write = s.services.store.updateRun(s.id, {
      status,
      output,
      error: err === undefined ? undefined : serializeError(err),
      endedAt: s.endedAt,
    })
    const onError = status === 'failed' && s.compiled.plan.options.onError !== undefined
    if (write === undefined && !onError) return this.#settle(status, output, err)
    return (async () => {
      await write
      if (onError) await this.#workflowOnError(err!)
      this.#settle(status, output, err)
    })()
  }

  #settle(status: 'completed' | 'failed' | 'cancelled', output: unknown, err: Error | undefined): void {
    const s = this.state
    const outcome = new Outcome(s.id, s.workflowId, status, output, err, s.compiled.plan.nodes, s.records, s.startedAt, s.endedAt)
    if (status === 'completed' && s.listening('run:completed')) {
      s.emit('run:completed', { runId: s.id, workflowId: s.workflowId, output, summary: outcome.summary })
    } else if (status === 'failed' && s.listening('run:failed')) {
      s.emit('run:failed', { runId: s.id, workflowId: s.workflowId, error: err!, summary: outcome.summary })
    } else if (status === 'cancelled' && s.listening('run:cancelled')) {
      s.emit('run:cancelled', { runId: s.id, workflowId: s.workflowId, error: err! })
    }
    this.releaseSlot()
    this.#onEnd(this)
    this.#resolve(outcome)
  }
  /** Gives the run-limiter slot back, once, and only if this run took one. */
  releaseSlot(): void {
    if (!this.holdsSlot) return
    this.holdsSlot = false
    this.#limiter!.release()
  }

  async #workflowOnError(error: Error): Promise<void> {
    const s = this.state
    const idx = s.compiled.plan.options.onError
    if (idx === undefined) return
    try {
      await s.compiled.fns[idx]!({ error, payload: s.payload, run: s.info })
    } catch (handlerError) {
      // The run has failed already; a failing failure handler must not hide the first error.
      s.services.logger?.error?.(`[${s.workflowId} ${s.id}] workflow onError threw: ${toError(handlerError).message}`)
      if (s.listening('log')) {
        s.emit('log', { runId: s.id, workflowId: s.workflowId, level: 'error', message: 'workflow onError threw', data: toError(handlerError) })
      }
    }
  }
}

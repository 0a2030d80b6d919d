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
import { Parked } from '../runtime/park'
import type { PoolStats } from '../executors/pool'

/** What a run needs from its engine around its end. */
export interface RunHooks {
  /** The run ended here with `outcome`. */
  end(run: ActiveRun, outcome: Outcome): void
  /** The run parked; `resolvers` are callers waiting for its outcome. */
  park(run: ActiveRun, parked: Parked, resolvers: ((o: Outcome) => void)[] | undefined): Promise<void> | void
  /** The outcome of a parked run, once some run of this engine resumes and ends it. */
  waitParked(runId: string): Promise<Outcome>
  /** The status of the run if this engine executes it now. */
  activeStatus(runId: string): RunStatus | undefined
  /** Cancels a run that is not in memory (parked). */
  cancel(runId: string, reason?: string): Promise<boolean>
}
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
  readonly #pool: PoolStats | undefined

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
    pool?: PoolStats,
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
    this.#pool = pool
  }

  get summary(): RunSummary {
    return (this.#summary ??= summarize(this.#nodes, this.#records, this.#startedAt, this.#endedAt, this.#pool))
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
  readonly #hooks: RunHooks
  /** Set once the run ended here. */
  #outcome: Outcome | undefined
  /** Callers of `outcome()` while the run goes on; made only when someone asks. */
  #resolvers: ((o: Outcome) => void)[] | undefined
  #parked = false
  #disarmTimeout: (() => void) | undefined
  /** True while this run holds a slot of its workflow's run limiter. */
  holdsSlot = false

  constructor(state: RunState, limiter: Limiter | undefined, hooks: RunHooks) {
    this.state = state
    this.#limiter = limiter
    this.#hooks = hooks
  }

  get id(): string {
    return this.state.id
  }

  get workflowId(): string {
    return this.state.workflowId
  }

  get status(): RunStatus {
    if (this.#parked && this.#outcome === undefined) return this.#hooks.activeStatus(this.state.id) ?? this.state.status
    return this.state.status
  }

  result(): Promise<unknown> {
    return this.outcome().then(unwrap)
  }

  outcome(): Promise<Outcome> {
    if (this.#outcome !== undefined) return Promise.resolve(this.#outcome)
    // A parked run is no longer here: whichever run resumes it resolves this.
    if (this.#parked) {
      return this.#hooks.waitParked(this.state.id).then((o) => {
        this.#outcome = o
        this.state.status = o.status
        return o
      })
    }
    return new Promise((resolve) => (this.#resolvers ??= []).push(resolve))
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
    // A resumed run keeps the start it had: its summary spans the whole run, parked time included.
    if (s.startedAt === 0) s.startedAt = clock.now()
    if (s.replay === undefined && s.listening('run:started')) s.emit('run:started', { runId: s.id, workflowId: s.workflowId, payload: s.payload, attempt: s.info.attempt })
    const timeoutMs = s.compiled.plan.options.timeoutMs
    if (timeoutMs !== undefined) {
      // The run's time limit counts from its first start, parked time included.
      const timedOut = (): void => {
        const err = new SteplineError('RUN_TIMEOUT', `Run ${s.id} of workflow "${s.workflowId}" timed out after ${timeoutMs} ms. Raise the workflow's \`timeout\` option or make its steps faster.`)
        void this.finish('failed', undefined, err)
      }
      const left = s.startedAt + timeoutMs - clock.now()
      if (left <= 0) return timedOut()
      this.#disarmTimeout = clock.setTimer(timedOut, left)
    }
    let output: unknown
    try {
      output = await runSequence(s, s.compiled.plan.nodes, s.compiled.fns, s.rootFrame())
    } catch (error) {
      if (error instanceof Parked) return this.#park(error)
      return this.finish('failed', undefined, error)
    }
    return this.finish('completed', output, undefined)
  }

  /** True when this call ended the run; false when it had ended already. */
  async cancel(reason?: string): Promise<boolean> {
    if (this.#parked) return this.#hooks.cancel(this.state.id, reason)
    if (this.state.done) return false
    await this.finish('cancelled', undefined, new CancelledError(this.state.id, reason))
    return true
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
    let write: void | Promise<void>
    try {
      write = s.services.store.updateRun(s.id, { status, output, error: err === undefined ? undefined : serializeError(err), endedAt: s.endedAt })
    } catch (storeError) {
      return this.#unstorable(status, storeError)
    }
    const onError = status === 'failed' && s.compiled.plan.options.onError !== undefined
    if (write === undefined && !onError) return this.#settle(status, output, err)
    return (async () => {
      try {
        await write
      } catch (storeError) {
        return this.#unstorable(status, storeError)
      }
      if (onError) await this.#workflowOnError(err!)
      this.#settle(status, output, err)
    })()
  }

  /**
   * The store refused the run's end. A completed run whose output JSON cannot hold fails with
   * why (recorded). An end the store cannot record at all (it is down) ends it unrecorded.
   */
  #unstorable(status: string, storeError: unknown): void | Promise<void> {
    if (status !== 'completed') return this.#endUnrecorded(storeError)
    this.state.done = false
    return this.finish('failed', undefined, storeError)
  }

  /**
   * The store could not record how the run ended or parked (it is down): the run still ends
   * here, failed with the store's error, and whoever waits on it hears so. Its row stays
   * unfinished, so recovery resumes it once the store works again.
   */
  #endUnrecorded(storeError: unknown): void {
    const s = this.state
    const err = toError(storeError)
    this.#parked = false
    s.status = 'failed'
    s.endedAt = s.services.clock.now()
    s.scope.abort(err)
    this.#settle('failed', undefined, err)
  }

  #settle(status: 'completed' | 'failed' | 'cancelled', output: unknown, err: Error | undefined): void {
    const s = this.state
    const outcome = new Outcome(s.id, s.workflowId, status, output, err, s.compiled.plan.nodes, s.records, s.startedAt, s.endedAt, s.compiled.hasCpu ? s.services.executor.stats?.() : undefined)
    if (status === 'completed' && s.listening('run:completed')) {
      s.emit('run:completed', { runId: s.id, workflowId: s.workflowId, output, summary: outcome.summary })
    } else if (status === 'failed' && s.listening('run:failed')) {
      s.emit('run:failed', { runId: s.id, workflowId: s.workflowId, error: err!, summary: outcome.summary })
    } else if (status === 'cancelled' && s.listening('run:cancelled')) {
      s.emit('run:cancelled', { runId: s.id, workflowId: s.workflowId, error: err! })
    }
    this.releaseSlot()
    this.#outcome = outcome
    const resolvers = this.#resolvers
    this.#resolvers = undefined
    if (resolvers) for (const r of resolvers) r(outcome)
    this.#hooks.end(this, outcome)
  }

  /** Lets go of the run: its row says `sleeping`/`waiting`; the engine wakes it later. */
  #park(p: Parked): Promise<void> | void {
    const s = this.state
    if (s.done) return
    // A run with a time limit also wakes at its deadline, to fail with RUN_TIMEOUT.
    const limit = s.compiled.plan.options.timeoutMs
    if (limit !== undefined) {
      const deadline = s.startedAt + limit
      if (p.wakeAt === undefined || p.wakeAt > deadline) p = new Parked(p.status, deadline, p.waitFor)
    }
    s.done = true
    s.status = p.status
    this.#parked = true
    this.#disarmTimeout?.()
    this.releaseSlot()
    const resolvers = this.#resolvers
    this.#resolvers = undefined
    // Callers already waiting on this handle: whoever ends the run resolves them and this handle.
    const onEnd = resolvers && ((o: Outcome): void => {
      this.#outcome = o
      s.status = o.status
      for (const r of resolvers) r(o)
    })
    const parking = this.#hooks.park(this, p, onEnd && [onEnd])
    return parking instanceof Promise ? parking.catch((e: unknown) => this.#endUnrecorded(e)) : parking
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

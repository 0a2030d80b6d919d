import { EventEmitter } from 'eventemitter3'
import type { CompiledWorkflow } from '../plan/compile'
import type { EngineEventName, EngineEventPayload, EngineEvents } from '../events'
import type { Executor } from '../executors/types'
import type { RunStatus, StepRecord, Store, RunRecord } from '../store/types'
import type { Logger, RunInfo } from '../builder/types'
import { AbortScope } from './abort-scope'
import type { Clock } from './clock'
import type { Limiter } from './limiter'
import type { Frame } from './frame'

/** What the runtime needs from the engine: the ports and the shared limits. */
export interface RuntimeServices {
  store: Store
  clock: Clock
  executor: Executor
  events: EventEmitter<EngineEvents>
  /** Steps in flight per engine; undefined when unlimited. */
  stepLimiter: Limiter | undefined
  logger: Partial<Logger> | undefined
  /** A top-level sleep at least this long parks the run instead of holding a timer. */
  parkAfterMs: number
}

/** The mutable state of one run while this process executes it. */
export class RunState {
  readonly id: string
  readonly workflowId: string
  readonly attempt: number
  #info: RunInfo | undefined
  readonly payload: unknown
  readonly compiled: CompiledWorkflow
  readonly services: RuntimeServices
  readonly scope = new AbortScope()
  /** `ctx.steps` at the workflow level. */
  readonly steps: Record<string, StepRecord> = {}
  /** Every journal entry this run wrote or replayed, in order, for the summary. */
  readonly records: StepRecord[] = []
  /** Entries of an earlier attempt of this run, replayed instead of re-run. */
  replay: Map<string, StepRecord> | undefined
  status: RunStatus = 'queued'
  /** Set once the run has a final status; later results are not written. */
  done = false
  startedAt = 0
  endedAt = 0
  emitter: EventEmitter<EngineEvents> | undefined

  constructor(record: RunRecord, compiled: CompiledWorkflow, services: RuntimeServices) {
    this.id = record.id
    this.workflowId = record.workflowId
    this.payload = record.payload
    this.compiled = compiled
    this.services = services
    this.attempt = record.attempt
    this.startedAt = record.startedAt ?? 0
    this.status = record.status
  }

  /** `ctx.run`: made on first read, since most steps never look. */
  get info(): RunInfo {
    return (this.#info ??= { id: this.id, workflowId: this.workflowId, attempt: this.attempt })
  }

  rootFrame(): Frame {
    return { last: this.payload, steps: this.steps, item: undefined, index: undefined, itemKey: '', itemPath: undefined, scope: this.scope }
  }

  listening(event: EngineEventName): boolean {
    return this.services.events.listenerCount(event) > 0 || (this.emitter !== undefined && this.emitter.listenerCount(event) > 0)
  }

  /** Tells the engine's and the handle's listeners; one that throws is reported, and the run goes on. */
  emit<E extends EngineEventName>(event: E, payload: EngineEventPayload<E>): void {
    try {
      ;(this.services.events.emit as (e: string, p: unknown) => boolean)(event, payload)
    } catch (e) {
      this.#listenerThrew(event, e)
    }
    if (this.emitter === undefined) return
    try {
      ;(this.emitter.emit as (e: string, p: unknown) => boolean)(event, payload)
    } catch (e) {
      this.#listenerThrew(event, e)
    }
  }

  #listenerThrew(event: EngineEventName, error: unknown): void {
    const message = `[${this.workflowId} ${this.id}] a "${event}" listener threw: ${error instanceof Error ? error.message : String(error)}`
    const report = this.services.logger?.error
    if (report) report.call(this.services.logger, message, error)
    else console.error(message, error)
  }

  /** Journals an entry; resolves once it is durable. Entries after the run ended are dropped. */
  record(rec: StepRecord): void | Promise<void> {
    if (this.done) return
    this.records.push(rec)
    return this.services.store.recordStep(this.id, rec)
  }
}

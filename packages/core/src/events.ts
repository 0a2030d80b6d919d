import type { RunSummary } from './runtime/summary'
import type { PoolStats } from './executors/pool'

interface RunEvent {
  runId: string
  workflowId: string
}

/** Fields of every `step:*` event. */
export interface StepEvent extends RunEvent {
  step: string
  nodeId: string
  /** Journal key: node id plus `@i` per enclosing `forEach` item. */
  key: string
  /** `forEach` item index path, outermost first. */
  item?: number[] | undefined
  attempt: number
}

/** What a log line from `ctx.log` carries. */
export interface LogEvent extends RunEvent {
  level: 'debug' | 'info' | 'warn' | 'error'
  message: string
  data?: unknown
  step?: string | undefined
}

/**
 * Events of an engine (`engine.on`) and of one run (`handle.on`). Nothing is computed for an
 * event nobody listens to.
 * @example
 * engine.on('step:retrying', (e) => console.log(`${e.step} retry in ${e.delayMs} ms`))
 */
export interface EngineEvents {
  'run:started': (e: RunEvent & { payload: unknown; attempt: number }) => void
  'step:started': (e: StepEvent) => void
  'step:completed': (e: StepEvent & { output: unknown; durationMs: number; cached?: boolean; recovered?: boolean }) => void
  'step:failed': (e: StepEvent & { error: Error; durationMs: number }) => void
  'step:retrying': (e: StepEvent & { error: Error; delayMs: number; nextAttempt: number }) => void
  'step:skipped': (e: StepEvent) => void
  'run:progress': (e: RunEvent & { step: string; done: number; total: number; itemsPerSecond: number; item?: number[] | undefined; pool?: PoolStats | undefined }) => void
  'run:completed': (e: RunEvent & { output: unknown; summary: RunSummary }) => void
  'run:failed': (e: RunEvent & { error: Error; summary: RunSummary }) => void
  'run:cancelled': (e: RunEvent & { error: Error }) => void
  /** The run parked in the store: a long `sleep`, or a `waitForEvent`. */
  'run:parked': (e: RunEvent & { status: 'sleeping' | 'waiting'; wakeAt: number | undefined; event: string | undefined }) => void
  /** The run resumed from its journal: after a crash, a sleep, or an event. */
  'run:resumed': (e: RunEvent & { attempt: number }) => void
  log: (e: LogEvent) => void
}

/** The name of an engine event. */
export type EngineEventName = keyof EngineEvents
/** The payload of the engine event `E`. */
export type EngineEventPayload<E extends EngineEventName> = Parameters<EngineEvents[E]>[0]

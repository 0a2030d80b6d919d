import type { SerializedError } from '../errors'
import type { StepStatus } from '../builder/types'

export type RunStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled'

/** One run as the store keeps it. */
export interface RunRecord {
  id: string
  workflowId: string
  /** Hash of the plan the run started under; resuming under another plan is refused. */
  planHash: string
  status: RunStatus
  payload: unknown
  output?: unknown
  error?: SerializedError | undefined
  idempotencyKey?: string | undefined
  /** 1 for a fresh run; +1 each time it is resumed. */
  attempt: number
  createdAt: number
  startedAt?: number | undefined
  endedAt?: number | undefined
}

/** What a journal entry is the result of. `fn` is a `parallel`/`race` branch; `decision` the branch an `.if()` took. */
export type StepKind = 'step' | 'fn' | 'parallel' | 'race' | 'branch' | 'decision' | 'forEach' | 'sleep'

/**
 * One journal entry: the final result of one node (for one `forEach` item). Written before the
 * next node starts; on resume, an entry with status `completed` or `skipped` is replayed
 * instead of run again.
 */
export interface StepRecord {
  /** `nodeId`, plus `@i` per enclosing `forEach` item (`n3.body.n0@17`). Unique in a run. */
  key: string
  nodeId: string
  name: string
  kind: StepKind
  status: StepStatus
  output?: unknown
  /** An `Error` in memory; durable stores keep it serialised and rebuild it on read. */
  error?: Error | undefined
  /** True when `.onError` produced the output after a failure. */
  recovered?: boolean | undefined
  attempts: number
  startedAt: number
  endedAt: number
  durationMs: number
  /** `forEach` item index path, outermost first. */
  item?: number[] | undefined
}

export interface ListRunsQuery {
  workflowId?: string
  status?: RunStatus | RunStatus[]
  limit?: number
  /** Return runs created before this run (for paging, newest first). */
  before?: string
}

/** A value or a promise of it: in-process stores answer synchronously and the runtime skips the await. */
export type MaybePromise<T> = T | Promise<T>

/**
 * The run journal. The runtime only talks to this; memory, SQLite and Postgres implement it.
 * Sync results are allowed and preferred where the backend is in-process: the runtime awaits
 * only what is a promise.
 */
export interface Store {
  /**
   * Creates `run`, unless a run with the same `idempotencyKey` exists: then returns that one
   * with `created: false`. Must be atomic: two concurrent calls with one key create one run.
   */
  createRun(run: RunRecord): MaybePromise<{ run: RunRecord; created: boolean }>
  updateRun(id: string, patch: Partial<Omit<RunRecord, 'id' | 'workflowId'>>): MaybePromise<void>
  /** Stores the entry, replacing one with the same key. Durable once the call has settled. */
  recordStep(runId: string, step: StepRecord): MaybePromise<void>
  getRun(id: string): MaybePromise<RunRecord | undefined>
  /** Newest first. */
  listRuns(query?: ListRunsQuery): MaybePromise<RunRecord[]>
  /** The journal of a run, in the order entries were first written. */
  getSteps(runId: string): MaybePromise<StepRecord[]>
  getCache(key: string, now: number): MaybePromise<{ value: unknown } | undefined>
  setCache(key: string, value: unknown, expiresAt: number | undefined): MaybePromise<void>
  close?(): MaybePromise<void>
}

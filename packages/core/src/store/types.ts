import type { SerializedError } from '../errors'
import type { StepStatus } from '../builder/types'

/**
 * `sleeping` and `waiting` runs are parked: nothing of them is in memory, only their row; the
 * engine resumes them from the journal when `wakeAt` passes or their event arrives.
 */
export type RunStatus = 'queued' | 'running' | 'sleeping' | 'waiting' | 'completed' | 'failed' | 'cancelled'

/** Statuses a run never leaves. */
export const FINISHED_STATUSES: readonly RunStatus[] = ['completed', 'failed', 'cancelled']

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
  /** A parked run wakes at this time (a sleep's end, a wait's timeout). */
  wakeAt?: number | undefined
  /** A `waiting` run waits for this event (and, when set, this match key). */
  waitFor?: { event: string; match?: string | undefined } | undefined
}

/** An event sent to a run with `engine.send`. */
export interface EventRecord {
  runId: string
  name: string
  data: unknown
  sentAt: number
}

/** What a journal entry is the result of. `fn` is a `parallel`/`race` branch; `decision` the branch an `.if()` took. */
export type StepKind = 'step' | 'fn' | 'parallel' | 'race' | 'branch' | 'decision' | 'forEach' | 'sleep' | 'waitForEvent'

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

/** Filters and paging of `listRuns`: newest first, `before` a run id to page from. */
export interface ListRunsQuery {
  workflowId?: string
  status?: RunStatus | RunStatus[]
  limit?: number
  /**
   * Return runs created before this run (for paging, newest first). A run id the store does not
   * hold (pruned since the last page, or never made) is `RUN_NOT_FOUND`: starting over from the
   * newest would hand a pager the same runs again, forever.
   */
  before?: string
}

/** How `Store.createRun` is called. */
export interface CreateRunOptions {
  /**
   * The caller chose `run.id` (`engine.start(…, { runId })`), so a run may have it already,
   * written by another process a moment ago: check it at once, as for an idempotency key.
   */
  idChosen?: boolean
}

/** A value or a promise of it: in-process stores answer synchronously and the runtime skips the await. */
export type MaybePromise<T> = T | Promise<T>

/**
 * The run journal. The runtime only talks to this; memory and SQLite implement it, and so can a store of your own.
 * Sync results are allowed and preferred where the backend is in-process: the runtime awaits
 * only what is a promise.
 */
export interface Store {
  /**
   * Creates `run`, unless a run with the same `idempotencyKey` or the same id exists: then
   * returns that one with `created: false`. Must be atomic: two concurrent calls with one key,
   * or one id, create one run, also from two processes on one database. A run whose id exists is
   * never overwritten. Ids the engine makes are unique; `options.idChosen` says the caller chose
   * this one, so a store that defers writes (group commit) must check it now.
   */
  createRun(run: RunRecord, options?: CreateRunOptions): MaybePromise<{ run: RunRecord; created: boolean }>
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

  /**
   * Moves a run from one of `from` to `to` (with `patch`) only if its status is still one of
   * `from`; true when this call made the change. Two engines racing to resume one parked run:
   * exactly one gets true.
   */
  transitionRun(id: string, from: readonly RunStatus[], to: RunStatus, patch?: Partial<Omit<RunRecord, 'id' | 'workflowId' | 'status'>>): MaybePromise<boolean>
  /** Parked runs whose `wakeAt` is at or before `now`, soonest first (runs due at one time: oldest run first). */
  dueRuns(now: number, limit: number): MaybePromise<RunRecord[]>
  /** The soonest `wakeAt` of any parked run, to arm one timer for all of them. */
  nextWakeAt(): MaybePromise<number | undefined>
  /** Runs `waiting` for `event` with this match key, oldest run first. */
  waitingFor(event: string, match: string): MaybePromise<RunRecord[]>
  /**
   * Stores an event for a run, once per (run, name): false when one was stored already, which
   * makes delivery exactly-once even when it is sent twice.
   */
  putEvent(event: EventRecord): MaybePromise<boolean>
  getEvent(runId: string, name: string): MaybePromise<EventRecord | undefined>
  /** Deletes finished runs that ended before `endedBefore`, with their journal and events; returns how many. */
  pruneRuns(endedBefore: number): MaybePromise<number>
  close?(): MaybePromise<void>
}

import type { StandardSchemaV1 } from '@standard-schema/spec'
import type { Duration } from '../duration'

/** Retry policy of a step. `attempts` counts the first try: `attempts: 3` is 1 try + 2 retries. */
export interface RetryOptions<TCtx = any> {
  attempts: number
  /** `'fixed'` waits `delay` each time; `'exponential'` doubles it per retry. Default `'exponential'`. */
  backoff?: 'fixed' | 'exponential'
  /** First wait between attempts. Default `'100ms'`. */
  delay?: Duration
  /** Upper bound on any wait. */
  maxDelay?: Duration
  /** `true` = full jitter (wait uniformly in [0, delay]); a number in [0, 1] randomises that fraction. */
  jitter?: boolean | number
  /** Return false to stop retrying on this error. `NonRetriableError` never retries. */
  retryIf?: (error: unknown, ctx: TCtx) => boolean
}

/** Options of `.step()`. */
export interface StepOptions<TCtx = any> {
  retry?: RetryOptions<TCtx> | number
  /** Per attempt. On expiry `ctx.signal` aborts and the attempt fails with `StepTimeoutError`. */
  timeout?: Duration
  /** Reuse an earlier output stored under the same key (for `ttl`), instead of running the step. */
  cache?: { key: (ctx: TCtx) => string; ttl?: Duration }
}

/** Options of `.parallel()`. */
export interface ParallelOptions {
  /** How many branches run at once. Default: all. */
  maxConcurrency?: number
  /** For the whole node; on expiry every branch's `ctx.signal` aborts. */
  timeout?: Duration
}

/** Options of `.race()`. */
export interface RaceOptions {
  timeout?: Duration
}

/** Options of `.forEach()`. */
export interface ForEachOptions {
  /** How many items (or chunks) run at once. Default 1. */
  concurrency?: number
  /** Items are scheduled this many at a time: a chunk is one unit of concurrency and one progress event. */
  chunkSize?: number
}

/** Options of `workflow(id, options)`. */
export interface WorkflowOptions<TInput = unknown> {
  /** Any Standard Schema (zod, valibot, arktype): the payload is validated before a run exists. */
  input?: StandardSchemaV1<unknown, TInput>
  /** Runs of this workflow executing at once per engine; excess runs queue. Default unlimited. */
  concurrency?: number
  /** Time limit of one run from its first start (parked time included); on expiry the run fails with RUN_TIMEOUT and in-flight steps see `ctx.signal` abort. */
  timeout?: Duration
  /** Runs when a run fails (after node-level handlers): notify, clean up. The run stays failed. */
  onError?: (ctx: { error: Error; payload: TInput; run: { id: string; workflowId: string } }) => unknown
  description?: string
  /**
   * How runs of this workflow are started besides code: `webhook(…)`, `schedule(…)` from
   * `@stepline/server`. Plain data; the engine stores them and the server acts on them. Not
   * part of the plan or its hash.
   */
  triggers?: readonly TriggerSpec[]
}

/** A trigger as the server reads it: a `kind` and its settings. */
export interface TriggerSpec {
  readonly kind: string
  readonly [setting: string]: unknown
}

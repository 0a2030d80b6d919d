import { StepError, StepTimeoutError, isSteplineError, messageOf } from '../errors'
import type { AnyFn } from '../builder/ops'
import type { BranchFn, RetryPlan, StepNode } from '../plan/types'
import type { StepKind, StepRecord } from '../store/types'
import { AbortScope } from './abort-scope'
import { delay } from './clock'
import { StepContext } from './context'
import { keyOf, type Frame } from './frame'
import { FanOutScope, branchAborted } from './node-common'
import type { RunState } from './run-state'

type Fns = readonly (AnyFn | undefined)[]

/** A leaf of the plan: a step, or one branch of a `parallel`/`race` (which has no options). */
export type Leaf = StepNode | (BranchFn & Partial<Pick<StepNode, 'retry' | 'timeoutMs' | 'cache' | 'onError' | 'cpu'>>)

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function'
}

/** True when `e` is an abort (of `reason`, a sibling, a cancel) rather than a failure of its own. */
export function isAbortLike(e: unknown, reason?: unknown): boolean {
  if (e === reason && reason !== undefined) return true
  const name = (e as { name?: unknown } | null)?.name
  const code = (e as { code?: unknown } | null)?.code
  if (name === 'AbortError' || code === 'BRANCH_ABORTED' || code === 'RUN_CANCELLED' || code === 'RUN_TIMEOUT') return true
  return e instanceof StepError && e.cause !== undefined && isAbortLike(e.cause, reason)
}

export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(typeof e === 'string' ? e : `Non-error thrown: ${String(e)}`)
}

/**
 * Runs one leaf to its final result: replay from the journal, cache, attempts with retry and
 * timeout, then the journal write. This is the per-step hot path. A step without options
 * whose function returns a plain value, under a store that writes synchronously, completes
 * synchronously: the output comes back as a value, not a promise. Otherwise a promise.
 */
export function runLeaf(run: RunState, node: Leaf, fns: Fns, frame: Frame, kind: StepKind): unknown {
  if (run.replay !== undefined || node.cache !== undefined || node.timeoutMs !== undefined || run.services.stepLimiter !== undefined) {
    return runLeafInFull(run, node, fns, frame, kind)
  }
  const key = keyOf(node.id, frame)
  const startedAt = run.services.clock.now()
  if (run.listening('step:started')) startedEvent(run, node, frame, key)
  const ctx = new StepContext(run, frame, frame.scope, 1, node.name)
  let output: unknown
  try {
    output = run.services.executor.execute(node as StepNode, fns[node.fn]!, ctx)
  } catch (error) {
    return attempts(run, node, fns, frame, kind, key, startedAt, 1, error, undefined)
  }
  if (isThenable(output)) return settle(run, node, fns, frame, kind, key, startedAt, output)
  // A result that arrives after its scope was aborted (cancel, lost race, failed sibling) is discarded.
  if (frame.scope.aborted) return Promise.reject(frame.scope.reason)
  return finish(run, node, frame, kind, key, startedAt, output, 1, false)
}

async function settle(
  run: RunState, node: Leaf, fns: Fns, frame: Frame, kind: StepKind, key: string, startedAt: number, pending: PromiseLike<unknown>,
): Promise<unknown> {
  let output: unknown
  try {
    output = await pending
  } catch (error) {
    return attempts(run, node, fns, frame, kind, key, startedAt, 1, error, undefined)
  }
  if (frame.scope.aborted) throw frame.scope.reason
  return finish(run, node, frame, kind, key, startedAt, output, 1, false)
}

function startedEvent(run: RunState, node: Leaf, frame: Frame, key: string): void {
  run.emit('step:started', { runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath, attempt: 1 })
}

/** The general path: replay, cache, step limiter, timeout. */
async function runLeafInFull(run: RunState, node: Leaf, fns: Fns, frame: Frame, kind: StepKind): Promise<unknown> {
  const key = keyOf(node.id, frame)
  if (run.replay !== undefined) {
    const old = run.replay.get(key)
    if (old !== undefined && old.status === 'completed') {
      if (kind !== 'fn') frame.steps[node.name] = old
      run.records.push(old)
      return old.output
    }
  }
  const startedAt = run.services.clock.now()
  if (run.listening('step:started')) startedEvent(run, node, frame, key)
  let cacheKey: string | undefined
  if (node.cache !== undefined) {
    try {
      cacheKey = `${run.workflowId}\u0000${node.name}\u0000${String(fns[node.cache.key]!(new StepContext(run, frame, frame.scope, 1, node.name)))}`
    } catch (error) {
      // The step has reported its start: a cache key it cannot compute is its failure (no attempt made).
      return fail(run, node, frame, kind, key, startedAt, error, 0)
    }
    let hit: { value: unknown } | undefined
    try {
      const read = run.services.store.getCache(cacheKey, startedAt)
      hit = isThenable(read) ? await read : read
    } catch (error) {
      // As for a key it cannot compute: a cache it cannot read fails the step (no attempt made).
      return fail(run, node, frame, kind, key, startedAt, error, 0)
    }
    // Cancelled (or timed out) while the cache was read: neither a hit nor a run of `fn` follows.
    if (frame.scope.aborted) throw frame.scope.reason
    if (hit !== undefined) return finish(run, node, frame, kind, key, startedAt, hit.value, 0, true)
  }
  return attempts(run, node, fns, frame, kind, key, startedAt, 0, undefined, cacheKey)
}

const NO_ERROR = Symbol('no error')

/**
 * Attempts after `done` attempts were made; `error` is how the last one failed (or NO_ERROR /
 * undefined when `done` is 0). Retries with backoff, then journals the final result.
 */
async function attempts(
  run: RunState, node: Leaf, fns: Fns, frame: Frame, kind: StepKind, key: string, startedAt: number,
  done: number, error: unknown, cacheKey: string | undefined,
): Promise<unknown> {
  const { clock } = run.services
  const maxAttempts = node.retry?.attempts ?? 1
  let lastError: unknown = done === 0 ? NO_ERROR : error
  for (let attempt = done; ; ) {
    if (lastError !== NO_ERROR) {
      // Failing because the scope was aborted is the abort; failing for its own reason is kept.
      if (frame.scope.aborted && isAbortLike(lastError, frame.scope.reason)) throw frame.scope.reason
      const failed = lastError
      lastError = NO_ERROR
      let again = false
      if (!frame.scope.aborted && attempt < maxAttempts) {
        try {
          again = retryable(node.retry!, failed, new StepContext(run, frame, frame.scope, attempt, node.name), fns)
        } catch (retryIfError) {
          // A `retryIf` that throws ends the step: it fails with what `retryIf` threw.
          return fail(run, node, frame, kind, key, startedAt, retryIfError, attempt)
        }
      }
      if (!again) return fail(run, node, frame, kind, key, startedAt, failed, attempt)
      const delayMs = backoff(node.retry!, attempt)
      if (run.listening('step:retrying')) {
        run.emit('step:retrying', {
          runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath,
          attempt, error: toError(failed), delayMs, nextAttempt: attempt + 1,
        })
      }
      await delay(clock, delayMs, frame.scope.signal)
    }
    attempt++
    const limiter = run.services.stepLimiter
    if (limiter !== undefined) {
      const wait = limiter.acquire()
      if (wait !== undefined) {
        await wait
        // Cancelled, timed out or aborted while it waited for a slot: it must not start.
        if (frame.scope.aborted) {
          limiter.release()
          throw frame.scope.reason
        }
      }
    }
    const scope = node.timeoutMs === undefined ? frame.scope : new AbortScope(frame.scope)
    const ctx = new StepContext(run, frame, scope, attempt, node.name)
    let output: unknown
    try {
      output = node.timeoutMs === undefined ? run.services.executor.execute(node as StepNode, fns[node.fn]!, ctx) : withTimeout(run, node, fns[node.fn]!, ctx, scope, node.timeoutMs)
      if (isThenable(output)) output = await output
    } catch (e) {
      lastError = e
      continue
    } finally {
      if (scope !== frame.scope) scope.dispose()
      limiter?.release()
    }
    if (frame.scope.aborted) throw frame.scope.reason
    const result = finish(run, node, frame, kind, key, startedAt, output, attempt, false)
    if (cacheKey !== undefined) {
      try {
        const write = run.services.store.setCache(cacheKey, output, node.cache!.ttlMs === undefined ? undefined : clock.now() + node.cache!.ttlMs)
        if (isThenable(write)) await write
      } catch (error) {
        // The step completed and is journaled: a cache the store could not save to costs the next
        // run a call of `fn`, not this run its step. Said as a warning.
        cacheNotSaved(run, node.name, error)
      }
    }
    return result
  }
}

function finish(
  run: RunState, node: Leaf, frame: Frame, kind: StepKind, key: string, startedAt: number,
  output: unknown, attempts: number, cached: boolean,
): unknown {
  const endedAt = run.services.clock.now()
  const rec: StepRecord = {
    key, nodeId: node.id, name: node.name, kind, status: 'completed', output, attempts,
    startedAt, endedAt, durationMs: endedAt - startedAt, item: frame.itemPath,
  }
  // Branches of a parallel/race are journaled but are not named steps of `ctx.steps`.
  if (kind !== 'fn') frame.steps[node.name] = rec
  else if (frame.scope instanceof FanOutScope && frame.scope.race !== undefined) {
    // The race is decided here, before the write and not when it settles: of branches finishing
    // in the same tick, only the first is journaled, whether the store writes synchronously or not.
    frame.scope.close(branchAborted('Race', frame.scope.race, `branch ${String((node as BranchFn).key)} won`))
  }
  const written = run.record(rec)
  if (written === undefined) {
    if (run.listening('step:completed')) completedEvent(run, node, frame, key, output, rec.durationMs, attempts, cached)
    return output
  }
  // As for every node: `step:completed` once the entry is durable (a listener may read the journal).
  return written.then(() => {
    if (!run.done && run.listening('step:completed')) completedEvent(run, node, frame, key, output, rec.durationMs, attempts, cached)
    return output
  })
}

function completedEvent(run: RunState, node: Leaf, frame: Frame, key: string, output: unknown, durationMs: number, attempts: number, cached: boolean): void {
  run.emit('step:completed', {
    runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath,
    attempt: attempts, output, durationMs, cached,
  })
}

async function fail(
  run: RunState, node: Leaf, frame: Frame, kind: StepKind, key: string, startedAt: number, error: unknown, attempts: number,
): Promise<never> {
  // A branch failing after its node moved on (a race won, a node timeout) is discarded like a
  // late success: not journaled, not reported.
  if (kind === 'fn' && frame.scope instanceof FanOutScope && frame.scope.closed) throw frame.scope.reason
  const err = new StepError(node.name, error, attempts, isSteplineError(error, 'STEP_TIMEOUT') ? 'STEP_TIMEOUT' : 'STEP_FAILED')
  // A node with `.onError` writes its entry once the handler has decided.
  if (node.onError === undefined) await recordFailure(run, node, frame, kind, key, startedAt, error, attempts)
  throw err
}

/**
 * A node fails with `error` after it reported its start: journaled and reported, unless its
 * `.onError` decides (walker.ts writes the entry then). Rejects with `error`.
 */
export async function failNode(run: RunState, node: { id: string; name: string; onError?: number }, frame: Frame, kind: StepKind, startedAt: number, error: unknown): Promise<never> {
  if (node.onError === undefined) await recordFailure(run, node, frame, kind, keyOf(node.id, frame), startedAt, error, 1)
  throw error
}

export async function recordFailure(
  run: RunState, node: { id: string; name: string }, frame: Frame, kind: StepKind, key: string,
  startedAt: number, error: unknown, attempts: number,
): Promise<void> {
  const endedAt = run.services.clock.now()
  const rec: StepRecord = {
    key, nodeId: node.id, name: node.name, kind, status: 'failed', error: toError(error), attempts,
    startedAt, endedAt, durationMs: endedAt - startedAt, item: frame.itemPath,
  }
  if (kind !== 'fn') frame.steps[node.name] = rec
  await run.record(rec)
  // The run ended before this failure (run.record dropped the entry) or while it was written:
  // no event follows the run's last.
  if (run.done) return
  if (run.listening('step:failed')) {
    run.emit('step:failed', {
      runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath,
      attempt: attempts, error: rec.error!, durationMs: rec.durationMs,
    })
  }
}

function withTimeout(run: RunState, node: Leaf, fn: AnyFn, ctx: StepContext, scope: AbortScope, ms: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const cancel = run.services.clock.setTimer(() => {
      const e = new StepTimeoutError(node.name, ms)
      scope.abort(e)
      reject(e)
    }, ms)
    let out: unknown
    try {
      out = run.services.executor.execute(node as StepNode, fn, ctx)
    } catch (e) {
      cancel()
      return reject(e)
    }
    Promise.resolve(out).then(
      (v) => (cancel(), resolve(v)),
      (e) => (cancel(), reject(e)),
    )
  })
}

function retryable(retry: RetryPlan, error: unknown, ctx: StepContext, fns: Fns): boolean {
  if (isSteplineError(error, 'NON_RETRIABLE')) return false
  if (retry.retryIf === undefined) return true
  return Boolean(fns[retry.retryIf]!(error, ctx))
}

/** Wait before attempt `attempt + 1`. */
export function backoff(retry: RetryPlan, attempt: number): number {
  let ms = retry.backoff === 'fixed' ? retry.delayMs : retry.delayMs * 2 ** (attempt - 1)
  if (retry.maxDelayMs !== undefined) ms = Math.min(ms, retry.maxDelayMs)
  if (retry.jitter > 0) ms = ms * (1 - retry.jitter) + Math.random() * ms * retry.jitter
  return ms
}

/** A step's output the cache could not keep: a `log` event and the engine's logger, at level warn. */
function cacheNotSaved(run: RunState, step: string, error: unknown): void {
  const message = `step "${step}": its output was not saved to the cache (${messageOf(error)}); the step completed, and the next run with this key calls it again`
  run.services.logger?.warn?.(`[${run.workflowId} ${run.id} ${step}] ${message}`, error)
  if (run.listening('log')) run.emit('log', { runId: run.id, workflowId: run.workflowId, level: 'warn', message, data: error, step })
}

import { StepError, StepTimeoutError, isSteplineError } from '../errors'
import type { AnyFn } from '../builder/ops'
import type { BranchFn, RetryPlan, StepNode } from '../plan/types'
import type { StepKind, StepRecord } from '../store/types'
import { AbortScope } from './abort-scope'
import { delay } from './clock'
import { StepContext } from './context'
import { keyOf, type Frame } from './frame'
import type { RunState } from './run-state'

type Fns = readonly (AnyFn | undefined)[]

/** A leaf of the plan: a step, or one branch of a `parallel`/`race` (which has no options). */
export type Leaf = StepNode | (BranchFn & Partial<Pick<StepNode, 'retry' | 'timeoutMs' | 'cache' | 'onError' | 'cpu'>>)

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function'
}

export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(typeof e === 'string' ? e : `Non-error thrown: ${String(e)}`)
}

/**
 * Runs one leaf to its final result: replay from the journal, cache, attempts with retry and
 * timeout, then the journal write. This is the per-step hot path: options that are absent
 * cost a property check, and a step that returns a plain value is never wrapped in a promise
 * beyond this function's own.
 */
export async function runLeaf(run: RunState, node: Leaf, fns: Fns, frame: Frame, kind: StepKind): Promise<unknown> {
  const key = keyOf(node.id, frame)
  if (run.replay !== undefined) {
    const old = run.replay.get(key)
    if (old !== undefined && old.status === 'completed') {
      frame.steps[node.name] = old
      run.records.set(key, old)
      return old.output
    }
  }
  const { clock } = run.services
  const startedAt = clock.now()
  if (run.listening('step:started')) {
    run.emit('step:started', { runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath, attempt: 1 })
  }
  const fn = fns[node.fn]!

  let cacheKey: string | undefined
  if (node.cache !== undefined) {
    cacheKey = `${run.workflowId}\u0000${node.name}\u0000${String(fns[node.cache.key]!(new StepContext(run, frame, frame.scope, 1, node.name)))}`
    let hit = run.services.store.getCache(cacheKey, startedAt)
    if (isThenable(hit)) hit = await hit
    if (hit !== undefined) return finish(run, node, frame, kind, key, startedAt, hit.value, 0, true)
  }

  const maxAttempts = node.retry?.attempts ?? 1
  for (let attempt = 1; ; attempt++) {
    const scope = node.timeoutMs === undefined ? frame.scope : new AbortScope(frame.scope)
    const ctx = new StepContext(run, frame, scope, attempt, node.name)
    const limiter = run.services.stepLimiter
    if (limiter !== undefined) {
      const wait = limiter.acquire()
      if (wait !== undefined) await wait
    }
    let output: unknown
    try {
      output = node.timeoutMs === undefined ? run.services.executor.execute(node as StepNode, fn, ctx) : withTimeout(run, node, fn, ctx, scope, node.timeoutMs)
      if (isThenable(output)) output = await output
    } catch (error) {
      if (scope !== frame.scope) scope.dispose()
      limiter?.release()
      if (frame.scope.aborted) throw frame.scope.reason
      if (attempt < maxAttempts && retryable(node.retry!, error, ctx, fns)) {
        const delayMs = backoff(node.retry!, attempt)
        if (run.listening('step:retrying')) {
          run.emit('step:retrying', {
            runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath,
            attempt, error: toError(error), delayMs, nextAttempt: attempt + 1,
          })
        }
        await delay(clock, delayMs, frame.scope.signal)
        continue
      }
      return fail(run, node, frame, kind, key, startedAt, error, attempt)
    }
    if (scope !== frame.scope) scope.dispose()
    limiter?.release()
    // A result that arrives after its scope was aborted (cancel, lost race, failed sibling) is discarded.
    if (frame.scope.aborted) throw frame.scope.reason
    const done = finish(run, node, frame, kind, key, startedAt, output, attempt, false)
    if (cacheKey !== undefined) {
      const write = run.services.store.setCache(cacheKey, output, node.cache!.ttlMs === undefined ? undefined : clock.now() + node.cache!.ttlMs)
      if (isThenable(write)) await write
    }
    return done
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
  frame.steps[node.name] = rec
  const written = run.record(rec)
  if (run.listening('step:completed')) {
    run.emit('step:completed', {
      runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath,
      attempt: attempts, output, durationMs: rec.durationMs, cached,
    })
  }
  return written === undefined ? output : written.then(() => output)
}

async function fail(
  run: RunState, node: Leaf, frame: Frame, kind: StepKind, key: string, startedAt: number, error: unknown, attempts: number,
): Promise<never> {
  const err = new StepError(node.name, error, attempts, isSteplineError(error, 'STEP_TIMEOUT') ? 'STEP_TIMEOUT' : 'STEP_FAILED')
  // A node with `.onError` writes its entry once the handler has decided.
  if (node.onError === undefined) await recordFailure(run, node, frame, kind, key, startedAt, error, attempts)
  throw err
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
  frame.steps[node.name] = rec
  await run.record(rec)
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

import { SteplineError, StepTimeoutError } from '../errors'
import type { PlanNode } from '../plan/types'
import type { StepKind, StepRecord } from '../store/types'
import { AbortScope } from './abort-scope'
import { keyOf, type Frame } from './frame'
import type { RunState } from './run-state'

/** What every node kind shares: its journal entry, its replay, its events, its timeout. */

export function kindOf(node: PlanNode): StepKind {
  return node.kind
}

/** Journals a container node's result and exposes it in `ctx.steps`. */
export async function finishNode(run: RunState, node: PlanNode, frame: Frame, startedAt: number, output: unknown, attempts = 1): Promise<unknown> {
  const endedAt = run.services.clock.now()
  const key = keyOf(node.id, frame)
  const rec: StepRecord = {
    key, nodeId: node.id, name: node.name, kind: kindOf(node), status: 'completed', output, attempts,
    startedAt, endedAt, durationMs: endedAt - startedAt, item: frame.itemPath,
  }
  frame.steps[node.name] = rec
  const w = run.record(rec)
  if (w !== undefined) await w
  if (run.listening('step:completed')) {
    run.emit('step:completed', {
      runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath,
      attempt: 1, output, durationMs: rec.durationMs,
    })
  }
  return output
}

/** The journal entry of a finished node from an earlier attempt of this run, if any. */
export function replayed(run: RunState, node: PlanNode, frame: Frame): StepRecord | undefined {
  if (run.replay === undefined) return undefined
  const key = keyOf(node.id, frame)
  const old = run.replay.get(key)
  if (old === undefined || old.status !== 'completed') return undefined
  frame.steps[node.name] = old
  run.records.push(old)
  return old
}

export function startedEvent(run: RunState, node: PlanNode, frame: Frame): void {
  if (run.listening('step:started')) {
    run.emit('step:started', { runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key: keyOf(node.id, frame), item: frame.itemPath, attempt: 1 })
  }
}

/** Arms a node-level timeout that aborts `scope`; returns its disarm function. */
export function armTimeout(run: RunState, node: PlanNode & { timeoutMs?: number }, scope: AbortScope, onTimeout: (e: Error) => void): (() => void) | undefined {
  if (node.timeoutMs === undefined) return undefined
  const ms = node.timeoutMs
  return run.services.clock.setTimer(() => {
    const e = new StepTimeoutError(node.name, ms)
    scope.abort(e)
    onTimeout(e)
  }, ms)
}

/**
 * Starts a `parallel` or `race`: its journal entry when an earlier attempt finished it,
 * otherwise its start time, the scope its branches are aborted through and their frame.
 */
export function beginFanOut(run: RunState, node: PlanNode, frame: Frame): { done: StepRecord } | { startedAt: number; scope: AbortScope; branchFrame: Frame } {
  const done = replayed(run, node, frame)
  if (done) return { done }
  const startedAt = run.services.clock.now()
  startedEvent(run, node, frame)
  const scope = new AbortScope(frame.scope)
  return { startedAt, scope, branchFrame: { ...frame, scope } }
}

export function branchAborted(kind: string, name: string, why: string): SteplineError {
  return new SteplineError('BRANCH_ABORTED', `${kind} "${name}": ${why}`)
}

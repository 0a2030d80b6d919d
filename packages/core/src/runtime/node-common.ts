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
  // The run may have ended while the entry was written: no event follows the run's last.
  if (!run.done && run.listening('step:completed')) {
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
  if (node.kind === 'parallel' || node.kind === 'race' || node.kind === 'branch' || node.kind === 'forEach') {
    restoreInside(run, node, frame.itemKey, frame.steps)
  }
  return old
}

/**
 * The entries inside a node replayed whole, as if it had run: back into the run's records (the
 * summary counts them) and, for the cases of an `.if()`, into `ctx.steps` (`steps`; undefined
 * inside a `forEach` item, whose own `ctx.steps` is gone).
 */
function restoreInside(run: RunState, node: PlanNode, itemKey: string, steps: Record<string, StepRecord> | undefined): void {
  const replay = run.replay!
  switch (node.kind) {
    case 'parallel':
    case 'race':
      for (const b of node.branches) {
        const rec = replay.get(b.id + itemKey)
        if (rec !== undefined) run.records.push(rec)
      }
      return
    case 'branch': {
      const decision = replay.get(`${node.id}${itemKey}:when`)
      if (decision !== undefined) run.records.push(decision)
      for (const c of node.cases) restoreNodes(run, c.nodes, itemKey, steps)
      if (node.otherwise) restoreNodes(run, node.otherwise.nodes, itemKey, steps)
      return
    }
    case 'forEach': {
      const items = replay.get(node.id + itemKey)?.output
      const n = Array.isArray(items) ? items.length : 0
      for (let i = 0; i < n; i++) restoreNodes(run, node.body, `${itemKey}@${i}`, undefined)
      return
    }
  }
}

function restoreNodes(run: RunState, nodes: readonly PlanNode[], itemKey: string, steps: Record<string, StepRecord> | undefined): void {
  for (const n of nodes) {
    const rec = run.replay!.get(n.id + itemKey)
    if (rec === undefined) continue
    if (steps !== undefined) steps[n.name] = rec
    run.records.push(rec)
    restoreInside(run, n, itemKey, steps)
  }
}

export function startedEvent(run: RunState, node: PlanNode, frame: Frame): void {
  if (run.listening('step:started')) {
    run.emit('step:started', { runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key: keyOf(node.id, frame), item: frame.itemPath, attempt: 1 })
  }
}

/**
 * Arms a node-level timeout that closes `scope` (a race already won is left alone); returns its
 * disarm function.
 */
export function armTimeout(run: RunState, node: PlanNode & { timeoutMs?: number }, scope: FanOutScope, onTimeout: (e: Error) => void): (() => void) | undefined {
  if (node.timeoutMs === undefined) return undefined
  const ms = node.timeoutMs
  return run.services.clock.setTimer(() => {
    if (scope.closed) return
    const e = new StepTimeoutError(node.name, ms)
    scope.close(e)
    onTimeout(e)
  }, ms)
}

/**
 * Starts a `parallel` or `race`: its journal entry when an earlier attempt finished it,
 * otherwise its start time, the scope its branches are aborted through and their frame.
 */
export function beginFanOut(run: RunState, node: PlanNode, frame: Frame): { done: StepRecord } | { startedAt: number; scope: FanOutScope; branchFrame: Frame } {
  const done = replayed(run, node, frame)
  if (done) return { done }
  const startedAt = run.services.clock.now()
  startedEvent(run, node, frame)
  const scope = new FanOutScope(frame.scope, node.kind === 'race' ? node.name : undefined)
  return { startedAt, scope, branchFrame: { ...frame, scope } }
}

export function branchAborted(kind: string, name: string, why: string): SteplineError {
  return new SteplineError('BRANCH_ABORTED', `${kind} "${name}": ${why}`)
}

/**
 * The scope of a `parallel`'s or `race`'s branches. It is `closed` once the node's result no
 * longer waits for them (a race won, a node timeout): whatever a branch ends with after that,
 * success or failure, is discarded (not journaled, not reported), as the node has moved on.
 */
export class FanOutScope extends AbortScope {
  /** The race's name; undefined for a `parallel`. */
  readonly race: string | undefined
  closed = false

  constructor(parent: AbortScope, race: string | undefined) {
    super(parent)
    this.race = race
  }

  close(reason: unknown): void {
    this.closed = true
    this.abort(reason)
  }
}

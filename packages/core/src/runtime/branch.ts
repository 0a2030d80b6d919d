import type { AnyFn } from '../builder/ops'
import type { BranchNode, PlanNode } from '../plan/types'
import type { StepRecord } from '../store/types'
import { StepContext } from './context'
import { keyOf, type Frame } from './frame'
import { finishNode, kindOf, replayed } from './node-common'
import { Parked } from './park'
import type { RunState } from './run-state'
import { failNode, isAbortLike } from './step'
import { runSequence } from './walker'

type Fns = readonly (AnyFn | undefined)[]

export async function runBranch(run: RunState, node: BranchNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return old.output
  const startedAt = run.services.clock.now()
  const decisionKey = `${keyOf(node.id, frame)}:when`
  const decided = run.replay?.get(decisionKey)
  let taken = decided?.output as number | undefined
  // The summary finds the case taken through this entry, replayed or not.
  if (decided !== undefined) run.records.push(decided)
  if (taken === undefined) {
    taken = node.otherwise ? node.cases.length : -1
    try {
      for (let i = 0; i < node.cases.length; i++) {
        const c = node.cases[i]!
        let v: unknown = fns[c.when]!(new StepContext(run, frame, frame.scope, 1, c.name))
        if (v instanceof Promise) v = await v
        if (v) {
          taken = i
          break
        }
      }
    } catch (error) {
      // A condition that throws is the node's failure: no case runs, none is skipped.
      if (frame.scope.aborted && isAbortLike(error, frame.scope.reason)) throw frame.scope.reason
      return failNode(run, node, frame, 'branch', startedAt, error)
    }
    const at = run.services.clock.now()
    const takenName = taken === -1 ? '(none)' : taken === node.cases.length ? 'else' : node.cases[taken]!.name
    const w = run.record({
      key: decisionKey, nodeId: node.id, name: takenName, kind: 'decision', status: 'completed', output: taken, attempts: 1,
      startedAt, endedAt: at, durationMs: at - startedAt, item: frame.itemPath,
    })
    if (w !== undefined) await w
  }
  const sequences = node.cases.map((c) => c.nodes)
  if (node.otherwise) sequences.push(node.otherwise.nodes)
  for (let i = 0; i < sequences.length; i++) {
    if (i !== taken) await skipAll(run, sequences[i]!, frame)
  }
  let output = frame.last
  if (taken !== -1) {
    try {
      output = await runSequence(run, sequences[taken]!, fns, frame)
    } catch (error) {
      // A case that fails fails the `.if()` node with its error, journaled after the failed step's
      // own entry (as `parallel`/`forEach` are). Parking, cancels and run timeouts are not failures.
      if (error instanceof Parked || frame.scope.aborted) throw error
      return failNode(run, node, frame, 'branch', startedAt, error)
    }
  }
  return finishNode(run, node, frame, startedAt, output)
}

/** Journals every node of a branch not taken as `skipped` (not the insides of a `forEach` body). */
export async function skipAll(run: RunState, nodes: readonly PlanNode[], frame: Frame): Promise<void> {
  for (const node of nodes) {
    const key = keyOf(node.id, frame)
    const old = run.replay?.get(key)
    if (old?.status === 'skipped') {
      // Skipped by an earlier attempt of this run: journaled already, but `ctx.steps` needs it.
      frame.steps[node.name] = old
      run.records.push(old)
    } else {
      const at = run.services.clock.now()
      const rec: StepRecord = {
        key, nodeId: node.id, name: node.name, kind: kindOf(node), status: 'skipped', output: undefined, attempts: 0,
        startedAt: at, endedAt: at, durationMs: 0, item: frame.itemPath,
      }
      frame.steps[node.name] = rec
      const w = run.record(rec)
      if (w !== undefined) await w
      // The run may have ended while the entry was written: no event follows the run's last.
      if (!run.done && run.listening('step:skipped')) {
        run.emit('step:skipped', { runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath, attempt: 0 })
      }
    }
    if (node.kind === 'branch') {
      for (const c of node.cases) await skipAll(run, c.nodes, frame)
      if (node.otherwise) await skipAll(run, node.otherwise.nodes, frame)
    }
  }
}

import type { AnyFn } from '../builder/ops'
import { StepError } from '../errors'
import type { PlanNode } from '../plan/types'
import type { StepRecord } from '../store/types'
import { runBranch } from './branch'
import { StepContext } from './context'
import { runForEach } from './for-each'
import { keyOf, type Frame } from './frame'
import { kindOf } from './node-common'
import { runParallel, runRace } from './parallel'
import { Parked } from './park'
import type { RunState } from './run-state'
import { recordFailure, runLeaf, toError } from './step'
import { runSleep, runWait } from './waits'

type Fns = readonly (AnyFn | undefined)[]

/** Runs nodes one after another; returns the last one's output. */
export async function runSequence(run: RunState, nodes: readonly PlanNode[], fns: Fns, frame: Frame): Promise<unknown> {
  for (let i = 0; i < nodes.length; i++) {
    if (frame.scope.aborted) throw frame.scope.reason
    let out = runNode(run, nodes[i]!, fns, frame)
    if (out instanceof Promise) out = await out
    frame.last = out
  }
  return frame.last
}

/** A node's output, or a promise of it (a plain step that completed synchronously gives a value). */
function runNode(run: RunState, node: PlanNode, fns: Fns, frame: Frame): unknown {
  return node.onError === undefined ? execute(run, node, fns, frame) : recoverable(run, node, fns, frame)
}

function execute(run: RunState, node: PlanNode, fns: Fns, frame: Frame): unknown {
  switch (node.kind) {
    case 'step':
      return runLeaf(run, node, fns, frame, 'step')
    case 'parallel':
      return runParallel(run, node, fns, frame)
    case 'race':
      return runRace(run, node, fns, frame)
    case 'branch':
      return runBranch(run, node, fns, frame)
    case 'forEach':
      return runForEach(run, node, fns, frame)
    case 'sleep':
      return runSleep(run, node, fns, frame)
    case 'waitForEvent':
      return runWait(run, node, fns, frame)
  }
}

/** Node-level `.onError`: the handler's return value becomes the node's output. */
async function recoverable(run: RunState, node: PlanNode, fns: Fns, frame: Frame): Promise<unknown> {
  const startedAt = run.services.clock.now()
  const input = frame.last
  try {
    return await execute(run, node, fns, frame)
  } catch (error) {
    // Parking, cancels and run timeouts stop the run; they are not the node's failure to recover.
    if (error instanceof Parked || frame.scope.aborted) throw error
    // An `.if()` runs its case in this frame, so `frame.last` may now be an output from inside it.
    frame.last = input
    const cause = node.kind === 'step' && error instanceof StepError ? toError(error.cause) : toError(error)
    const ctx = new StepContext(run, frame, frame.scope, 1, node.name)
    ctx.error = cause
    const key = keyOf(node.id, frame)
    let output: unknown
    try {
      output = await fns[node.onError!]!(ctx)
    } catch (handlerError) {
      await recordFailure(run, node, frame, kindOf(node), key, startedAt, handlerError, 1)
      throw handlerError
    }
    // Cancelled (or timed out) while the handler ran: its value is discarded like a step's.
    if (frame.scope.aborted) throw frame.scope.reason
    const endedAt = run.services.clock.now()
    const rec: StepRecord = {
      key, nodeId: node.id, name: node.name, kind: kindOf(node), status: 'completed', output, error: cause, recovered: true,
      attempts: error instanceof StepError && node.kind === 'step' ? error.attempts : 1, startedAt, endedAt, durationMs: endedAt - startedAt, item: frame.itemPath,
    }
    frame.steps[node.name] = rec
    await run.record(rec)
    // The run may have ended while the entry was written: no event follows the run's last.
    if (!run.done && run.listening('step:completed')) {
      run.emit('step:completed', {
        runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath,
        attempt: rec.attempts, output, durationMs: rec.durationMs, recovered: true,
      })
    }
    return output
  }
}

import type { AnyFn } from '../builder/ops'
import { PlanError, SteplineError } from '../errors'
import type { PlanNode, SleepNode, WaitForEventNode } from '../plan/types'
import { delay } from './clock'
import { StepContext } from './context'
import { keyOf, type Frame } from './frame'
import { finishNode, kindOf, replayed, startedEvent } from './node-common'
import { Parked } from './park'
import type { RunState } from './run-state'
import { failNode } from './step'

type Fns = readonly (AnyFn | undefined)[]

function sleepTarget(run: RunState, node: SleepNode, fns: Fns, frame: Frame, now: number): number {
  if (node.durationMs !== undefined) return now + node.durationMs
  if (node.untilMs !== undefined) return node.untilMs
  const v: unknown = fns[node.until!]!(new StepContext(run, frame, frame.scope, 1, node.name))
  const at = v instanceof Date ? v.getTime() : typeof v === 'string' ? Date.parse(v) : v
  if (typeof at !== 'number' || !Number.isFinite(at)) {
    throw new PlanError(run.workflowId, node.name, `sleepUntil "${node.name}" in workflow "${run.workflowId}": expected its function to return a Date, an ISO date string or a timestamp in ms, got ${String(v)}.`)
  }
  return at
}

/** Journals that a sleep or wait began, with what resuming it needs (its wake time, its match key). */
async function markWaiting(run: RunState, node: PlanNode, frame: Frame, startedAt: number, state: { wakeAt?: number | undefined; match?: string | undefined }): Promise<void> {
  const key = keyOf(node.id, frame)
  if (run.replay?.get(key)?.status === 'running') return
  const w = run.record({
    key, nodeId: node.id, name: node.name, kind: kindOf(node), status: 'running', output: state, attempts: 1,
    startedAt, endedAt: startedAt, durationMs: 0, item: frame.itemPath,
  })
  if (w !== undefined) await w
}

/** The `running` entry an earlier attempt of this run wrote for a sleep or wait, if any. */
function pending(run: RunState, node: PlanNode, frame: Frame): { startedAt: number; wakeAt?: number; match?: string } | undefined {
  const old = run.replay?.get(keyOf(node.id, frame))
  if (old === undefined || old.status !== 'running') return undefined
  return { startedAt: old.startedAt, ...(old.output as { wakeAt?: number; match?: string }) }
}

export async function runSleep(run: RunState, node: SleepNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return frame.last
  const { clock } = run.services
  const now = clock.now()
  const was = pending(run, node, frame)
  const startedAt = was?.startedAt ?? now
  let wakeAt = was?.wakeAt
  if (wakeAt === undefined) {
    startedEvent(run, node, frame)
    try {
      wakeAt = sleepTarget(run, node, fns, frame, now)
    } catch (error) {
      // The node has reported its start: a time it cannot compute is the node's failure.
      return failNode(run, node, frame, 'sleep', startedAt, error)
    }
  }
  if (wakeAt > now) {
    // At the top of a run nothing else is in flight: park it, holding no timer and no memory.
    if (frame.itemKey === '' && wakeAt - now >= run.services.parkAfterMs) {
      await markWaiting(run, node, frame, startedAt, { wakeAt })
      throw new Parked('sleeping', wakeAt)
    }
    await delay(clock, wakeAt - now, frame.scope.signal)
  }
  if (frame.scope.aborted) throw frame.scope.reason
  return finishNode(run, node, frame, startedAt, frame.last)
}

export async function runWait(run: RunState, node: WaitForEventNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return old.output
  const { clock, store } = run.services
  const now = clock.now()
  const was = pending(run, node, frame)
  const startedAt = was?.startedAt ?? now
  let wakeAt = was?.wakeAt
  let match = was?.match
  if (was === undefined) {
    startedEvent(run, node, frame)
    if (node.timeoutMs !== undefined) wakeAt = now + node.timeoutMs
    if (node.match !== undefined) {
      try {
        match = String(fns[node.match]!(new StepContext(run, frame, frame.scope, 1, node.name)))
      } catch (error) {
        // The node has reported its start: a match key it cannot compute is the node's failure.
        return failNode(run, node, frame, 'waitForEvent', startedAt, error)
      }
    }
  }
  let event = store.getEvent(run.id, node.event)
  if (event instanceof Promise) event = await event
  if (event !== undefined) return finishNode(run, node, frame, startedAt, event.data)
  if (wakeAt !== undefined && now >= wakeAt) {
    const err = new SteplineError(
      'WAIT_TIMEOUT',
      `waitForEvent "${node.name}" in run ${run.id} of workflow "${run.workflowId}": no "${node.event}" event arrived within ${node.timeoutMs} ms. Raise \`timeout\`, or recover with .onError().`,
    )
    return failNode(run, node, frame, 'waitForEvent', startedAt, err)
  }
  await markWaiting(run, node, frame, startedAt, { wakeAt, match })
  throw new Parked('waiting', wakeAt, { event: node.event, match })
}

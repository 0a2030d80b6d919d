import { opFns, type AnyFn } from '../builder/ops'
import { WorkflowBuilder } from '../builder/workflow'
import { PlanError, StepError } from '../errors'
import { cpuInput } from '../executors/default'
import { checkBody } from '../plan/compile'
import type { ForEachNode, StepNode } from '../plan/types'
import type { StepRecord } from '../store/types'
import { AbortScope } from './abort-scope'
import { StepContext } from './context'
import type { Frame } from './frame'
import { branchAborted, finishNode, replayed, startedEvent } from './node-common'
import type { RunState } from './run-state'
import { failNode, isAbortLike } from './step'
import { runSequence } from './walker'

type Fns = readonly (AnyFn | undefined)[]

export async function runForEach(run: RunState, node: ForEachNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return old.output
  const startedAt = run.services.clock.now()
  startedEvent(run, node, frame)
  let items: unknown
  try {
    items = fns[node.items]!(new StepContext(run, frame, frame.scope, 1, node.name))
    if (items instanceof Promise) items = await items
    if (!Array.isArray(items)) {
      throw new PlanError(run.workflowId, node.name, `forEach "${node.name}" in workflow "${run.workflowId}": expected its items function to return an array, got ${items === null ? 'null' : typeof items}. Return an array (e.g. ctx.last.items).`)
    }
  } catch (error) {
    // The node has reported its start: a failure to list its items is the node's failure too.
    if (frame.scope.aborted && isAbortLike(error, frame.scope.reason)) throw frame.scope.reason
    return failNode(run, node, frame, 'forEach', startedAt, error)
  }
  const list = items as readonly unknown[]
  const n = list.length
  const results: unknown[] = new Array(n)
  const scope = new AbortScope(frame.scope)
  const bodyFn = node.cpu === undefined ? fns[node.bodyFn]! : undefined
  const chunk = node.chunkSize ?? 1
  const { executor } = run.services
  // A cpu() body with chunkSize goes to the pool one chunk per task, to amortise the message cost.
  const chunked = node.cpu !== undefined && node.chunkSize !== undefined && executor.executeChunk !== undefined
  const reportProgress = run.listening('run:progress')
  let next = 0
  let done = 0
  let failure: { index: number; error: unknown } | undefined

  const runItem = (i: number): Promise<unknown> => {
    const item = list[i]
    // Each item gets its own scope: abort listeners its steps add go away with the item.
    const itemScope = new AbortScope(scope)
    const itemFrame: Frame = {
      last: item,
      steps: Object.create(frame.steps) as Record<string, StepRecord>,
      item,
      index: i,
      itemKey: `${frame.itemKey}@${i}`,
      itemPath: frame.itemPath === undefined ? [i] : [...frame.itemPath, i],
      scope: itemScope,
    }
    const done = runSequence(run, node.body, bodyFn === undefined ? CPU_BODY_FNS : bodyFns(run, node, bodyFn, item), itemFrame)
    return done.finally(() => itemScope.dispose())
  }

  const runChunk = async (start: number, end: number): Promise<void> => {
    const step = node.body[0] as StepNode
    const todo: number[] = []
    for (let i = start; i < end; i++) {
      const old = run.replay?.get(`${step.id}${frame.itemKey}@${i}`)
      if (old !== undefined && old.status === 'completed') {
        results[i] = old.output
        run.records.push(old)
      } else {
        todo.push(i)
      }
    }
    if (todo.length === 0) return
    const t0 = run.services.clock.now()
    const inputs = todo.map((i) =>
      cpuInput(step, { payload: run.payload, last: list[i], steps: frame.steps, item: list[i], index: i, run: run.info, attempt: 1 }),
    )
    const outs = await executor.executeChunk!(step, inputs, scope.signal)
    if (scope.aborted) throw scope.reason
    const t1 = run.services.clock.now()
    const share = (t1 - t0) / todo.length
    for (let k = 0; k < todo.length; k++) {
      const i = todo[k]!
      results[i] = outs[k]
      const key = `${step.id}${frame.itemKey}@${i}`
      const item = frame.itemPath === undefined ? [i] : [...frame.itemPath, i]
      const w = run.record({ key, nodeId: step.id, name: step.name, kind: 'step', status: 'completed', output: outs[k], attempts: 1, startedAt: t0, endedAt: t1, durationMs: share, item })
      if (w !== undefined) await w
      // The run may have ended while the entry was written: no event follows the run's last.
      if (!run.done && run.listening('step:completed')) {
        run.emit('step:completed', { runId: run.id, workflowId: run.workflowId, step: step.name, nodeId: step.id, key, item, attempt: 1, output: outs[k], durationMs: share })
      }
    }
  }

  const worker = async (): Promise<void> => {
    while (next < n && failure === undefined) {
      const start = next
      const end = Math.min(n, start + chunk)
      next = end
      if (chunked) {
        try {
          await runChunk(start, end)
        } catch (error) {
          if (failure === undefined && !(scope.aborted && isAbortLike(error, scope.reason))) {
            failure = { index: start, error }
            scope.abort(branchAborted('forEach', node.name, `aborted because the chunk of items ${start}..${end - 1} failed`))
          }
          return
        }
      }
      for (let i = start; i < end && !chunked; i++) {
        // Another item failed: this chunk stops unfinished, and is not counted as done.
        if (failure !== undefined) return
        try {
          results[i] = await runItem(i)
        } catch (error) {
          if (failure === undefined && !(scope.aborted && isAbortLike(error, scope.reason))) {
            failure = { index: i, error }
            scope.abort(branchAborted('forEach', node.name, `aborted because item ${i} failed`))
          }
          return
        }
      }
      done += end - start
      // An item's last write may have outlived the run (a cancel): no event after the run's last.
      if (reportProgress && !run.done) {
        const elapsed = (run.services.clock.now() - startedAt) / 1000
        run.emit('run:progress', {
          runId: run.id, workflowId: run.workflowId, step: node.name, done, total: n,
          itemsPerSecond: elapsed > 0 ? done / elapsed : 0, item: frame.itemPath,
          ...(node.cpu !== undefined && executor.stats ? { pool: executor.stats() } : {}),
        })
      }
    }
  }
  const workers = Math.min(node.concurrency, Math.ceil(n / chunk))
  if (workers === 1) await worker()
  else await Promise.all(Array.from({ length: workers }, worker))
  scope.dispose()
  if (frame.scope.aborted) throw frame.scope.reason
  if (failure !== undefined) {
    const err = new StepError(`${node.name}[${failure.index}]`, failure.error, 1)
    return failNode(run, node, frame, 'forEach', startedAt, err)
  }
  return finishNode(run, node, frame, startedAt, results)
}

const CPU_BODY_FNS: readonly (AnyFn | undefined)[] = [undefined]

/**
 * The side table of one item's body: the body callback is called again with the real item so
 * that the closures it builds see it. The plan's shape came from compile time.
 */
function bodyFns(run: RunState, node: ForEachNode, bodyFn: AnyFn, item: unknown): (AnyFn | undefined)[] {
  const built = checkBody(run.workflowId, node.name, bodyFn(item, new WorkflowBuilder(run.workflowId, {}, 'collect')))
  const out: (AnyFn | undefined)[] = []
  for (let b: WorkflowBuilder | undefined = built; b?.op; b = b.prev) {
    const f = opFns(b.op)
    for (let k = f.length - 1; k >= 0; k--) out.push(f[k])
  }
  out.reverse()
  if (out.length !== node.bodySlots) {
    throw new PlanError(run.workflowId, node.name, `forEach "${node.name}" in workflow "${run.workflowId}": the body built different steps for one item than when the plan was compiled. Build the same steps for every item; branch with .if() inside the body instead.`)
  }
  return out
}

/** The time a sleep ends, fixed the first time the node runs and journaled with its `running` entry. */

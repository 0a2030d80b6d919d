import { opFns, type AnyFn } from '../builder/ops'
import { WorkflowBuilder } from '../builder/workflow'
import { ParallelError, PlanError, RaceError, SteplineError, StepError, StepTimeoutError } from '../errors'
import { checkBody } from '../plan/compile'
import type { BranchNode, ForEachNode, ParallelNode, PlanNode, RaceNode, SleepNode, StepNode, WaitForEventNode } from '../plan/types'
import { Parked } from './park'
import { cpuInput } from '../executors/default'
import type { StepKind, StepRecord } from '../store/types'
import { AbortScope } from './abort-scope'
import { delay } from './clock'
import { StepContext } from './context'
import { keyOf, type Frame } from './frame'
import type { RunState } from './run-state'
import { isAbortLike, recordFailure, runLeaf, toError } from './step'

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
  try {
    return await execute(run, node, fns, frame)
  } catch (error) {
    // Parking, cancels and run timeouts stop the run; they are not the node's failure to recover.
    if (error instanceof Parked || frame.scope.aborted) throw error
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
    const endedAt = run.services.clock.now()
    const rec: StepRecord = {
      key, nodeId: node.id, name: node.name, kind: kindOf(node), status: 'completed', output, error: cause, recovered: true,
      attempts: error instanceof StepError && node.kind === 'step' ? error.attempts : 1, startedAt, endedAt, durationMs: endedAt - startedAt, item: frame.itemPath,
    }
    frame.steps[node.name] = rec
    await run.record(rec)
    if (run.listening('step:completed')) {
      run.emit('step:completed', {
        runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath,
        attempt: rec.attempts, output, durationMs: rec.durationMs, recovered: true,
      })
    }
    return output
  }
}

function kindOf(node: PlanNode): StepKind {
  return node.kind
}

/** Journals a container node's result and exposes it in `ctx.steps`. */
async function finishNode(run: RunState, node: PlanNode, frame: Frame, startedAt: number, output: unknown, attempts = 1): Promise<unknown> {
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
function replayed(run: RunState, node: PlanNode, frame: Frame): StepRecord | undefined {
  if (run.replay === undefined) return undefined
  const key = keyOf(node.id, frame)
  const old = run.replay.get(key)
  if (old === undefined || old.status !== 'completed') return undefined
  frame.steps[node.name] = old
  run.records.push(old)
  return old
}

function startedEvent(run: RunState, node: PlanNode, frame: Frame): void {
  if (run.listening('step:started')) {
    run.emit('step:started', { runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key: keyOf(node.id, frame), item: frame.itemPath, attempt: 1 })
  }
}

/** Arms a node-level timeout that aborts `scope`; returns its disarm function. */
function armTimeout(run: RunState, node: PlanNode & { timeoutMs?: number }, scope: AbortScope, onTimeout: (e: Error) => void): (() => void) | undefined {
  if (node.timeoutMs === undefined) return undefined
  const ms = node.timeoutMs
  return run.services.clock.setTimer(() => {
    const e = new StepTimeoutError(node.name, ms)
    scope.abort(e)
    onTimeout(e)
  }, ms)
}

function branchAborted(kind: string, name: string, why: string): SteplineError {
  return new SteplineError('BRANCH_ABORTED', `${kind} "${name}": ${why}`)
}

async function runParallel(run: RunState, node: ParallelNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return old.output
  const startedAt = run.services.clock.now()
  startedEvent(run, node, frame)
  const scope = new AbortScope(frame.scope)
  const branchFrame: Frame = { ...frame, scope }
  const n = node.branches.length
  const results: unknown[] = new Array(n)
  const errors: unknown[] = []

  const onError = (i: number, e: unknown): void => {
    if (!scope.aborted) {
      errors.push(e)
      scope.abort(branchAborted('Parallel', node.name, `aborted because branch ${String(node.branches[i]!.key)} failed`))
    } else if (!isAbortLike(e, scope.reason)) {
      errors.push(e)
    }
  }
  // A branch that completes synchronously fills its slot at once and adds no promise.
  const runOne = (i: number): Promise<void> | undefined => {
    let out: unknown
    try {
      out = runLeaf(run, node.branches[i]!, fns, branchFrame, 'fn')
    } catch (e) {
      onError(i, e)
      return undefined
    }
    if (!(out instanceof Promise)) {
      results[i] = out
      return undefined
    }
    return out.then(
      (v) => {
        results[i] = v
      },
      (e) => onError(i, e),
    )
  }

  let all: Promise<unknown> | undefined
  const limit = node.maxConcurrency ?? n
  if (limit >= n) {
    let pending: Promise<void>[] | undefined
    for (let i = 0; i < n && !scope.aborted; i++) {
      const p = runOne(i)
      if (p !== undefined) (pending ??= []).push(p)
    }
    if (pending !== undefined) all = Promise.all(pending)
  } else {
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < n && !scope.aborted) {
        const p = runOne(next++)
        if (p !== undefined) await p
      }
    }
    all = Promise.all(Array.from({ length: limit }, worker))
  }
  if (node.timeoutMs !== undefined) {
    let timedOut: ((e: Error) => void) | undefined
    const timeout = new Promise<never>((_, reject) => (timedOut = reject))
    const disarm = armTimeout(run, node, scope, (e) => timedOut!(e))!
    try {
      await (all === undefined ? undefined : Promise.race([all, timeout]))
    } catch (e) {
      if (node.onError === undefined) await recordFailure(run, node, frame, 'parallel', keyOf(node.id, frame), startedAt, e, 1)
      throw e
    } finally {
      disarm()
    }
  } else if (all !== undefined) {
    await all
  }
  scope.dispose()
  if (frame.scope.aborted) throw frame.scope.reason
  if (errors.length > 0) {
    const err = new ParallelError(node.name, errors)
    if (node.onError === undefined) await recordFailure(run, node, frame, 'parallel', keyOf(node.id, frame), startedAt, err, 1)
    throw err
  }
  const output = node.shape === 'tuple' ? results : Object.fromEntries(node.branches.map((b, i) => [b.key, results[i]]))
  return finishNode(run, node, frame, startedAt, output)
}


async function runRace(run: RunState, node: RaceNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return old.output
  const startedAt = run.services.clock.now()
  startedEvent(run, node, frame)
  const scope = new AbortScope(frame.scope)
  const branchFrame: Frame = { ...frame, scope }
  const n = node.branches.length
  let output: unknown
  try {
    output = await new Promise((resolve, reject) => {
      const errors: unknown[] = new Array(n)
      let pending = n
      let settled = false
      const disarm = armTimeout(run, node, scope, (e) => {
        settled = true
        reject(e)
      })
      for (let i = 0; i < n; i++) {
        let out: unknown
        try {
          out = runLeaf(run, node.branches[i]!, fns, branchFrame, 'fn')
        } catch (e) {
          out = Promise.reject(e)
        }
        Promise.resolve(out).then(
          (v) => {
            if (settled) return
            settled = true
            disarm?.()
            scope.abort(branchAborted('Race', node.name, `branch ${String(node.branches[i]!.key)} won`))
            resolve(v)
          },
          (e) => {
            errors[i] = e
            if (--pending === 0 && !settled) {
              settled = true
              disarm?.()
              reject(frame.scope.aborted ? frame.scope.reason : new RaceError(node.name, errors))
            }
          },
        )
      }
    })
  } catch (e) {
    if (frame.scope.aborted) throw frame.scope.reason
    if (node.onError === undefined) await recordFailure(run, node, frame, 'race', keyOf(node.id, frame), startedAt, e, 1)
    throw e
  }
  scope.dispose()
  if (frame.scope.aborted) throw frame.scope.reason
  return finishNode(run, node, frame, startedAt, output)
}

async function runBranch(run: RunState, node: BranchNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return old.output
  const startedAt = run.services.clock.now()
  const decisionKey = `${keyOf(node.id, frame)}:when`
  let taken = run.replay?.get(decisionKey)?.output as number | undefined
  if (taken === undefined) {
    taken = node.otherwise ? node.cases.length : -1
    for (let i = 0; i < node.cases.length; i++) {
      const c = node.cases[i]!
      let v: unknown = fns[c.when]!(new StepContext(run, frame, frame.scope, 1, c.name))
      if (v instanceof Promise) v = await v
      if (v) {
        taken = i
        break
      }
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
  const output = taken === -1 ? frame.last : await runSequence(run, sequences[taken]!, fns, frame)
  return finishNode(run, node, frame, startedAt, output)
}

/** Journals every node of a branch not taken as `skipped` (not the insides of a `forEach` body). */
async function skipAll(run: RunState, nodes: readonly PlanNode[], frame: Frame): Promise<void> {
  for (const node of nodes) {
    const key = keyOf(node.id, frame)
    if (run.replay?.get(key)?.status === 'skipped') continue
    const at = run.services.clock.now()
    const rec: StepRecord = {
      key, nodeId: node.id, name: node.name, kind: kindOf(node), status: 'skipped', output: undefined, attempts: 0,
      startedAt: at, endedAt: at, durationMs: 0, item: frame.itemPath,
    }
    frame.steps[node.name] = rec
    const w = run.record(rec)
    if (w !== undefined) await w
    if (run.listening('step:skipped')) {
      run.emit('step:skipped', { runId: run.id, workflowId: run.workflowId, step: node.name, nodeId: node.id, key, item: frame.itemPath, attempt: 0 })
    }
    if (node.kind === 'branch') {
      for (const c of node.cases) await skipAll(run, c.nodes, frame)
      if (node.otherwise) await skipAll(run, node.otherwise.nodes, frame)
    }
  }
}

async function runForEach(run: RunState, node: ForEachNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return old.output
  const startedAt = run.services.clock.now()
  startedEvent(run, node, frame)
  let items: unknown = fns[node.items]!(new StepContext(run, frame, frame.scope, 1, node.name))
  if (items instanceof Promise) items = await items
  if (!Array.isArray(items)) {
    const err = new PlanError(run.workflowId, node.name, `forEach "${node.name}" in workflow "${run.workflowId}": expected its items function to return an array, got ${items === null ? 'null' : typeof items}. Return an array (e.g. ctx.last.items).`)
    if (node.onError === undefined) await recordFailure(run, node, frame, 'forEach', keyOf(node.id, frame), startedAt, err, 1)
    throw err
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
      if (run.listening('step:completed')) {
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
      for (let i = start; i < end && !chunked && failure === undefined; i++) {
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
      if (reportProgress) {
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
    if (node.onError === undefined) await recordFailure(run, node, frame, 'forEach', keyOf(node.id, frame), startedAt, err, 1)
    throw err
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

async function runSleep(run: RunState, node: SleepNode, fns: Fns, frame: Frame): Promise<unknown> {
  const old = replayed(run, node, frame)
  if (old) return frame.last
  const { clock } = run.services
  const now = clock.now()
  const was = pending(run, node, frame)
  const startedAt = was?.startedAt ?? now
  if (was === undefined) startedEvent(run, node, frame)
  const wakeAt = was?.wakeAt ?? sleepTarget(run, node, fns, frame, now)
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

async function runWait(run: RunState, node: WaitForEventNode, fns: Fns, frame: Frame): Promise<unknown> {
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
    if (node.match !== undefined) match = String(fns[node.match]!(new StepContext(run, frame, frame.scope, 1, node.name)))
  }
  let event = store.getEvent(run.id, node.event)
  if (event instanceof Promise) event = await event
  if (event !== undefined) return finishNode(run, node, frame, startedAt, event.data)
  if (wakeAt !== undefined && now >= wakeAt) {
    const err = new SteplineError(
      'WAIT_TIMEOUT',
      `waitForEvent "${node.name}" in run ${run.id} of workflow "${run.workflowId}": no "${node.event}" event arrived within ${node.timeoutMs} ms. Raise \`timeout\`, or recover with .onError().`,
    )
    if (node.onError === undefined) await recordFailure(run, node, frame, 'waitForEvent', keyOf(node.id, frame), startedAt, err, 1)
    throw err
  }
  await markWaiting(run, node, frame, startedAt, { wakeAt, match })
  throw new Parked('waiting', wakeAt, { event: node.event, match })
}

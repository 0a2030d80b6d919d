import type { AnyFn } from '../builder/ops'
import { ParallelError, RaceError } from '../errors'
import type { ParallelNode, RaceNode } from '../plan/types'
import { keyOf, type Frame } from './frame'
import { armTimeout, beginFanOut, branchAborted, finishNode } from './node-common'
import type { RunState } from './run-state'
import { failNode, isAbortLike, runLeaf } from './step'

type Fns = readonly (AnyFn | undefined)[]

export async function runParallel(run: RunState, node: ParallelNode, fns: Fns, frame: Frame): Promise<unknown> {
  const begun = beginFanOut(run, node, frame)
  if ('done' in begun) return begun.done.output
  const { startedAt, scope, branchFrame } = begun
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
      return failNode(run, node, frame, 'parallel', startedAt, e)
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
    return failNode(run, node, frame, 'parallel', startedAt, err)
  }
  const output = node.shape === 'tuple' ? results : Object.fromEntries(node.branches.map((b, i) => [b.key, results[i]]))
  return finishNode(run, node, frame, startedAt, output)
}


export async function runRace(run: RunState, node: RaceNode, fns: Fns, frame: Frame): Promise<unknown> {
  const begun = beginFanOut(run, node, frame)
  if ('done' in begun) return begun.done.output
  const { startedAt, scope, branchFrame } = begun
  const n = node.branches.length
  if (run.replay !== undefined) {
    // An earlier attempt journaled its winner but not the race (it stopped in between): that
    // branch won. No branch runs again, or a second one could win and be journaled too.
    for (const b of node.branches) {
      const won = run.replay.get(keyOf(b.id, frame))
      if (won !== undefined && won.status === 'completed') {
        run.records.push(won)
        scope.dispose()
        return finishNode(run, node, frame, startedAt, won.output)
      }
    }
  }
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
        // A branch before it won synchronously (or the run was aborted): this one does not start.
        if (scope.aborted) out = Promise.reject(scope.reason)
        else {
          try {
            out = runLeaf(run, node.branches[i]!, fns, branchFrame, 'fn')
          } catch (e) {
            out = Promise.reject(e)
          }
        }
        Promise.resolve(out).then(
          (v) => {
            if (settled) return
            settled = true
            disarm?.()
            // The winner closed the scope as it reached its journal entry (see `finish`).
            if (!scope.closed) scope.close(branchAborted('Race', node.name, `branch ${String(node.branches[i]!.key)} won`))
            resolve(v)
          },
          (e) => {
            // The winner closed the scope as it reached its journal entry; every loser fails with
            // the scope's reason from then on. Anything else is the winner's write failing: the
            // race fails with that error alone, without waiting for the losers.
            if (scope.closed && e !== scope.reason && !settled) {
              settled = true
              disarm?.()
              reject(e)
              return
            }
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
    // Every branch failed, or the winner's journal write did: the scope still hears its parent until detached.
    scope.dispose()
    if (frame.scope.aborted) throw frame.scope.reason
    return failNode(run, node, frame, 'race', startedAt, e)
  }
  scope.dispose()
  if (frame.scope.aborted) throw frame.scope.reason
  return finishNode(run, node, frame, startedAt, output)
}

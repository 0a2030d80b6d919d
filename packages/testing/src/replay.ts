import { isDeepStrictEqual } from 'node:util'
import { deserializeError, inlineExecutor, stepKeyOf, type AnyWorkflow, type SerializedError, type Executor, type RunRecord, type StepNode, type StepRecord } from '@stepline/core'
import { planNames } from './plan-names'
import { testRun } from './test-run'

/** A recorded run, as any store gives it: `engine.getRun(id)` and `engine.getSteps(id)`. */
export interface RecordedRun {
  run: Pick<RunRecord, 'payload' | 'planHash'> & Partial<RunRecord>
  steps: readonly StepRecord[]
}

/** Options of `replayRun`. */
export interface ReplayOptions {
  /**
   * Also run each step's real function and compare its output with the recorded one (for
   * deterministic steps). By default steps are not run: they return their recorded outputs.
   */
  execute?: boolean
}

/** One way the replay differed from the recording. */
export interface ReplayDifference {
  kind: 'plan' | 'missing' | 'unexpected' | 'changed' | 'decision' | 'status' | 'output'
  step: string
  key: string
  message: string
  expected?: unknown
  actual?: unknown
}

/** What `replayRun` found. */
export interface ReplayReport {
  ok: boolean
  /** The first difference in journal order: the step whose behaviour changed first. */
  first: ReplayDifference | undefined
  differences: ReplayDifference[]
  /** One line for a test failure message. */
  message: string
}

/**
 * Re-runs a workflow in memory against the journal of a recorded run: each step returns (or
 * throws) what it did then, while conditions, `forEach` items and the workflow's shape come from
 * the current code. Reports the first step whose behaviour differs: a branch taken differently,
 * a step that no longer runs, a new step, a different status, or (with `execute`) a new output.
 * @example
 * const report = await replayRun(order, { run: await engine.getRun(id), steps: await engine.getSteps(id) })
 * expect(report.ok, report.message).toBe(true)
 */
export async function replayRun(workflow: AnyWorkflow, recorded: RecordedRun, options: ReplayOptions = {}): Promise<ReplayReport> {
  const byKey = new Map<string, StepRecord>()
  for (const s of recorded.steps) byKey.set(s.key, s)
  const executor = new ReplayExecutor(byKey, options.execute ?? false)
  const replay = await testRun(workflow, recorded.run.payload as never, { executor, events: recordedEvents(workflow, recorded.steps) })
  const replayed = new Map<string, StepRecord>()
  for (const s of replay.journal) replayed.set(s.key, s)

  const differences: ReplayDifference[] = []
  const hash = workflow.plan().hash
  if (recorded.run.planHash !== hash) {
    differences.push({
      kind: 'plan', step: '(workflow)', key: '', expected: recorded.run.planHash, actual: hash,
      message: `the plan changed: recorded under ${recorded.run.planHash}, now ${hash}`,
    })
  }
  for (const rec of byKey.values()) {
    const now = replayed.get(rec.key)
    const diff = compare(rec, now, executor.outputs.get(rec.key))
    if (diff) differences.push(diff)
  }
  for (const now of replayed.values()) {
    if (!byKey.has(now.key)) {
      differences.push({ kind: 'unexpected', step: now.name, key: now.key, actual: now.status, message: `"${now.name}" (${now.key}) ran in the replay but not in the recorded run` })
    }
  }
  const first = differences[0]
  return {
    ok: differences.length === 0,
    first,
    differences,
    message: first ? `replay differs from the recorded run: ${first.message}` : 'replay matches the recorded run',
  }
}

/** What a step's real function did in a replay with `execute: true`. */
type Executed = { actual: unknown } | { threw: unknown }

function compare(rec: StepRecord, now: StepRecord | undefined, executed: Executed | undefined): ReplayDifference | undefined {
  const base = { step: rec.name, key: rec.key }
  if (now === undefined) {
    return { ...base, kind: 'missing', expected: rec.status, message: `"${rec.name}" (${rec.key}) was ${rec.status} in the recorded run but did not run in the replay` }
  }
  if (rec.kind !== 'decision' && now.name !== rec.name) {
    return { ...base, kind: 'changed', expected: rec.name, actual: now.name, message: `at ${rec.key} the recorded run had "${rec.name}" but the replay has "${now.name}"` }
  }
  if (rec.kind === 'decision' && now.output !== rec.output) {
    return { ...base, kind: 'decision', expected: rec.name, actual: now.name, message: `a branch took "${now.name}" in the replay but "${rec.name}" in the recorded run (${rec.key})` }
  }
  if (rec.status !== now.status) {
    return { ...base, kind: 'status', expected: rec.status, actual: now.status, message: `"${rec.name}" (${rec.key}) was ${rec.status} in the recorded run but ${now.status} in the replay` }
  }
  if (executed === undefined) return undefined
  const returned = rec.status === 'completed' && !rec.recovered
  if ('threw' in executed) {
    if (!returned) return undefined
    return {
      ...base, kind: 'output', expected: rec.output, actual: executed.threw,
      message: `"${rec.name}" (${rec.key}) now throws ${show(messageOf(executed.threw))} where it returned ${show(rec.output)}`,
    }
  }
  if (!returned || !isDeepStrictEqual(executed.actual, rec.output)) {
    const was = returned ? `returned ${show(rec.output)}` : `failed: ${messageOf(rec.error)}`
    return {
      ...base, kind: 'output', expected: rec.output, actual: executed.actual,
      message: `"${rec.name}" (${rec.key}) now returns ${show(executed.actual)} where it ${was}`,
    }
  }
  return undefined
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : typeof (e as { message?: unknown } | null)?.message === 'string' ? (e as { message: string }).message : String(e)
}

function show(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}

/** Answers each step from the recorded journal by key; optionally runs it too, to compare. */
class ReplayExecutor implements Executor {
  readonly name = 'replay'
  readonly outputs = new Map<string, Executed>()
  readonly #byKey: ReadonlyMap<string, StepRecord>
  readonly #execute: boolean
  readonly #inline = inlineExecutor()

  constructor(byKey: ReadonlyMap<string, StepRecord>, execute: boolean) {
    this.#byKey = byKey
    this.#execute = execute
  }

  execute(node: StepNode, fn: (ctx: any) => unknown, ctx: unknown): unknown {
    const key = stepKeyOf(node, ctx)
    const rec = this.#byKey.get(key)
    if (rec === undefined || !this.#execute) return rec === undefined ? this.#inline.execute(node, fn, ctx) : recorded(rec)
    // What the real function does now is kept for the comparison; the replay goes on as recorded.
    const keep = (outcome: Executed): unknown => {
      this.outputs.set(key, outcome)
      return recorded(rec)
    }
    let actual: unknown
    try {
      actual = this.#inline.execute(node, fn, ctx)
    } catch (error) {
      return keep({ threw: error })
    }
    return actual instanceof Promise ? actual.then((v: unknown) => keep({ actual: v }), (error: unknown) => keep({ threw: error })) : keep({ actual })
  }
}

/**
 * The events the recorded run received, by name: a `waitForEvent` that completed without
 * `.onError()` recovering it holds the event's data. Waits that timed out get no answer, so they
 * time out in the replay too.
 */
function recordedEvents(workflow: AnyWorkflow, steps: readonly StepRecord[]): Record<string, unknown> {
  const eventOf = planNames(workflow.plan().nodes).events
  const events: Record<string, unknown> = {}
  for (const s of steps) {
    const event = eventOf.get(s.nodeId)
    if (s.kind === 'waitForEvent' && s.status === 'completed' && !s.recovered && event !== undefined) events[event] = s.output
  }
  return events
}

/** What the step gave in the recorded run: its output, or the error it (or its recovery) had. */
function recorded(rec: StepRecord): unknown {
  if (rec.status !== 'failed' && !rec.recovered) return rec.output
  const error: unknown = rec.error
  if (error instanceof Error) throw error
  // A fixture read back from JSON holds the error as data ({ name, message }): throw it as an Error again.
  if (typeof error === 'object' && error !== null && typeof (error as { message?: unknown }).message === 'string') throw deserializeError(error as SerializedError)
  throw new Error(`"${rec.name}" failed in the recorded run`)
}

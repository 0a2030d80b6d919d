import { AssertionError } from 'node:assert'
import type {
  AnyWorkflow,
  EngineEventName,
  inferOutput,
  inferSteps,
  PlanNode,
  RunOutcome,
  RunSummary,
  StepRecord,
  StepStatus,
} from '@stepline/core'
import type { FakeClock } from './fake-clock'
import { planNames, quoteAll } from './plan-names'

/** An event the run emitted, with `type` and the virtual ms since the run started (`at`). */
export type RecordedEvent = { type: EngineEventName; at: number; step?: string; key?: string; item?: number[]; attempt?: number } & Record<string, unknown>

/** What `run.steps.<name>` holds: the journal entry plus how often the step's function (or mock) was called. */
export interface TestStep<TOut = unknown> {
  output: TOut
  status: StepStatus
  attempts: number
  durationMs: number
  error: Error | undefined
  /** Calls of the function or mock, every attempt and every `forEach` item counted. */
  calls: number
}

type TestSteps<S> = { [K in keyof S]: TestStep<S[K] extends { output: infer O } ? O : unknown> }

/** One line of the trace: a step event in the order it happened, at virtual time `at`. */
export interface TraceEntry {
  type: 'started' | 'completed' | 'failed' | 'retrying' | 'skipped'
  step: string
  key: string
  item: number[] | undefined
  attempt: number
  at: number
}

/**
 * The result of `testRun`: what the run did, plus assertions that read well in a test and
 * fail with a message showing what actually happened.
 */
export class TestRunResult<W extends AnyWorkflow = AnyWorkflow> {
  readonly runId: string
  readonly status: 'completed' | 'failed' | 'cancelled'
  readonly output: inferOutput<W> | undefined
  readonly error: Error | undefined
  /** Top-level nodes by name (steps, parallel, race, forEach, branches): typed like `ctx.steps`. */
  readonly steps: TestSteps<inferSteps<W>>
  /** The run's journal as the store holds it. */
  readonly journal: StepRecord[]
  readonly events: RecordedEvent[]
  readonly trace: TraceEntry[]
  readonly clock: FakeClock | undefined
  readonly #outcome: RunOutcome
  readonly #calls: ReadonlyMap<string, number>
  readonly #plan: readonly PlanNode[]

  constructor(
    workflow: W,
    outcome: RunOutcome,
    journal: StepRecord[],
    events: RecordedEvent[],
    calls: ReadonlyMap<string, number>,
    clock: FakeClock | undefined,
  ) {
    this.runId = outcome.runId
    this.status = outcome.status
    this.output = outcome.output as inferOutput<W> | undefined
    this.error = outcome.error
    this.journal = journal
    this.events = events
    this.clock = clock
    this.#outcome = outcome
    this.#calls = calls
    this.#plan = workflow.plan().nodes
    const steps: Record<string, TestStep> = {}
    for (const r of journal) {
      if (r.item !== undefined || r.kind === 'fn' || r.kind === 'decision') continue
      steps[r.name] = { output: r.output, status: r.status, attempts: r.attempts, durationMs: r.durationMs, error: r.error, calls: calls.get(r.name) ?? 0 }
    }
    this.steps = this.#explainMissing(steps) as TestSteps<inferSteps<W>>
    this.trace = events.flatMap((e): TraceEntry[] => {
      if (!e.type.startsWith('step:')) return []
      return [{ type: e.type.slice(5) as TraceEntry['type'], step: e.step!, key: e.key!, item: e.item, attempt: e.attempt ?? 0, at: e.at }]
    })
  }

  /**
   * `steps` as is, except that reading a node of the workflow that has no entry throws, saying
   * why, instead of handing back `undefined` for the next property read to fail on.
   */
  #explainMissing(steps: Record<string, TestStep>): Record<string, TestStep> {
    const nodes = planNames(this.#plan).nodes
    return new Proxy(steps, {
      get: (target, key, receiver) => {
        if (typeof key !== 'string' || Object.hasOwn(target, key) || !nodes.has(key)) return Reflect.get(target, key, receiver)
        const where = nodes.get(key)!.topLevel
          ? `the run never reached "${key}" (it ${this.status === 'failed' ? `failed: ${this.error?.message}` : `is ${this.status}`}). Steps with an entry: ${quoteAll(Object.keys(target))}.`
          : `"${key}" is inside a forEach body or is a parallel/race branch, so it has no single entry: use run.records('${key}').`
        throw new AssertionError({ message: `run.steps["${key}"]: ${where} Use run.ran('${key}') to assert whether a step ran.` })
      },
    })
  }

  /** Wall time, summed step time, parallel efficiency and critical path, on the run's clock. */
  get summary(): RunSummary {
    return this.#outcome.summary
  }

  /** Names of the nodes and branches in the order they started (`forEach` items repeat a name). */
  get order(): string[] {
    return this.trace.filter((t) => t.type === 'started').map((t) => t.step)
  }

  /** Names journaled as skipped (branches not taken). */
  get skipped(): string[] {
    return this.journal.filter((r) => r.status === 'skipped').map((r) => r.name)
  }

  /** Every journal entry of a step, one per `forEach` item. */
  records(name: string): StepRecord[] {
    return this.journal.filter((r) => r.name === name && r.kind !== 'decision')
  }

  /** How many times a step's function or mock was called, over all attempts and items. */
  calls(name: string): number {
    return this.#calls.get(name) ?? 0
  }

  /** Attempts of a step's (top-level) journal entry; 0 if it never ran. */
  attempts(name: string): number {
    return this.records(name).reduce((n, r) => Math.max(n, r.attempts), 0)
  }

  /** Whether a node ran (has a journal entry that is not `skipped`). */
  ran(name: string): boolean {
    return this.records(name).some((r) => r.status !== 'skipped')
  }

  /**
   * The branch an `.if(name, …)` took: the name of the `.if()`/`.elseIf()` case, `'else'`, or
   * `'(none)'`; undefined if the branch was never reached. Inside a `forEach`, the first item's.
   */
  branch(name: string): string | undefined {
    return this.branches(name)[0]
  }

  /** The branch taken by each evaluation of `.if(name, …)`, in item order (one per `forEach` item). */
  branches(name: string): string[] {
    const id = findBranchId(this.#plan, name)
    if (id === undefined) throw new AssertionError({ message: `No .if('${name}') in workflow; its branches are named: ${branchNames(this.#plan).join(', ') || '(none)'}.` })
    // Items run concurrently, so the journal holds their decisions in the order they were made.
    return this.journal
      .filter((r) => r.kind === 'decision' && r.nodeId === id)
      .sort((a, b) => compareItems(a.item, b.item))
      .map((r) => r.name)
  }

  /** Asserts the run ended with `status`. */
  expectStatus(status: 'completed' | 'failed' | 'cancelled'): this {
    if (this.status !== status) {
      fail(`expected the run to be ${status}, but it ${this.status === 'failed' ? `failed: ${this.error?.message}` : `is ${this.status}`}`, status, this.status)
    }
    return this
  }

  /** Asserts these nodes started in this relative order (others may come between). */
  expectOrder(...names: string[]): this {
    const order = this.order
    let at = 0
    for (const name of names) {
      const i = order.indexOf(name, at)
      if (i === -1) fail(`expected steps to run in the order ${names.join(' → ')}; they ran as ${order.join(' → ') || '(nothing)'}`, names, order)
      at = i + 1
    }
    return this
  }

  /** Asserts `.if(name)` took the case named `taken` (`'else'` for the else branch). */
  expectBranch(name: string, taken: string): this {
    const actual = this.branch(name)
    if (actual !== taken) fail(`expected .if('${name}') to take "${taken}", but it took ${actual === undefined ? 'no decision (never reached)' : `"${actual}"`}`, taken, actual)
    return this
  }

  /** Asserts every name was journaled as skipped. */
  expectSkipped(...names: string[]): this {
    const skipped = this.skipped
    const missing = names.filter((n) => !skipped.includes(n))
    if (missing.length) fail(`expected ${missing.join(', ')} to be skipped; skipped were: ${skipped.join(', ') || '(none)'}`, names, skipped)
    return this
  }

  /** Asserts a step's final entry took `n` attempts. */
  expectAttempts(name: string, n: number): this {
    const actual = this.attempts(name)
    if (actual !== n) {
      const ran = [...new Set(this.order)]
      const instead = this.ran(name) ? `it took ${actual}` : `but it never ran; steps that ran: ${ran.join(', ') || '(none)'}`
      fail(`expected "${name}" to take ${n} attempt(s), ${instead}`, n, actual)
    }
    return this
  }
}

function fail(message: string, expected: unknown, actual: unknown): never {
  throw new AssertionError({ message, expected, actual, operator: 'strictEqual' })
}

/** Orders `forEach` item paths (`[0]` < `[0, 3]` < `[1]`); a top-level entry has none. */
function compareItems(a: readonly number[] | undefined, b: readonly number[] | undefined): number {
  const x = a ?? []
  const y = b ?? []
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!
  return x.length - y.length
}

function findBranchId(nodes: readonly PlanNode[], name: string): string | undefined {
  for (const n of nodes) {
    if (n.kind === 'branch') {
      if (n.name === name) return n.id
      for (const c of n.cases) {
        const hit = findBranchId(c.nodes, name)
        if (hit) return hit
      }
      const hit = n.otherwise && findBranchId(n.otherwise.nodes, name)
      if (hit) return hit
    } else if (n.kind === 'forEach') {
      const hit = findBranchId(n.body, name)
      if (hit) return hit
    }
  }
  return undefined
}

function branchNames(nodes: readonly PlanNode[]): string[] {
  return nodes.flatMap((n) =>
    n.kind === 'branch'
      ? [n.name, ...n.cases.flatMap((c) => branchNames(c.nodes)), ...(n.otherwise ? branchNames(n.otherwise.nodes) : [])]
      : n.kind === 'forEach'
        ? branchNames(n.body)
        : [],
  )
}

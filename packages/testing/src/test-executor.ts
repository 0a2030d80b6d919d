import { defaultExecutor, stepKeyOf, type Executor, type StepNode } from '@stepline/core'
import { answer, entriesOf, UnmockedStepError, type Mock } from './mocks'
import type { Activity } from './tracked-store'

/**
 * The executor `testRun` gives its engine: answers mocked steps, counts calls, and knows how
 * many steps are in flight, which tells the runner when a run is only waiting for time.
 */
export class TestExecutor implements Executor, Activity {
  readonly name = 'testing'
  /** Calls per step name (every attempt, every item). */
  readonly calls = new Map<string, number>()
  /** Step attempts that returned a promise that has not settled yet (and store calls: see `trackStore`). */
  inFlight = 0
  /** Grows whenever an attempt settles: the runner's sign that the run moves. */
  progress = 0
  /** The first strict-mode violation, which `testRun` reports. */
  unmocked: UnmockedStepError | undefined
  readonly #perKey = new Map<string, number>()
  readonly #mocks: Readonly<Record<string, Mock>>
  readonly #strict: boolean
  readonly #workflowId: string
  readonly #inner: Executor

  constructor(workflowId: string, mocks: Readonly<Record<string, Mock>>, strict: boolean, inner: Executor = defaultExecutor()) {
    this.#workflowId = workflowId
    this.#mocks = mocks
    // A mock given as a rejected promise rejects before any attempt awaits it: mark it handled
    // now, or Node reports an unhandled rejection. Each attempt still gets the rejection.
    for (const mock of Object.values(mocks)) for (const entry of entriesOf(mock)) if (entry instanceof Promise) entry.catch(() => undefined)
    this.#strict = strict
    this.#inner = inner
  }

  execute(node: StepNode, fn: (ctx: any) => unknown, ctx: unknown): unknown {
    this.calls.set(node.name, (this.calls.get(node.name) ?? 0) + 1)
    let out: unknown
    if (Object.hasOwn(this.#mocks, node.name)) {
      // Sequences count per journal key, so "fail twice, then succeed" holds for each forEach item.
      const key = stepKeyOf(node, ctx)
      const n = this.#perKey.get(key) ?? 0
      this.#perKey.set(key, n + 1)
      out = answer(this.#mocks[node.name]!, n, ctx)
    } else if (this.#strict) {
      const err = new UnmockedStepError(this.#workflowId, node.name, Object.keys(this.#mocks))
      this.unmocked ??= err
      throw err
    } else {
      out = this.#inner.execute(node, fn, ctx)
    }
    // Any thenable is work in flight, as the runtime sees it: a query builder (knex, mongoose) is one.
    if (!isThenable(out)) {
      this.progress++
      return out
    }
    this.inFlight++
    return Promise.resolve(out).then(
      (v) => {
        this.inFlight--
        this.progress++
        return v
      },
      (e) => {
        this.inFlight--
        this.progress++
        throw e
      },
    )
  }

  close(): Promise<void> {
    return this.#inner.close?.() ?? Promise.resolve()
  }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function'
}

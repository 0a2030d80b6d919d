import { defaultExecutor, stepKeyOf, type Executor, type StepNode } from '@stepline/core'
import { answer, entriesOf, UnmockedStepError, type Mock } from './mocks'
import { isThenable, type Activity } from './tracked-store'

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
  /** The wrapped executor's, when it has one and `chunks` allows it: see the constructor. */
  readonly executeChunk?: Executor['executeChunk']
  /** The wrapped executor's pool stats, for `run:progress` and the run summary. */
  readonly stats?: Executor['stats']

  /**
   * `chunks`: forward `executeChunk`. A chunk reaches the wrapped executor whole, never a mock,
   * so pass `false` when a chunked `cpu()` body is mocked (or strict mode must report it): the
   * engine then runs its items one at a time through `execute`.
   */
  constructor(workflowId: string, mocks: Readonly<Record<string, Mock>>, strict: boolean, inner: Executor = defaultExecutor(), chunks = true) {
    this.#workflowId = workflowId
    this.#mocks = mocks
    // A mock given as a rejected promise rejects before any attempt awaits it: mark it handled
    // now, or Node reports an unhandled rejection. Each attempt still gets the rejection.
    for (const mock of Object.values(mocks)) for (const entry of entriesOf(mock)) if (entry instanceof Promise) entry.catch(() => undefined)
    this.#strict = strict
    this.#inner = inner
    // Own properties only when the wrapped executor has them: the engine checks their presence.
    const executeChunk = inner.executeChunk
    if (chunks && executeChunk !== undefined) {
      this.executeChunk = (node, inputs, signal) => {
        this.calls.set(node.name, (this.calls.get(node.name) ?? 0) + inputs.length)
        return this.#track(executeChunk.call(inner, node, inputs, signal))
      }
    }
    if (inner.stats !== undefined) this.stats = inner.stats.bind(inner)
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
    return this.#track(out)
  }

  /** Counts `out` as in flight until it settles. */
  #track<T>(out: PromiseLike<T>): Promise<T> {
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

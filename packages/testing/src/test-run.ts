import {
  createEngine,
  memoryStore,
  SteplineError,
  type AnyWorkflow,
  type EngineEventName,
  type Executor,
  type inferInput,
  type inferSteps,
  type RunHandle,
  type RunOutcome,
  type StepRecord,
  type Store,
} from '@stepline/core'
import { FakeClock } from './fake-clock'
import type { AnyMock, Mock } from './mocks'
import { planNames, quoteAll, type PlanNames } from './plan-names'
import { TestExecutor } from './test-executor'
import { trackStore } from './tracked-store'
import { TestRunResult, type RecordedEvent } from './result'

// Captured at load: a test that installs fake timers must not stall the runner's own loop.
const realSetImmediate = globalThis.setImmediate
const perfNow = performance.now.bind(performance)
const realNow = (): number => perfNow()

// Every engine event, by name: `satisfies` makes an event the engine gains a type error here
// until it is recorded too.
const EVENTS = Object.keys({
  'run:started': true,
  'step:started': true,
  'step:completed': true,
  'step:failed': true,
  'step:retrying': true,
  'step:skipped': true,
  'run:progress': true,
  'run:completed': true,
  'run:failed': true,
  'run:cancelled': true,
  'run:parked': true,
  'run:resumed': true,
  log: true,
} satisfies Record<EngineEventName, true>) as EngineEventName[]

/** Mocks by step name; names of `forEach` body steps and `parallel` branches (`fetch[0]`) work too. */
export type MocksFor<W> = {
  [K in keyof inferSteps<W> | (string & {})]?: K extends keyof inferSteps<W> ? Mock<outputOf<inferSteps<W>[K]>> : AnyMock
}
type outputOf<S> = S extends { output: infer O } ? O : unknown

/** Options of `testRun`. */
export interface TestRunOptions<W extends AnyWorkflow = AnyWorkflow> {
  /** Answers for steps by name, instead of running them. A name the workflow has no step (or branch) for rejects. */
  mocks?: MocksFor<W>
  /** Fail (and make `testRun` reject) when a step without a mock is reached. */
  strict?: boolean
  /** Virtual time; a fresh `fakeClock()` by default. Pass `'real'` to run on the system clock. */
  clock?: FakeClock | 'real'
  /** The run journal; an in-memory store by default. */
  store?: Store
  /** Executor for unmocked steps; by default plain steps run inline and `cpu()` steps in a worker pool. */
  executor?: Executor
  /** Steps in flight at once, as `createEngine({ concurrency })`. */
  concurrency?: number
  /** Answers to `waitForEvent` nodes by event name: each is sent when the run starts waiting for it. An event no wait awaits rejects. */
  events?: Record<string, unknown>
  /** Real milliseconds after which `testRun` gives up on a run that does not end. Default 10,000. */
  realTimeoutMs?: number
}

/**
 * Runs a workflow to its end in memory, on virtual time, with mocked steps, and returns what
 * happened: status, output, error, every step, a trace, the events and the summary.
 * @example
 * const run = await testRun(order, { orderId: 'o1' }, { mocks: { charge: { ok: true }, flaky: sequence(fail('503'), 'ok') } })
 * expect(run.status).toBe('completed')
 * run.expectOrder('validate', 'charge', 'ship')
 */
export async function testRun<W extends AnyWorkflow>(
  workflow: W,
  payload?: inferInput<W>,
  options: TestRunOptions<W> = {},
): Promise<TestRunResult<W>> {
  const names = planNames(workflow.plan().nodes)
  checkOptions(workflow.id, options, names)
  const clock = options.clock === 'real' ? undefined : (options.clock ?? new FakeClock())
  const mocks = (options.mocks ?? {}) as Record<string, Mock>
  const strict = options.strict ?? false
  // A chunk goes to the wrapped executor whole, so chunks are only sent when no chunked body is
  // mocked or must be reported as unmocked; otherwise its items go one at a time, to the mocks.
  const chunks = !strict && !names.chunked.some((name) => Object.hasOwn(mocks, name))
  const executor = new TestExecutor(workflow.id, mocks, strict, options.executor, chunks)
  const engine = createEngine({ store: trackStore(options.store ?? memoryStore(), executor), executor, ...(clock ? { clock } : {}), ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}) })
  const events: RecordedEvent[] = []
  const started = clock?.now() ?? Date.now()
  for (const type of EVENTS) {
    engine.on(type, (e: object) => {
      events.push({ type, at: (clock?.now() ?? Date.now()) - started, ...e } as RecordedEvent)
      executor.progress++
    })
  }
  // Answer waitForEvent nodes from `events` as soon as the run parks waiting for one.
  const answers = options.events ?? {}
  // The event the run is parked on now, when `events` does not answer it.
  const parked: { unanswered?: string | undefined } = {}
  engine.on('run:parked', (e) => {
    if (e.status !== 'waiting' || e.event === undefined) return
    if (Object.hasOwn(answers, e.event)) void engine.send(e.runId, e.event, answers[e.event]).catch(() => undefined)
    else parked.unanswered = e.event
  })
  engine.on('run:resumed', () => {
    parked.unanswered = undefined
  })
  let handle: RunHandle<unknown> | undefined
  let done = false
  let result: RunOutcome
  let journal: StepRecord[]
  try {
    handle = await engine.start(workflow as AnyWorkflow, payload)
    const outcome = handle.outcome().then((o) => {
      done = true
      return o
    })
    await driveUntil(() => done, clock, executor, options.realTimeoutMs ?? 10_000, workflow.id, parked)
    result = await outcome
    journal = await engine.getSteps(handle.id)
  } catch (error) {
    // The test is over: nothing of the run may go on after it (a retry on real time, a step on a
    // worker pool, a parked row another run could find), so cancel it and close the engine.
    if (handle !== undefined && !done) await handle.cancel('testRun gave up on the run').catch(() => undefined)
    await engine.close().catch(() => undefined)
    // A missing mock in strict mode comes first: what went wrong after it (an unanswered wait the
    // real step would have avoided, a run that did not end) follows from it.
    throw executor.unmocked ?? error
  }
  await engine.close()
  if (executor.unmocked) throw executor.unmocked
  return new TestRunResult<W>(workflow, result, journal, events, executor.calls, clock)
}

/** Mistakes in the test itself, reported before anything runs: a name is checked against the plan. */
function checkOptions(workflowId: string, options: TestRunOptions, names: PlanNames): void {
  const bad = (message: string): never => {
    throw new SteplineError('OPTIONS_INVALID', `testRun: ${message}`)
  }
  for (const name of Object.keys(options.mocks ?? {})) {
    if (names.mockable.includes(name)) continue
    const why = names.notMockable.get(name)
    if (why !== undefined) bad(`mocks: "${name}" of workflow "${workflowId}" ${why}.`)
    bad(`mocks: workflow "${workflowId}" has no step "${name}". Steps that can be mocked: ${quoteAll(names.mockable)}.`)
  }
  const awaited = [...new Set(names.events.values())]
  for (const name of Object.keys(options.events ?? {})) {
    if (!awaited.includes(name)) bad(`events: no waitForEvent of workflow "${workflowId}" waits for the event "${name}". Events it waits for: ${quoteAll(awaited)}.`)
  }
  const t = options.realTimeoutMs
  if (t !== undefined && !(typeof t === 'number' && t > 0)) bad(`expected \`realTimeoutMs\` as a number of milliseconds > 0, got ${String(t)}.`)
}

/**
 * Lets the run work, and moves virtual time forward when it only waits for time: at once when
 * no step is in flight, after `clock.idleMs` of real inactivity when one is (a step timeout).
 */
async function driveUntil(
  done: () => boolean,
  clock: FakeClock | undefined,
  executor: TestExecutor,
  realTimeoutMs: number,
  workflowId: string,
  parked: { readonly unanswered?: string | undefined },
): Promise<void> {
  const t0 = realNow()
  let seen = -1
  let quietSince = realNow()
  while (!done()) {
    await new Promise<void>((resolve) => realSetImmediate(resolve))
    if (done()) return
    const now = realNow()
    if (executor.progress !== seen) {
      seen = executor.progress
      quietSince = now
    }
    // Checked before time moves: a run that retries or loops forever on virtual time never ends either.
    if (now - t0 > realTimeoutMs) {
      throw new SteplineError(
        'RUN_TIMEOUT',
        `testRun: the run of workflow "${workflowId}" did not end within ${realTimeoutMs} ms of real time ` +
          `(${executor.inFlight} step(s) still in flight, ${clock?.pending ?? 0} timer(s) pending). ` +
          'Mock steps that wait for real I/O, or raise `realTimeoutMs`.',
      )
    }
    if (clock !== undefined && clock.pending > 0 && (executor.inFlight === 0 || now - quietSince >= clock.idleMs)) {
      clock.advanceToNext()
      quietSince = now
      continue
    }
    // Waiting for an event nobody will send, with no timeout to end the wait: say so now.
    const event = parked.unanswered
    if (event !== undefined && executor.inFlight === 0 && (clock === undefined || clock.pending === 0)) {
      throw new SteplineError(
        'EVENT_NOT_AWAITED',
        `testRun: the run of workflow "${workflowId}" waits for the event "${event}", which \`events\` does not answer. Add events: { '${event}': … } to testRun's options.`,
      )
    }
    // Nothing moved for a while: real work in flight, or a real timer (`clock: 'real'`). Yield a
    // little real time instead of spinning on setImmediate.
    if (now - quietSince > 2) await new Promise((r) => setTimeoutReal(r, 1))
  }
}

const setTimeoutReal = globalThis.setTimeout

import { EventEmitter } from 'eventemitter3'
import { nanoid } from 'nanoid'
import type { AnyWorkflow, Logger, inferInput, inferOutput } from '../builder/types'
import { WorkflowBuilder } from '../builder/workflow'
import { PlanError, SteplineError, deserializeError } from '../errors'
import type { EngineEvents } from '../events'
import { defaultExecutor } from '../executors/default'
import type { WorkerOptions } from '../executors/pool'
import { checkCpuModules } from './check-cpu'
import type { Executor } from '../executors/types'
import { compileWorkflow, type CompiledWorkflow } from '../plan/compile'
import type { Plan } from '../plan/types'
import { systemClock, type Clock } from '../runtime/clock'
import { Limiter } from '../runtime/limiter'
import { RunState, type RuntimeServices } from '../runtime/run-state'
import { memoryStore } from '../store/memory-store'
import type { ListRunsQuery, RunRecord, RunStatus, StepRecord, Store } from '../store/types'
import { ActiveRun, Outcome } from './active-run'
import { RunHandleImpl, type HandleSource, type RunHandle, type RunOutcome } from './handle'
import { validatePayload } from './validate'

// Captured at load so that fake timers installed later by a test do not stall run starts.
const realSetImmediate = globalThis.setImmediate

/** Options of `createEngine`. */
export interface EngineOptions {
  /** The run journal. Default: an in-memory store. */
  store?: Store
  /** Steps (and `parallel`/`race` branches) in flight at once across all runs. Default unlimited. */
  concurrency?: number
  /** Time source for timeouts, retries and `sleep`. Default: the system clock. */
  clock?: Clock
  /** Carries out steps. Default: plain steps inline, `cpu()` steps in a worker pool (`workers`). */
  executor?: Executor
  /** The worker pool of `cpu()` steps: threads (default `os.availableParallelism()`), idle timeout, queue, heap limits. */
  workers?: WorkerOptions
  /** Also print `ctx.log` lines here (e.g. `console`). They are always emitted as `log` events. */
  logger?: Partial<Logger>
  /** Workflows to register at once. */
  workflows?: AnyWorkflow[]
}

/** Options of `engine.start`. */
export interface StartOptions {
  /** Starting twice with the same key (per workflow) gives the same run, never two. */
  idempotencyKey?: string
  /** Use this run id instead of a generated one. */
  runId?: string
}

type PayloadArgs<W> = unknown extends inferInput<W>
  ? [payload?: unknown, options?: StartOptions]
  : undefined extends inferInput<W>
    ? [payload?: inferInput<W>, options?: StartOptions]
    : [payload: inferInput<W>, options?: StartOptions]

interface Registered {
  builder: WorkflowBuilder
  compiled: CompiledWorkflow
  runLimiter: Limiter | undefined
}

/**
 * Runs workflows: registers them, starts and tracks runs, journals every step in the store.
 * @example
 * const engine = createEngine({ concurrency: 100 })
 * const output = await engine.run(hello, { name: 'Ada' })
 */
export function createEngine(options: EngineOptions = {}): Engine {
  return new Engine(options)
}

export class Engine {
  readonly store: Store
  readonly #services: RuntimeServices
  readonly #events = new EventEmitter<EngineEvents>()
  readonly #registry = new Map<string, Registered>()
  readonly #active = new Map<string, ActiveRun>()
  readonly #onEnd = (run: ActiveRun): void => {
    this.#active.delete(run.state.id)
  }
  #closed = false

  constructor(options: EngineOptions = {}) {
    checkEngineOptions(options)
    this.store = options.store ?? memoryStore()
    this.#services = {
      store: this.store,
      clock: options.clock ?? systemClock,
      executor: options.executor ?? defaultExecutor({ workers: options.workers ?? {} }),
      events: this.#events,
      stepLimiter: options.concurrency === undefined || options.concurrency === Infinity ? undefined : new Limiter(options.concurrency),
      logger: options.logger,
    }
    for (const wf of options.workflows ?? []) this.register(wf)
  }

  /**
   * Compiles and registers workflows so they can be started by id. Throws a `PlanError` for an
   * invalid definition, or when another workflow already has the id.
   * @example
   * engine.register(order, refund)
   */
  register(...workflows: AnyWorkflow[]): this {
    for (const wf of workflows) this.#register(wf)
    return this
  }

  #register(wf: unknown): Registered {
    if (!(wf instanceof WorkflowBuilder)) {
      throw new SteplineError('OPTIONS_INVALID', `engine.register: expected a workflow made with workflow('id'), got ${wf === null ? 'null' : typeof wf}.`)
    }
    const existing = this.#registry.get(wf.id)
    if (existing) {
      if (existing.builder === wf) return existing
      if (existing.compiled.plan.hash === compileWorkflow(wf).plan.hash && existing.builder.ops().length === wf.ops().length) {
        // The same definition built twice (e.g. a module loaded twice): keep the newer functions.
        existing.builder = wf
        existing.compiled = compileWorkflow(wf)
        return existing
      }
      throw new PlanError(wf.id, undefined, `Workflow "${wf.id}" is already registered with a different definition. Workflow ids must be unique per engine; rename one of them.`)
    }
    const compiled = compileWorkflow(wf)
    checkCpuModules(compiled.plan)
    const concurrency = compiled.plan.options.concurrency
    const reg: Registered = { builder: wf, compiled, runLimiter: concurrency === undefined ? undefined : new Limiter(concurrency) }
    this.#registry.set(wf.id, reg)
    return reg
  }

  #resolve(wf: AnyWorkflow | string): Registered {
    if (typeof wf !== 'string') return this.#register(wf)
    const reg = this.#registry.get(wf)
    if (reg) return reg
    const known = [...this.#registry.keys()]
    throw new SteplineError(
      'WORKFLOW_NOT_FOUND',
      `No workflow "${wf}" is registered with this engine${known.length ? ` (registered: ${known.map((k) => `"${k}"`).join(', ')})` : ''}. Register it with engine.register(workflow) or pass the workflow itself.`,
    )
  }

  /** The compiled plan of a registered workflow. */
  planOf(workflowId: string): Plan | undefined {
    return this.#registry.get(workflowId)?.compiled.plan
  }

  /** The registered workflows' ids. */
  workflows(): string[] {
    return [...this.#registry.keys()]
  }

  /**
   * Starts a run and returns its handle at once. The payload is validated against the
   * workflow's `input` schema first: an invalid one throws a `ValidationError` and no run exists.
   * @example
   * const run = await engine.start(order, { orderId: 'o1' }, { idempotencyKey: 'o1' })
   * await run.result()
   */
  // The workflow overload comes last so that a wrong payload is reported against it.
  async start(workflowId: string, payload?: unknown, options?: StartOptions): Promise<RunHandle<unknown>>
  async start<W extends AnyWorkflow>(workflow: W, ...args: PayloadArgs<W>): Promise<RunHandle<inferOutput<W>>>
  async start(wf: AnyWorkflow | string, payload?: unknown, options?: StartOptions): Promise<RunHandle<unknown>> {
    if (this.#closed) throw new SteplineError('ENGINE_CLOSED', 'This engine is closed; create a new one to start runs.')
    const reg = this.#resolve(wf)
    const schema = reg.builder.options.input
    const value = schema === undefined ? payload : await validatePayload(reg.builder.id, schema, payload)
    const limiter = reg.runLimiter
    const immediate = limiter === undefined || limiter.tryAcquire()
    const record: RunRecord = {
      id: options?.runId ?? nanoid(),
      workflowId: reg.builder.id,
      planHash: reg.compiled.plan.hash,
      status: immediate ? 'running' : 'queued',
      payload: value,
      output: undefined,
      error: undefined,
      idempotencyKey: options?.idempotencyKey,
      attempt: 1,
      createdAt: this.#services.clock.now(),
      startedAt: undefined,
      endedAt: undefined,
    }
    let created = this.store.createRun(record)
    if (created instanceof Promise) created = await created
    if (!created.created) {
      if (immediate) limiter?.release()
      return this.handle(created.run.id)
    }
    return this.#launch(record, reg, immediate ? 'held' : 'queue')
  }

  /**
   * Makes the run active here. `held`: it already holds a slot of the workflow's run limiter
   * (or there is none); `queue`: it waits for one; `none`: it ends without running.
   */
  #launch(record: RunRecord, reg: Registered, slot: 'held' | 'queue' | 'none', replay?: Map<string, StepRecord>): ActiveRun {
    const state = new RunState(record, reg.compiled, this.#services)
    state.replay = replay
    const run = new ActiveRun(state, reg.runLimiter, this.#onEnd)
    this.#active.set(record.id, run)
    if (slot === 'none') return run
    const wait = slot === 'held' ? undefined : reg.runLimiter?.acquire()
    run.holdsSlot = reg.runLimiter !== undefined
    if (wait === undefined) {
      this.#schedule(run)
      return run
    }
    run.holdsSlot = false
    void wait.then(async () => {
      run.holdsSlot = true
      if (state.done) return run.releaseSlot()
      const w = this.store.updateRun(record.id, { status: 'running', startedAt: this.#services.clock.now() })
      if (w !== undefined) await w
      return run.execute()
    })
    return run
  }

  /**
   * Runs start in a macrotask after `start()` returns, so that `handle.on(…)` attached right
   * after `await engine.start(…)` sees every event. One timer serves all runs started in a tick.
   */
  #schedule(run: ActiveRun): void {
    this.#ready.push(run)
    if (this.#ready.length === 1) realSetImmediate(this.#flush)
  }

  readonly #ready: ActiveRun[] = []
  readonly #flush = (): void => {
    const runs = this.#ready.splice(0)
    for (const run of runs) void run.execute()
  }

  /**
   * Starts a run and waits for its output; throws the run's error if it fails.
   * @example
   * const greeting = await engine.run(hello, { name: 'Ada' })
   */
  async run(workflowId: string, payload?: unknown, options?: StartOptions): Promise<unknown>
  async run<W extends AnyWorkflow>(workflow: W, ...args: PayloadArgs<W>): Promise<inferOutput<W>>
  async run(wf: AnyWorkflow | string, payload?: unknown, options?: StartOptions): Promise<unknown> {
    const handle = await this.start(wf as string, payload, options)
    return handle.result()
  }

  /**
   * A handle to any run in the store: live if this engine runs it, otherwise read from the store.
   * @example
   * const outcome = await engine.handle(runId).outcome()
   */
  handle(runId: string): RunHandle<unknown> {
    const active = this.#active.get(runId)
    if (active) return active
    return new RunHandleImpl(runId, '', new StoredRun(runId, this))
  }

  /** The stored record of a run, or undefined. */
  async getRun(runId: string): Promise<RunRecord | undefined> {
    return this.store.getRun(runId)
  }

  /** Runs in the store, newest first. */
  async listRuns(query?: ListRunsQuery): Promise<RunRecord[]> {
    return this.store.listRuns(query)
  }

  /** The journal of a run, in the order its entries were first written. */
  async getSteps(runId: string): Promise<StepRecord[]> {
    return this.store.getSteps(runId)
  }

  /**
   * Cancels a run. One this engine executes stops at once (in-flight steps see `ctx.signal`
   * abort); one only in the store is marked cancelled there. Throws `RUN_NOT_FOUND` for an unknown id.
   * @example
   * await engine.cancel(run.id, 'customer withdrew')
   */
  async cancel(runId: string, reason?: string): Promise<void> {
    const active = this.#active.get(runId)
    if (active) return active.cancel(reason)
    const rec = await this.store.getRun(runId)
    if (rec === undefined) throw new SteplineError('RUN_NOT_FOUND', `No run "${runId}" exists in this engine's store.`)
    if (rec.status === 'queued' || rec.status === 'running') {
      await this.store.updateRun(runId, { status: 'cancelled', endedAt: this.#services.clock.now() })
    }
  }

  /**
   * Resumes the unfinished runs in the store that no engine is executing here: finished steps
   * are replayed from the journal, the step that was in flight runs again. Returns their handles.
   * @example
   * const engine = createEngine({ store, workflows: [order] }); await engine.recover()
   */
  async recover(): Promise<RunHandle<unknown>[]> {
    const runs = await this.store.listRuns({ status: ['running', 'queued'] })
    const handles: RunHandle<unknown>[] = []
    for (const rec of runs) {
      if (this.#active.has(rec.id)) continue
      const reg = this.#registry.get(rec.workflowId)
      if (reg === undefined) continue
      const steps = await this.store.getSteps(rec.id)
      const next: RunRecord = { ...rec, attempt: rec.attempt + 1, status: 'running' }
      await this.store.updateRun(rec.id, { attempt: next.attempt, status: 'running' })
      if (rec.planHash !== reg.compiled.plan.hash) {
        const run = this.#launch(next, reg, 'none')
        const err = new PlanError(rec.workflowId, undefined, `Run ${rec.id} started under plan ${rec.planHash} of workflow "${rec.workflowId}", but the registered plan is ${reg.compiled.plan.hash}. The definition changed while the run was unfinished; finish or cancel such runs before deploying a changed workflow.`)
        void run.finish('failed', undefined, err)
        handles.push(run)
        continue
      }
      handles.push(this.#launch(next, reg, 'queue', new Map(steps.map((s) => [s.key, s]))))
    }
    return handles
  }

  /** Listens to every run's events. */
  on<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this {
    ;(this.#events.on as (e: string, l: unknown) => unknown)(event, listener)
    return this
  }

  once<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this {
    ;(this.#events.once as (e: string, l: unknown) => unknown)(event, listener)
    return this
  }

  off<E extends keyof EngineEvents>(event: E, listener: EngineEvents[E]): this {
    ;(this.#events.off as (e: string, l: unknown) => unknown)(event, listener)
    return this
  }

  /** Runs this engine is executing now. */
  get activeRuns(): number {
    return this.#active.size
  }

  /**
   * Stops accepting runs, waits for the runs in flight to end, and closes the executor and store.
   * @example
   * process.on('SIGTERM', () => engine.close())
   */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.all([...this.#active.values()].map((r) => r.outcome()))
    await this.#services.executor.close?.()
    await this.store.close?.()
  }
}

/** A run this engine does not execute: answers from the store, polling until it ends. */
class StoredRun implements HandleSource<unknown> {
  #status: RunStatus = 'queued'
  readonly #id: string
  readonly #engine: Engine
  #emitter: EventEmitter<EngineEvents> | undefined

  constructor(id: string, engine: Engine) {
    this.#id = id
    this.#engine = engine
  }

  status(): RunStatus {
    return this.#status
  }

  async outcome(): Promise<RunOutcome<unknown>> {
    for (;;) {
      const rec = await this.#engine.store.getRun(this.#id)
      if (rec === undefined) throw new SteplineError('RUN_NOT_FOUND', `No run "${this.#id}" exists in this engine's store.`)
      this.#status = rec.status
      if (rec.status === 'completed' || rec.status === 'failed' || rec.status === 'cancelled') {
        const steps = await this.#engine.store.getSteps(this.#id)
        const nodes = this.#engine.planOf(rec.workflowId)?.nodes ?? []
        return new Outcome(rec.id, rec.workflowId, rec.status, rec.output, rec.error && deserializeError(rec.error), nodes, steps, rec.startedAt ?? rec.createdAt, rec.endedAt ?? rec.createdAt)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  cancel(reason?: string): Promise<void> {
    return this.#engine.cancel(this.#id, reason)
  }

  emitter(): EventEmitter<EngineEvents> {
    return (this.#emitter ??= new EventEmitter<EngineEvents>())
  }
}

function checkEngineOptions(options: EngineOptions): void {
  const bad = (m: string): never => {
    throw new SteplineError('OPTIONS_INVALID', `createEngine: ${m}`)
  }
  if (typeof options !== 'object' || options === null) bad('expected an options object.')
  const c = options.concurrency
  if (c !== undefined && c !== Infinity && (typeof c !== 'number' || !Number.isInteger(c) || c < 1)) {
    bad(`expected \`concurrency\` (steps in flight) as a whole number ≥ 1, got ${String(c)}.`)
  }
  const s = options.store as Partial<Store> | undefined
  if (s !== undefined && (typeof s.createRun !== 'function' || typeof s.recordStep !== 'function')) {
    bad('expected `store` to implement the Store interface (createRun, recordStep, …), e.g. memoryStore().')
  }
}

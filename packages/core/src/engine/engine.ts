import { EventEmitter } from 'eventemitter3'
import type { AnyWorkflow, Logger, inferInput, inferOutput } from '../builder/types'
import { WorkflowBuilder } from '../builder/workflow'
import { CancelledError, PlanError, SteplineError, deserializeError, messageOf, serializeError } from '../errors'
import { toMs, type Duration } from '../duration'
import type { Parked } from '../runtime/park'
import { FINISHED_STATUSES } from '../store/types'
import type { EngineEvents } from '../events'
import { defaultExecutor } from '../executors/default'
import type { WorkerOptions } from '../executors/pool'
import { checkCpuModules } from './check-cpu'
import type { Executor } from '../executors/types'
import { compileWorkflow, type CompiledWorkflow } from '../plan/compile'
import type { Plan, PlanNode } from '../plan/types'
import { systemClock, type Clock } from '../runtime/clock'
import { Limiter } from '../runtime/limiter'
import { RunState, type RuntimeServices } from '../runtime/run-state'
import { memoryStore } from '../store/memory-store'
import type { CreateRunOptions, ListRunsQuery, RunRecord, RunStatus, StepRecord, Store } from '../store/types'
import { ActiveRun, Outcome, type RunHooks } from './active-run'
import { RunHandleImpl, type RunHandle } from './handle'
import { newRunId } from './run-id'
import { StoredRun } from './stored-run'
import { validatePayload } from './validate'

// Captured at load so that fake timers installed later by a test do not stall run starts.
const realSetImmediate = globalThis.setImmediate

/** How soon a wake-up pass that found the store down tries again. */
const WAKE_RETRY_MS = 1000

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
  /**
   * Resume unfinished runs of registered workflows from the store on creation and on each
   * `register()` (crash recovery), and arm the wake-up of parked runs. Default true.
   */
  recover?: boolean
  /** A top-level `sleep` at least this long parks the run in the store instead of holding a timer. Default `'1s'`. */
  parkAfter?: Duration
  /**
   * Resume runs whose plan changed since they started (journal entries are matched by node id).
   * Default false: such runs fail with a `PlanError` (code `PLAN_CHANGED`) naming both hashes.
   */
  resumeChangedPlans?: boolean
}

/** Where `engine.send` delivers an event: one run by id, or every run waiting with a match key. */
export type EventTarget = string | { runId: string } | { match: string }

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

/** Runs workflows: created with `createEngine()`. */
export class Engine {
  readonly store: Store
  readonly #services: RuntimeServices
  readonly #events = new EventEmitter<EngineEvents>()
  readonly #registry = new Map<string, Registered>()
  readonly #active = new Map<string, ActiveRun>()
  /**
   * Runs this engine is moving in or out of memory, for the length of one store call (`start`
   * creating a run or checking a chosen id, a wake-up or recovery moving a run to running, a run
   * parking): the store may show them as running while none is active here. Recovery skips them;
   * `cancel` and `close` wait until they landed.
   */
  readonly #claiming = new Set<string>()
  /** Callers waiting for the outcome of a parked run, by run id. */
  readonly #waiters = new Map<string, ((o: Outcome) => void)[]>()
  readonly #hooks: RunHooks = {
    end: (run, outcome) => {
      this.#active.delete(run.state.id)
      this.#left?.()
      const waiting = this.#waiters.get(run.state.id)
      if (waiting) {
        this.#waiters.delete(run.state.id)
        for (const w of waiting) w(outcome)
      }
    },
    park: (run, parked, resolvers) => this.#park(run, parked, resolvers),
    waitParked: (runId) => this.#waitParked(runId),
    activeStatus: (runId) => this.#active.get(runId)?.status,
    cancel: (runId, reason) => this.cancel(runId, reason),
  }
  readonly #options: EngineOptions
  readonly #ownsStore: boolean
  #closed = false
  #wakeTimer: { at: number; cancel: () => void } | undefined
  /** While `close` waits: called each time a run leaves memory (it ended or parked). */
  #left: (() => void) | undefined
  #closing: Promise<void> | undefined
  readonly #closeController = new AbortController()
  #recovery: Promise<RunHandle<unknown>[]> = Promise.resolve([])
  #recoverySoon = false

  constructor(options: EngineOptions = {}) {
    checkEngineOptions(options)
    this.store = options.store ?? memoryStore()
    this.#ownsStore = options.store === undefined
    this.#services = {
      store: this.store,
      clock: options.clock ?? systemClock,
      executor: options.executor ?? defaultExecutor({ workers: options.workers ?? {} }),
      events: this.#events,
      stepLimiter: options.concurrency === undefined || options.concurrency === Infinity ? undefined : new Limiter(options.concurrency),
      logger: options.logger,
      parkAfterMs: options.parkAfter === undefined ? 1000 : toMs(options.parkAfter)!,
    }
    this.#options = options
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
    if (this.#options.recover !== false) this.#recoverSoon()
    return this
  }

  /** One recovery pass after the current tick, however many workflows register in it. */
  #recoverSoon(): void {
    if (this.#recoverySoon) return
    this.#recoverySoon = true
    realSetImmediate(() => {
      this.#recoverySoon = false
      if (!this.#closed) void this.recover().catch((e: unknown) => this.#services.logger?.error?.(`recovery failed: ${String(e)}`))
    })
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

  /** @internal the outcome of a finished run as the store holds it */
  outcomeOf(rec: RunRecord, steps: StepRecord[]): Outcome {
    return this.#outcomeOf(rec, steps)
  }

  /** The engine's time source (the `clock` option, or the system clock): schedules share it. */
  get clock(): Clock {
    return this.#services.clock
  }

  /**
   * Aborts when `close()` is called, before the runs in flight have ended: what you started
   * alongside this engine (a poller, a queue consumer) can stop with it. Schedules started with
   * `startSchedules` stop on it, so a closed engine leaves no timer keeping the process alive.
   * @example
   * engine.closeSignal.addEventListener('abort', () => consumer.stop(), { once: true })
   */
  get closeSignal(): AbortSignal {
    return this.#closeController.signal
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
    if (options?.idempotencyKey !== undefined) checkIdOption('idempotencyKey', options.idempotencyKey)
    const id = options?.runId ?? newRunId()
    if (options?.runId !== undefined) this.#claimRunId(id)
    const limiter = reg.runLimiter
    const immediate = limiter === undefined || limiter.tryAcquire()
    const now = this.#services.clock.now()
    const record: RunRecord = {
      id,
      workflowId: reg.builder.id,
      planHash: reg.compiled.plan.hash,
      status: immediate ? 'running' : 'queued',
      payload: value,
      output: undefined,
      error: undefined,
      idempotencyKey: options?.idempotencyKey,
      attempt: 1,
      createdAt: now,
      startedAt: immediate ? now : undefined,
      endedAt: undefined,
    }
    let created: ReturnType<Store['createRun']>
    try {
      created = this.store.createRun(record, options?.runId === undefined ? undefined : ID_CHOSEN)
      if (created instanceof Promise) {
        this.#claiming.add(record.id)
        created = await created
      }
    } catch (e) {
      if (immediate) limiter?.release()
      throw e
    } finally {
      // Released in the continuation that launches the run right after: no one sees it neither claimed nor active.
      this.#claiming.delete(record.id)
    }
    if (!created.created) {
      if (immediate) limiter?.release()
      const other = created.run
      // A run has the id the caller chose: a retry (this workflow, the same key) gets it back.
      if (other.id === id && !isRetryOf(other, reg.builder.id, options?.idempotencyKey)) throw runExists(id, other)
      return this.handle(other.id)
    }
    return this.#launch(record, reg, immediate ? 'held' : 'queue')
  }

  /**
   * Claims a run id the caller chose, so that no other `start` of this engine takes it meanwhile
   * (`RUN_EXISTS` when one has it). Whether a run in the store has it, `createRun` answers
   * atomically (told `idChosen`); the claim ends once it settled.
   */
  #claimRunId(id: string): void {
    checkIdOption('runId', id)
    if (this.#claiming.has(id) || this.#active.has(id)) throw runExists(id)
    this.#claiming.add(id)
  }

  /**
   * Makes the run active here. `held`: it already holds a slot of the workflow's run limiter
   * (or there is none); `queue`: it waits for one; `none`: it ends without running.
   */
  #launch(record: RunRecord, reg: Registered, slot: 'held' | 'queue' | 'none', replay?: Map<string, StepRecord>): ActiveRun {
    const state = new RunState(record, reg.compiled, this.#services)
    state.replay = replay
    const run = new ActiveRun(state, reg.runLimiter, this.#hooks)
    this.#active.set(record.id, run)
    // Before it executes: a replayed sleep that is due completes at once, and its step:completed comes after.
    if (replay !== undefined && state.listening('run:resumed')) state.emit('run:resumed', { runId: record.id, workflowId: record.workflowId, attempt: record.attempt })
    if (slot === 'none') return run
    const wait = slot === 'held' ? undefined : reg.runLimiter?.acquire()
    run.holdsSlot = reg.runLimiter !== undefined
    if (wait === undefined) {
      // A new run starts after `start()` returned (see #schedule); a resumed one has no new handle to wait for.
      if (replay === undefined) this.#schedule(run)
      else void run.execute()
      return run
    }
    run.holdsSlot = false
    void wait.then(async () => {
      run.holdsSlot = true
      if (state.done) return run.releaseSlot()
      const startedAt = record.startedAt ?? this.#services.clock.now()
      state.startedAt = startedAt
      const w = this.store.updateRun(record.id, { status: 'running', startedAt })
      if (w !== undefined) await w
      return run.execute()
    }).catch((e: unknown) => run.finish('failed', undefined, e)) // the store refused its start
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
   * abort); one only in the store is marked cancelled there. Resolves `true` when this call
   * ended the run, `false` when it had already ended (completed, failed, or cancelled by an
   * earlier call, here or in another process sharing the store). Throws `RUN_NOT_FOUND` for an
   * unknown id.
   * @example
   * if (!(await engine.cancel(run.id, 'customer withdrew'))) console.log('too late: it had ended')
   */
  async cancel(runId: string, reason?: string): Promise<boolean> {
    // A run between its transition to running and memory (one store call) is cancelled once it
    // is there: cancelled in the store meanwhile, it would be resumed and finish as if not.
    while (this.#claiming.has(runId)) await new Promise((r) => realSetImmediate(r))
    const active = this.#active.get(runId)
    if (active) return active.cancel(reason)
    const rec = await this.store.getRun(runId)
    if (rec === undefined) throw new SteplineError('RUN_NOT_FOUND', `No run "${runId}" exists in this engine's store.`)
    const endedAt = this.#services.clock.now()
    const err = new CancelledError(runId, reason)
    const done = await this.store.transitionRun(runId, ['queued', 'running', 'sleeping', 'waiting'], 'cancelled', { endedAt, error: serializeError(err) })
    if (done) this.#resolveWaiters(runId, new Outcome(runId, rec.workflowId, 'cancelled', undefined, err, [], [], rec.startedAt ?? rec.createdAt, endedAt))
    return done
  }

  /** The outcome of a run that left memory: from whoever ends it next, or from the store if it ended already. */
  async #waitParked(runId: string): Promise<Outcome> {
    let settled = false
    return new Promise<Outcome>((resolve, reject) => {
      const once = (o: Outcome): void => {
        if (settled) return
        settled = true
        resolve(o)
      }
      this.#addWaiter(runId, once)
      // Registered first, then checked: a run that ends in between still reaches `once`.
      void (async () => {
        const rec = await this.store.getRun(runId)
        if (rec === undefined || !FINISHED_STATUSES.includes(rec.status)) return
        const steps = await this.store.getSteps(runId)
        once(this.#outcomeOf(rec, steps))
      })().catch(reject)
    })
  }

  #outcomeOf(rec: RunRecord, steps: StepRecord[]): Outcome {
    const nodes = this.planOf(rec.workflowId)?.nodes ?? []
    return new Outcome(rec.id, rec.workflowId, rec.status as 'completed' | 'failed' | 'cancelled', rec.output, rec.error && deserializeError(rec.error), nodes, steps, rec.startedAt ?? rec.createdAt, rec.endedAt ?? rec.createdAt)
  }

  #addWaiter(runId: string, resolve: (o: Outcome) => void): void {
    const list = this.#waiters.get(runId)
    if (list) list.push(resolve)
    else this.#waiters.set(runId, [resolve])
  }

  #resolveWaiters(runId: string, outcome: Outcome): void {
    const list = this.#waiters.get(runId)
    if (!list) return
    this.#waiters.delete(runId)
    for (const r of list) r(outcome)
  }

  /**
   * Sends an event to runs waiting for it with `.waitForEvent(name)`: to one run by id (the
   * event is kept if the run has not reached its wait yet), or to every run waiting with a
   * match key. Delivery is exactly once per run and event name: sending it again throws
   * `EVENT_ALREADY_DELIVERED`; sending to a run that no longer waits throws `EVENT_NOT_AWAITED`.
   * @example
   * await engine.send(runId, 'approval', { approved: true })
   * await engine.send({ match: 'order-42' }, 'approval', { approved: true })
   */
  async send(target: EventTarget, name: string, data?: unknown): Promise<{ runIds: string[] }> {
    if (typeof name !== 'string' || name === '') throw new SteplineError('OPTIONS_INVALID', `engine.send: expected an event name as a non-empty string, got ${String(name)}.`)
    if (typeof target === 'object' && target !== null && 'match' in target) {
      const runs = await this.store.waitingFor(name, target.match)
      if (runs.length === 0) {
        throw new SteplineError('EVENT_NOT_AWAITED', `engine.send: no run is waiting for "${name}" with match key "${target.match}". Check the key, or send to a run id so the event is kept until the run reaches its wait.`)
      }
      for (const run of runs) await this.#deliver(run, name, data)
      return { runIds: runs.map((r) => r.id) }
    }
    const runId = typeof target === 'string' ? target : target.runId
    const run = await this.store.getRun(runId)
    if (run === undefined) throw new SteplineError('RUN_NOT_FOUND', `engine.send: no run "${runId}" exists in this engine's store.`)
    if (FINISHED_STATUSES.includes(run.status)) {
      throw new SteplineError('EVENT_NOT_AWAITED', `engine.send: run ${runId} is ${run.status}; it no longer waits for "${name}".`)
    }
    // A run that is not waiting may have passed its wait already (a waiting one is read no further).
    if (run.status !== 'waiting') {
      const ended = (await this.store.getSteps(runId)).find((s) => s.kind === 'waitForEvent' && s.status !== 'running' && this.#eventOf(run.workflowId, s.nodeId) === name)
      // A wait that got its event leaves it in the store (`#deliver` then reports the repeat); its
      // output says nothing, as an event may carry no data.
      if (ended !== undefined && (await this.store.getEvent(runId, name)) === undefined) {
        throw new SteplineError('EVENT_NOT_AWAITED', `engine.send: run ${runId} stopped waiting for "${name}" (its wait "${ended.name}" ${ended.status === 'failed' ? 'timed out' : 'ended'}); the event was not delivered.`)
      }
    }
    await this.#deliver(run, name, data)
    return { runIds: [runId] }
  }

  #eventOf(workflowId: string, nodeId: string): string | undefined {
    const find = (nodes: readonly PlanNode[]): string | undefined => {
      for (const n of nodes) {
        if (n.id === nodeId && n.kind === 'waitForEvent') return n.event
        if (n.kind === 'branch') {
          const hit = n.cases.map((c) => find(c.nodes)).find(Boolean) ?? (n.otherwise && find(n.otherwise.nodes))
          if (hit) return hit
        }
      }
      return undefined
    }
    return find(this.planOf(workflowId)?.nodes ?? [])
  }

  async #deliver(run: RunRecord, name: string, data: unknown): Promise<void> {
    const stored = await this.store.putEvent({ runId: run.id, name, data, sentAt: this.#services.clock.now() })
    if (!stored) {
      throw new SteplineError('EVENT_ALREADY_DELIVERED', `engine.send: run ${run.id} already received "${name}"; an event is delivered once per run. Use another event name for another answer.`)
    }
    if (run.status === 'waiting' && run.waitFor?.event === name) await this.#wake(run.id, run)
  }

  /**
   * Deletes finished runs that ended more than `olderThan` ago, with their journals and events.
   * @example
   * await engine.prune({ olderThan: '30d' })
   */
  async prune(options: { olderThan: Duration }): Promise<number> {
    const ms = toMs(options?.olderThan)
    if (ms === undefined) throw new SteplineError('OPTIONS_INVALID', `engine.prune: expected \`olderThan\` as a duration like '30d', got ${String(options?.olderThan)}.`)
    return this.store.pruneRuns(this.#services.clock.now() - ms)
  }

  /** Writes the parked run's row and arms its wake-up; the run leaves memory. */
  async #park(run: ActiveRun, parked: Parked, resolvers: ((o: Outcome) => void)[] | undefined): Promise<void> {
    const s = run.state
    // Until its transition lands the store shows the run as running: recovery must leave it be.
    this.#claiming.add(s.id)
    this.#active.delete(s.id)
    this.#left?.()
    if (resolvers) for (const r of resolvers) this.#addWaiter(s.id, r)
    let moved: boolean
    try {
      moved = await this.store.transitionRun(s.id, ['running'], parked.status, { wakeAt: parked.wakeAt, waitFor: parked.waitFor })
    } finally {
      this.#claiming.delete(s.id)
    }
    if (!moved) return
    if (s.listening('run:parked')) {
      s.emit('run:parked', { runId: s.id, workflowId: s.workflowId, status: parked.status, wakeAt: parked.wakeAt, event: parked.waitFor?.event })
    }
    // The run is parked now: a store failure from here on must not fail it (recovery or the
    // next wake-up pass picks it up), only be told.
    try {
      // An event sent between the wait's check and the row's update would otherwise go unnoticed.
      if (parked.status === 'waiting' && (await this.store.getEvent(s.id, parked.waitFor!.event)) !== undefined) await this.#wake(s.id)
      await this.#armWake()
    } catch (e) {
      this.#services.logger?.error?.(`[${s.workflowId} ${s.id}] parked, but arming its wake-up failed: ${String(e)}`)
    }
  }

  /**
   * Resumes a parked run from its journal, if this call is the one that claims it. `read`: its
   * record as the caller just read it (what a resume takes from it does not change while the run
   * is parked; the transition below decides whether it is still parked).
   */
  async #wake(runId: string, read?: RunRecord): Promise<void> {
    const rec = read ?? (await this.store.getRun(runId))
    if (rec === undefined) return
    const reg = this.#registry.get(rec.workflowId)
    if (reg === undefined || this.#closed) return
    // Read before the transition: a parked run's journal does not change, and a cancel that lands
    // meanwhile makes the transition fail instead of being overtaken by the resume.
    const steps = await this.store.getSteps(runId)
    if (this.#claiming.has(runId)) return
    const slot = this.#slotFor(reg)
    const status = slot === 'held' ? 'running' : 'queued'
    if (!(await this.#claimFor(runId, ['sleeping', 'waiting'], status, { wakeAt: undefined, waitFor: undefined }, reg, slot))) return
    this.#resume({ ...rec, status, wakeAt: undefined, waitFor: undefined }, reg, steps, slot)
  }

  /**
   * Whether a run this engine resumes can go on at once (`held`: it took a slot of its workflow's
   * `concurrency`, or there is no limit) or must wait for a slot (`queue`): then it is `queued`
   * in the store meanwhile, as a new run is, not `running`.
   */
  #slotFor(reg: Registered): 'held' | 'queue' {
    return reg.runLimiter === undefined || reg.runLimiter.tryAcquire() ? 'held' : 'queue'
  }

  /**
   * Moves a run this engine is about to resume from `from` to `to`, if this call is the one that
   * claims it; a slot taken for it goes back when it does not.
   */
  async #claimFor(runId: string, from: readonly RunStatus[], to: RunStatus, patch: Partial<RunRecord>, reg: Registered, slot: 'held' | 'queue'): Promise<boolean> {
    // Claimed before the transition: a store may show the run as running before the await returns.
    this.#claiming.add(runId)
    let moved = false
    try {
      moved = await this.store.transitionRun(runId, from, to, patch)
      return moved
    } finally {
      this.#claiming.delete(runId)
      if (!moved && slot === 'held') reg.runLimiter?.release()
    }
  }

  /** One timer for all parked runs: the soonest wake-up in the store. */
  async #armWake(): Promise<void> {
    if (this.#closed) return
    const next = await this.store.nextWakeAt()
    if (next === undefined) return
    if (this.#wakeTimer !== undefined && this.#wakeTimer.at <= next) return
    this.#wakeTimer?.cancel()
    const { clock } = this.#services
    const cancel = clock.setTimer(() => {
      this.#wakeTimer = undefined
      void this.#wakeDue()
    }, Math.max(0, next - clock.now()))
    this.#wakeTimer = { at: next, cancel }
  }

  async #wakeDue(): Promise<void> {
    try {
      for (;;) {
        const due = await this.store.dueRuns(this.#services.clock.now(), 100)
        for (const run of due) await this.#wake(run.id, run)
        if (due.length < 100) break
      }
      await this.#armWake()
    } catch (e) {
      // The store is down: parked runs stay parked; try again in a second rather than never.
      this.#services.logger?.error?.(`waking parked runs failed, retrying in ${WAKE_RETRY_MS} ms: ${String(e)}`)
      if (this.#closed) return
      const { clock } = this.#services
      this.#wakeTimer?.cancel()
      const cancel = clock.setTimer(() => {
        this.#wakeTimer = undefined
        void this.#wakeDue()
      }, WAKE_RETRY_MS)
      this.#wakeTimer = { at: clock.now() + WAKE_RETRY_MS, cancel }
    }
  }

  /**
   * Continues a run from its journal (after a crash, a sleep, an event). A run whose plan
   * changed since it started fails with PLAN_CHANGED unless `resumeChangedPlans` is set.
   */
  #resume(rec: RunRecord, reg: Registered, steps: StepRecord[], slot: 'held' | 'queue'): ActiveRun {
    if (rec.planHash !== reg.compiled.plan.hash && this.#options.resumeChangedPlans !== true) {
      if (slot === 'held') reg.runLimiter?.release()
      const run = this.#launch(rec, reg, 'none')
      const err = new PlanError(rec.workflowId, undefined, `Run ${rec.id} started under plan ${rec.planHash} of workflow "${rec.workflowId}", but the registered plan is ${reg.compiled.plan.hash}. The definition changed while the run was unfinished; finish or cancel such runs before deploying a changed workflow, or pass createEngine({ resumeChangedPlans: true }) to resume them under the new plan.`)
      ;(err as { code: string }).code = 'PLAN_CHANGED'
      void run.finish('failed', undefined, err)
      return run
    }
    return this.#launch(rec, reg, slot, new Map(steps.map((s) => [s.key, s])))
  }

  /**
   * Resumes the unfinished runs in the store that no engine is executing here: finished steps
   * are replayed from the journal, the step that was in flight runs again. Returns their handles.
   * @example
   * const engine = createEngine({ store, workflows: [order] }); await engine.recover()
   */
  async recover(): Promise<RunHandle<unknown>[]> {
    // Passes run one after another, so that two never resume the same run.
    this.#recovery = this.#recovery.then(
      () => this.#recoverOnce(),
      () => this.#recoverOnce(),
    )
    return this.#recovery
  }

  async #recoverOnce(): Promise<RunHandle<unknown>[]> {
    const runs = await this.store.listRuns({ status: ['running', 'queued', 'waiting'] })
    const handles: RunHandle<unknown>[] = []
    for (const rec of runs) {
      if (this.#active.has(rec.id) || this.#claiming.has(rec.id)) continue
      const reg = this.#registry.get(rec.workflowId)
      if (reg === undefined) continue
      if (rec.status === 'waiting') {
        // An event may have been sent while no engine was running.
        if (rec.waitFor && (await this.store.getEvent(rec.id, rec.waitFor.event)) !== undefined) await this.#wake(rec.id, rec)
        continue
      }
      const steps = await this.store.getSteps(rec.id)
      const slot = this.#slotFor(reg)
      const next: RunRecord = { ...rec, attempt: rec.attempt + 1, status: slot === 'held' ? 'running' : 'queued' }
      // Only if still unfinished: a cancel may have landed while the journal was read.
      if (!(await this.#claimFor(rec.id, ['running', 'queued'], next.status, { attempt: next.attempt }, reg, slot))) continue
      handles.push(this.#resume(next, reg, steps, slot))
    }
    await this.#armWake()
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
   * Stops accepting runs, waits for the runs in flight to end or park (those whose `start` was
   * still creating them too), and closes the executor (and the store when the engine made it; a store
   * you passed in is yours to close).
   * @example
   * process.on('SIGTERM', () => engine.close())
   */
  close(): Promise<void> {
    // One close however often it is called (a SIGTERM and a SIGINT): each caller waits for it.
    return (this.#closing ??= this.#close())
  }

  async #close(): Promise<void> {
    this.#closed = true
    this.#wakeTimer?.cancel()
    this.#wakeTimer = undefined
    this.#closeController.abort(new SteplineError('ENGINE_CLOSED', 'The engine was closed.'))
    // A claimed run (being created, woken, resumed, parking) is active or parked once its store call
    // lands: wait for that. An active run is waited for until it ends or parks (it then stays
    // parked in the store: waiting for its outcome would wait for a wake-up this engine no longer does).
    for (;;) {
      while (this.#claiming.size > 0) await new Promise((r) => realSetImmediate(r))
      if (this.#active.size === 0) break
      await new Promise<void>((r) => (this.#left = r))
      this.#left = undefined
    }
    await this.#services.executor.close?.()
    // A store passed in belongs to the caller; only the one the engine made is closed here.
    if (this.#ownsStore) await this.store.close?.()
  }
}

/** What `start` tells the store about an id the caller chose. */
const ID_CHOSEN: CreateRunOptions = { idChosen: true }

/**
 * A `runId` or `idempotencyKey` must be a non-empty string a store keeps as it is: SQLite turns a
 * lone UTF-16 surrogate into U+FFFD, so two different keys would name one run there.
 */
function checkIdOption(name: 'runId' | 'idempotencyKey', value: unknown): void {
  if (typeof value !== 'string' || value === '') {
    throw new SteplineError('OPTIONS_INVALID', `engine.start: expected \`${name}\` as a non-empty string, got ${value === '' ? "''" : messageOf(value)}.`)
  }
  // In `u` mode a surrogate pair is one code point: only a lone surrogate is of category Cs.
  if (/\p{Cs}/u.test(value)) {
    throw new SteplineError(
      'OPTIONS_INVALID',
      `engine.start: \`${name}\` ${JSON.stringify(value)} holds a lone UTF-16 surrogate, which stores cannot keep as it is (SQLite makes it U+FFFD). Use well-formed text, e.g. ${name === 'runId' ? 'letters, digits and -' : 'the request id your caller sent'}.`,
    )
  }
}

/** Whether `existing` is the run a start with this workflow and key made before: a retry gets it back. */
function isRetryOf(existing: RunRecord, workflowId: string, idempotencyKey: string | undefined): boolean {
  return idempotencyKey !== undefined && existing.idempotencyKey === idempotencyKey && existing.workflowId === workflowId
}

/** `RUN_EXISTS` for a runId the caller chose: `existing` the run that has it, none while it is being started here. */
function runExists(id: string, existing?: RunRecord): SteplineError {
  const what = existing === undefined ? 'is already being started or running in this engine' : `already exists (workflow "${existing.workflowId}", ${existing.status})`
  return new SteplineError('RUN_EXISTS', `engine.start: a run with id "${id}" ${what}; run ids are unique. Pass another runId, or the same idempotencyKey to get the existing run back on a retry.`)
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

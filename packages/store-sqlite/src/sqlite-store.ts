import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import Database from 'better-sqlite3'
import {
  FINISHED_STATUSES,
  SteplineError,
  deserializeError,
  serializeError,
  type CreateRunOptions,
  type EventRecord,
  type ListRunsQuery,
  type RunRecord,
  type RunStatus,
  type SerializedError,
  type StepRecord,
  type Store,
} from '@stepline/core'
import { Checkpointer } from './checkpointer'
import { JournalLog, recoverLogs } from './journal-log'
import { decode, encode } from './json'
import { migrate } from './schema'

// Captured at load: fake timers installed later by a test must not stall commits.
const realSetImmediate = globalThis.setImmediate

/**
 * A durable store in one SQLite file: runs survive a process crash and resume with
 * `engine.recover()`. Several processes may share the file to start runs and send events, and
 * idempotency keys hold across them; but one process executes the runs: recovery on start
 * takes over every unfinished run it finds.
 * @example
 * const engine = createEngine({ store: sqliteStore({ path: './.stepline/orders.db' }) })
 */
export function sqliteStore(options: SqliteStoreOptions = {}): SqliteStore {
  return new SqliteStore(options)
}

/** Options of `sqliteStore`. */
export interface SqliteStoreOptions {
  /** The database file; its directory is created. Default `./.stepline/stepline.db`. */
  path?: string
  /**
   * How journal writes of concurrent runs share commits; each step is still durable before its
   * successor starts. `true`/`'microtask'` (default): writes made before the microtask queue
   * drains share one commit, which keeps tests with fake timers deterministic. `'immediate'`:
   * writes of one turn of the event loop share one commit (a server under load: requests that
   * arrive in one poll share it). `false`: every write commits on its own, synchronously.
   */
  groupCommit?: boolean | 'microtask' | 'immediate'
  /** How long a write waits for another process's lock before failing. Default 5000 ms. */
  busyTimeoutMs?: number
  /**
   * `normal` (default): durable across a process crash; a power loss or OS crash may lose the
   * last commits (WAL with `synchronous = NORMAL`). `full`: fsync on every commit, durable
   * across power loss, slower.
   */
  synchronous?: 'normal' | 'full'
  /**
   * Who copies the WAL into the database file. `'background'` (default for a file): once the
   * store has made 100 group commits, a thread of its own, every 50 ms, so that commits do not
   * wait for the copy and the fsyncs of a checkpoint. `'inline'`: SQLite's default, the
   * committing connection every 1000 pages.
   */
  checkpoint?: 'background' | 'inline'
  /**
   * Who writes group commits into the tables. `'inline'` (default): the committing connection,
   * on the event loop. `'log'`: once the store has made 100 group commits, each commit is
   * appended to a log file beside the database (`<file>-log-…`, one `write()` per commit, as
   * durable as the WAL: across a process crash; with `synchronous: 'full'` across power loss
   * too) and a thread of the store's own applies it to the tables; reads wait until it has.
   * A server under load spends a third less of its event loop per webhook. A log left by a
   * process that died is applied by the next store that opens the file.
   */
  writes?: 'inline' | 'log'
}

/** WAL size (4 KB pages) at which the writer finishes a background checkpoint itself, so that the WAL restarts. */
const WAL_RESTART_FRAMES = 4096
/** Group commits after which a store hands its checkpoints to a thread. */
const CHECKPOINTER_AFTER_COMMITS = 100

/** File system errors (of `mkdir`) that mean the database cannot be created where `path` says. */
const NODE_CANTOPEN = new Set(['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST'])

const PARKED = `('sleeping', 'waiting')`
const FINISHED = `(${FINISHED_STATUSES.map((s) => `'${s}'`).join(', ')})`

/** The columns an `updateRun` patch may set, in the order `#update` binds them. */
const UPDATE_COLUMNS: readonly (readonly string[])[] = [['status'], ['output'], ['error'], ['attempt'], ['started_at'], ['ended_at'], ['plan_hash'], ['wake_at'], ['wait_event', 'wait_match']]

const RUN_COLUMNS = `id, workflow_id, plan_hash, status, payload, output, error, idempotency_key, attempt, created_at, started_at, ended_at, wake_at, wait_event, wait_match`


interface RunRow {
  id: string
  workflow_id: string
  plan_hash: string
  status: RunStatus
  payload: string | null
  output: string | null
  error: string | null
  idempotency_key: string | null
  attempt: number
  created_at: number
  started_at: number | null
  ended_at: number | null
  wake_at: number | null
  wait_event: string | null
  wait_match: string | null
}

interface StepRow {
  key: string
  node_id: string
  name: string
  kind: StepRecord['kind']
  status: StepRecord['status']
  output: string | null
  error: string | null
  recovered: number | null
  attempts: number
  started_at: number
  ended_at: number
  duration_ms: number
  item: string | null
}

type RunPatch = Partial<Omit<RunRecord, 'id' | 'workflowId'>>
type Created = { run: RunRecord; created: boolean }

/** A run insert whose answer depends on the file (an idempotency key, an id the caller chose), waiting for its turn's commit. */
interface Check {
  run: RunRecord
  params: unknown[]
  resolve: (created: Created) => void
  reject: (e: unknown) => void
}
type StepParams = unknown[]
/**
 * A queued write: a prepared statement and its positional parameters, committed with the others
 * of its turn. Parameters go to `run` spread: better-sqlite3 reads an array argument element by
 * element through V8's generic lookup, a fifth of an insert's cost.
 */
interface Write {
  stmt: Database.Statement
  params: unknown[]
  /** A write whose answer depends on the file (a transition, an event): whether it changed a row. */
  answer?: { resolve: (changed: boolean) => void; reject: (e: unknown) => void; changed?: boolean }
}

/** The SQLite `Store`. Create it with `sqliteStore()`. */
export class SqliteStore implements Store {
  /** Absolute path of the database file. */
  readonly path: string
  #db!: Database.Database
  readonly #groupCommit: boolean
  readonly #schedule: (flush: () => void) => void
  readonly #busyTimeoutMs: number
  readonly #synchronous: 'normal' | 'full'
  readonly #checkpoint: 'background' | 'inline'
  readonly #writes: 'inline' | 'log'
  #checkpointer: Checkpointer | undefined
  /** Set while group commits go to the journal log (`writes: 'log'`). */
  #log: JournalLog | undefined
  /** Group commits since the file was opened, until the checkpointer starts. */
  #commits = 0
  #s!: ReturnType<typeof prepare>
  readonly #listRuns = new Map<string, Database.Statement>()
  /** `updateRun` statements by the columns a patch sets (a handful of shapes in practice). */
  readonly #updates = new Map<number, Database.Statement>()
  #commitBatch!: (batch: Write[]) => void
  #batch: Write[] = []
  #batchDone: Promise<void> | undefined
  #resolveBatch: (() => void) | undefined
  #rejectBatch: ((e: unknown) => void) | undefined
  #checks: Check[] = []
  /** Writes with an answer in the pending batch: it commits inline, since the answers come from the tables. */
  #answers = 0
  #closed = false

  constructor(options: SqliteStoreOptions = {}) {
    const { path = './.stepline/stepline.db', groupCommit = true, busyTimeoutMs = 5000, synchronous = 'normal', checkpoint = 'background', writes = 'inline' } = options
    if (typeof path !== 'string' || path === '') throw options_('`path` as a file path like ./.stepline/stepline.db', path)
    if (!Number.isInteger(busyTimeoutMs) || busyTimeoutMs < 0) throw options_('`busyTimeoutMs` as a whole number of milliseconds ≥ 0', busyTimeoutMs)
    if (synchronous !== 'normal' && synchronous !== 'full') throw options_("`synchronous` as 'normal' or 'full'", synchronous)
    if (checkpoint !== 'background' && checkpoint !== 'inline') throw options_("`checkpoint` as 'background' or 'inline'", checkpoint)
    if (writes !== 'inline' && writes !== 'log') throw options_("`writes` as 'inline' or 'log'", writes)
    this.path = path === ':memory:' ? path : resolve(path)
    if (groupCommit !== true && groupCommit !== false && groupCommit !== 'microtask' && groupCommit !== 'immediate') {
      throw options_("`groupCommit` as true, false, 'microtask' or 'immediate'", groupCommit)
    }
    this.#groupCommit = groupCommit !== false
    this.#schedule = groupCommit === 'immediate' ? (flush) => void realSetImmediate(flush) : queueMicrotask
    this.#busyTimeoutMs = busyTimeoutMs
    this.#synchronous = synchronous
    this.#checkpoint = checkpoint
    this.#writes = writes
    this.#open()
  }

  /** Opens the file, brings its schema up to date and prepares every statement. */
  #open(): void {
    let db: Database.Database
    try {
      if (this.path !== ':memory:') mkdirSync(dirname(this.path), { recursive: true })
      db = new Database(this.path)
    } catch (e) {
      throw this.#unavailable(e)
    }
    try {
      db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`)
      walMode(db, this.#busyTimeoutMs)
      db.pragma(`synchronous = ${this.#synchronous.toUpperCase()}`)
      db.pragma('foreign_keys = ON')
      migrate(db, this.path)
      // Before anything reads: what a process that died had logged and not applied goes in first.
      if (this.path !== ':memory:') recoverLogs(db, this.path)
      this.#s = prepare(db)
    } catch (e) {
      db.close()
      throw this.#unavailable(e)
    }
    this.#commitBatch = db.transaction((batch: Write[]) => {
      let i = 0
      try {
        for (; i < batch.length; i++) {
          const w = batch[i]!
          const { changes } = w.stmt.run(...w.params)
          if (w.answer !== undefined) w.answer.changed = changes === 1
        }
      } catch (e) {
        throw this.#rowError(batch[i]!, e, batch.length > 1)
      }
    }).immediate
    this.#listRuns.clear()
    this.#updates.clear()
    this.#db = db
    this.#closed = false
    this.#commits = 0
  }

  /**
   * Hands checkpoints to a thread once this store has shown it writes (100 group commits: well
   * under a second for a server under load, never reached by most tests or a short CLI call).
   */
  #startCheckpointer(): void {
    if (this.path === ':memory:') return
    if (this.#writes === 'log') return this.#startLog()
    if (this.#checkpoint !== 'background' || this.#checkpointer !== undefined) return
    this.#checkpointer = new Checkpointer(this.path, { intervalMs: 50, busyTimeoutMs: this.#busyTimeoutMs })
    this.#db.pragma('wal_autocheckpoint = 0')
    // A burst can grow the WAL file past what it needs after a restart: trim it back then.
    this.#db.pragma(`journal_size_limit = ${WAL_RESTART_FRAMES * 4096}`)
  }

  /** Hands group commits to the journal log; a log that cannot be made leaves them inline. */
  #startLog(): void {
    try {
      // The log's thread is the writer now and checkpoints as it writes (SQLite's default).
      this.#log = new JournalLog(this.path, { synchronous: this.#synchronous, busyTimeoutMs: this.#busyTimeoutMs })
    } catch {
      this.#log = undefined
    }
  }

  /**
   * Closes the log (applying here what its thread had not, if it failed); commits go inline from
   * now on. Should that fail, the log stays, and every call tries again before it touches the tables.
   */
  #closeLog(log: JournalLog): void {
    try {
      log.close(this.#db)
    } catch (e) {
      throw this.#unavailable(e)
    }
    this.#log = undefined
  }

  /**
   * Creates a run. Without an idempotency key the id is fresh, so nothing can conflict: with
   * group commit the insert joins the turn's commit and the promise settles once it is durable.
   * With a key, or an id the caller chose, the file decides (another process may have taken
   * either): with group commit the inserts of a turn are decided together at its commit, in one
   * transaction after the pending writes; without, at once.
   */
  createRun(run: RunRecord, options?: CreateRunOptions): Created | Promise<Created> {
    const subject = (): string => `Run ${run.id} of workflow "${run.workflowId}": its`
    const params = [
      run.id, run.workflowId, run.planHash, run.status,
      encode(run.payload, () => `${subject()} payload`, 'payload'),
      encode(run.output, () => `${subject()} output`, 'output'),
      run.error === undefined ? null : JSON.stringify(run.error),
      run.idempotencyKey ?? null, run.attempt, run.createdAt, run.startedAt ?? null, run.endedAt ?? null,
      run.wakeAt ?? null, run.waitFor?.event ?? null, run.waitFor?.match ?? null,
    ]
    const checked = run.idempotencyKey !== undefined || options?.idChosen === true
    if (this.#groupCommit) {
      if (!checked) {
        const created = { run, created: true }
        return this.#queue(this.#ready().insertRun, params).then(() => created)
      }
      return new Promise<Created>((resolve, reject) => {
        // One commit per turn for these too: each alone costs a transaction and waiting for the log's thread.
        if (this.#checks.push({ run, params, resolve, reject }) === 1) this.#schedule(this.#flushLater)
      })
    }
    this.#flush()
    try {
      return this.#insertChecked(run, params)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  /** Atomic across connections: the UNIQUE indexes decide; the loser reads the winner's row. */
  #insertChecked(run: RunRecord, params: unknown[]): Created {
    if (this.#ready().insertRun.run(...params).changes === 1) return { run, created: true }
    const byKey = run.idempotencyKey === undefined ? undefined : (this.#ready().getRunByKey.get(run.workflowId, run.idempotencyKey) as RunRow | undefined)
    const row = byKey ?? (this.#ready().getRun.get(run.id) as RunRow | undefined)
    if (row === undefined) throw new Error(`run ${run.id} conflicted with a row that is gone`)
    return { run: toRun(row), created: false }
  }

  /**
   * Decides the turn's checked inserts in one transaction, on the tables as the log left them.
   * Before the pending writes: none of those can be about these runs (their `createRun` has not
   * answered yet), and one that comes after in call order may be (a first step).
   */
  #decideChecks(): void {
    const checks = this.#checks
    this.#checks = []
    let answers: Created[]
    try {
      this.#ready() // reopens a closed store
      answers = this.#db.transaction(() => checks.map((c) => this.#insertChecked(c.run, c.params))).immediate()
    } catch (e) {
      const error = this.#unavailable(e)
      for (const c of checks) c.reject(error)
      return
    }
    for (let i = 0; i < checks.length; i++) checks[i]!.resolve(answers[i]!)
  }

  updateRun(id: string, patch: RunPatch): void | Promise<void> {
    const { stmt, params } = this.#update(id, patch)
    if (this.#groupCommit) return this.#queue(stmt, params)
    this.#flush()
    try {
      stmt.run(...params)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  /**
   * Moves a run from one of `from` to `to`, if it is still in one of them. With group commit it
   * is decided in its turn's commit, in call order with the turn's other writes (the transitions
   * and events of a server's concurrent requests then share one transaction); without, at once.
   */
  transitionRun(id: string, from: readonly RunStatus[], to: RunStatus, patch: Omit<RunPatch, 'status'> = {}): boolean | Promise<boolean> {
    const { stmt, params } = this.#update(id, { ...patch, status: to }, from)
    if (this.#groupCommit) return this.#queueAnswer(stmt, params)
    this.#flush()
    try {
      return stmt.run(...params).changes === 1
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  /**
   * An UPDATE of just the columns `patch` sets, with positional parameters (a run's end sets
   * four; one statement for every shape, with a flag per column, cost a third more). With
   * `from`, only while the run's status is one of them (`transitionRun`). Statements are cached
   * by a bit per column set, bit `UPDATE_COLUMNS.length` for `from`.
   */
  #update(id: string, patch: RunPatch, from?: readonly RunStatus[]): { stmt: Database.Statement; params: unknown[] } {
    const statements = this.#ready() // reopens a closed store, whose cached statements are gone
    let shape = 0
    const params: unknown[] = []
    // In UPDATE_COLUMNS order: bit i sets the column(s) of entry i.
    if (patch.status !== undefined) { shape |= 1 << 0; params.push(patch.status) }
    if ('output' in patch) { shape |= 1 << 1; params.push(encode(patch.output, () => `Run ${id}: its output`, 'output')) }
    if ('error' in patch) { shape |= 1 << 2; params.push(patch.error === undefined ? null : JSON.stringify(patch.error)) }
    if (patch.attempt != null) { shape |= 1 << 3; params.push(patch.attempt) }
    if (patch.startedAt != null) { shape |= 1 << 4; params.push(patch.startedAt) }
    if (patch.endedAt != null) { shape |= 1 << 5; params.push(patch.endedAt) }
    if (patch.planHash != null) { shape |= 1 << 6; params.push(patch.planHash) }
    if ('wakeAt' in patch) { shape |= 1 << 7; params.push(patch.wakeAt ?? null) }
    if ('waitFor' in patch) { shape |= 1 << 8; params.push(patch.waitFor?.event ?? null, patch.waitFor?.match ?? null) }
    params.push(id)
    if (from !== undefined) { shape |= 1 << UPDATE_COLUMNS.length; params.push(JSON.stringify(from)) }
    let stmt = this.#updates.get(shape)
    if (stmt === undefined) {
      const columns = UPDATE_COLUMNS.filter((_, i) => shape & (1 << i)).flat()
      // An empty patch still touches the row (and says whether it exists): `id = id`.
      const assignments = columns.length === 0 ? 'id = id' : columns.map((c) => `${c} = ?`).join(', ')
      stmt = statements.updateRun(assignments, from !== undefined)
      this.#updates.set(shape, stmt)
    }
    return { stmt, params }
  }

  /**
   * Journals an entry. With group commit: a promise of the commit it shares with the other
   * entries of this turn of the microtask queue; without: committed on return. An output that JSON cannot hold
   * throws `UNSTORABLE_OUTPUT` synchronously and nothing is written.
   */
  recordStep(runId: string, step: StepRecord): void | Promise<void> {
    const params: StepParams = [
      runId, step.key, step.nodeId, step.name, step.kind, step.status,
      encode(step.output, () => `Step "${step.name}" of run ${runId}: its output`, 'output'),
      step.error === undefined ? null : JSON.stringify(serializeError(step.error)),
      step.recovered === undefined ? null : step.recovered ? 1 : 0,
      step.attempts, step.startedAt, step.endedAt, step.durationMs,
      step.item === undefined ? null : JSON.stringify(step.item),
    ]
    if (!this.#groupCommit) {
      const { upsertStep } = this.#ready()
      try {
        upsertStep.run(...params)
        return
      } catch (e) {
        throw this.#rowError({ stmt: upsertStep, params }, e, false)
      }
    }
    return this.#queue(this.#ready().upsertStep, params)
  }

  /** Adds a write whose answer depends on the file to this turn's commit, which then goes inline (see #send). */
  #queueAnswer(stmt: Database.Statement, params: unknown[]): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      this.#answers++
      // The turn's promise itself is not waited for here: each answer settles on its own.
      void this.#queue(stmt, params, { resolve, reject }).catch(() => undefined)
    })
  }

  /** Adds a write to this turn's commit; the promise settles once that commit is durable. */
  #queue(stmt: Database.Statement, params: unknown[], answer?: Write['answer']): Promise<void> {
    this.#batch.push(answer === undefined ? { stmt, params } : { stmt, params, answer })
    if (this.#batchDone === undefined) {
      this.#batchDone = new Promise<void>((res, rej) => {
        this.#resolveBatch = res
        this.#rejectBatch = rej
      })
      this.#schedule(this.#flushLater)
    }
    return this.#batchDone
  }

  /** The turn's commit: the checked inserts first (see #decideChecks), then the pending writes. */
  readonly #flushLater = (): void => {
    if (this.#checks.length > 0) {
      try {
        this.#drainLog()
        this.#decideChecks()
      } catch (e) {
        // The log could not be applied (see #closeLog): the checked inserts cannot be decided now.
        const checks = this.#checks
        this.#checks = []
        for (const c of checks) c.reject(this.#unavailable(e))
      }
    }
    this.#send()
  }

  /**
   * Decides the pending checked inserts, commits the pending journal entries, and (with the
   * journal log) waits until the tables show them.
   */
  #flush(): void {
    if (this.#checks.length > 0) {
      this.#drainLog()
      this.#decideChecks()
    }
    this.#send()
    this.#drainLog()
  }

  /** With the journal log: the tables show everything written (applied here when the thread is not at it). */
  #drainLog(): void {
    const log = this.#log
    if (log === undefined) return
    let done: boolean
    try {
      done = log.catchUp(this.#db)
    } catch (e) {
      throw this.#unavailable(e)
    }
    if (!done) this.#closeLog(log)
  }

  /** Commits the pending journal entries in one transaction (or one log append) and settles their promise. */
  #send(): void {
    if (this.#batch.length === 0) return
    const batch = this.#batch
    const answers = this.#answers
    const resolve = this.#resolveBatch!
    const reject = this.#rejectBatch!
    this.#batch = []
    this.#answers = 0
    this.#batchDone = this.#resolveBatch = this.#rejectBatch = undefined
    const resolveBatch = answers === 0 ? resolve : (): void => {
      resolve()
      for (const w of batch) w.answer?.resolve(w.answer.changed === true)
    }
    const rejectBatch = answers === 0 ? reject : (e: unknown): void => {
      reject(e)
      for (const w of batch) w.answer?.reject(e)
    }
    let log = this.#log
    if (log !== undefined && (!log.working || answers > 0)) {
      // What the failed thread left must be in the tables before this commit goes there; so must
      // everything logged before a commit whose answers come from the tables.
      try {
        if (!log.working || !log.catchUp(this.#db)) this.#closeLog(log)
      } catch (e) {
        rejectBatch(this.#unavailable(e))
        return
      }
      // With answers, inline even should the thread fail right after catchUp: the log would answer none of them.
      log = answers > 0 ? undefined : this.#log
    }
    if (log !== undefined) {
      try {
        log.append(batch)
      } catch (e) {
        rejectBatch(this.#logUnavailable(log, e))
        return
      }
      resolveBatch()
      if (!log.working) {
        try {
          this.#closeLog(log)
        } catch {
          // The next call that needs the tables reports it.
        }
      }
      return
    }
    try {
      if (this.#closed) this.#open()
      this.#commitBatch(batch)
    } catch (e) {
      rejectBatch(this.#unavailable(e))
      return
    }
    resolveBatch()
    const checkpointer = this.#checkpointer
    if (checkpointer === undefined) {
      if (++this.#commits === CHECKPOINTER_AFTER_COMMITS) this.#startCheckpointer()
    } else if (!checkpointer.working) {
      // The thread could not open the file: checkpoint here again, or the WAL grows without end.
      this.#checkpointer = undefined
      this.#db.pragma('wal_autocheckpoint = 1000')
    } else if (checkpointer.walPast(WAL_RESTART_FRAMES)) this.#catchUpCheckpoint()
  }

  getRun(id: string): RunRecord | undefined {
    this.#flush()
    try {
      const row = this.#ready().getRun.get(id) as RunRow | undefined
      return row === undefined ? undefined : toRun(row)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  listRuns(query: ListRunsQuery = {}): RunRecord[] {
    this.#flush()
    const statuses = query.status === undefined ? undefined : Array.isArray(query.status) ? query.status : [query.status]
    const shape = `${query.workflowId === undefined ? 0 : 1}${statuses === undefined ? 0 : 1}${query.before === undefined ? 0 : 1}`
    try {
      this.#ready()
      let stmt = this.#listRuns.get(shape)
      if (stmt === undefined) {
        const where = ['1']
        if (query.workflowId !== undefined) where.push('workflow_id = @workflowId')
        if (statuses !== undefined) where.push('status IN (SELECT value FROM json_each(@statuses))')
        if (query.before !== undefined) where.push('seq < @beforeSeq')
        stmt = this.#db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT @limit`)
        this.#listRuns.set(shape, stmt)
      }
      const params: Record<string, unknown> = { limit: sqlLimit(query.limit) }
      if (query.workflowId !== undefined) params.workflowId = query.workflowId
      if (statuses !== undefined) params.statuses = JSON.stringify(statuses)
      if (query.before !== undefined) params.beforeSeq = this.#seqOf(query.before)
      return (stmt.all(params) as RunRow[]).map(toRun)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  /** Where a `listRuns` cursor stands; one that names no run is an error, as in every store (see `ListRunsQuery.before`). */
  #seqOf(before: string): number {
    const row = this.#s.seqOf.get(before) as { seq: number } | undefined
    if (row !== undefined) return row.seq
    throw new SteplineError(
      'RUN_NOT_FOUND',
      `listRuns(): \`before: ${JSON.stringify(before)}\` names no run in ${this.path}: it was pruned since the previous page, or never existed. Page again from the newest, without \`before\`.`,
    )
  }

  getSteps(runId: string): StepRecord[] {
    this.#flush()
    try {
      return (this.#ready().getSteps.all(runId) as StepRow[]).map(toStep)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  getCache(key: string, now: number): { value: unknown } | undefined {
    this.#flush()
    try {
      const row = this.#ready().getCache.get(key) as { value: string | null; expires_at: number | null } | undefined
      if (row === undefined) return undefined
      if (row.expires_at !== null && row.expires_at <= now) {
        this.#deleteExpired(key, now)
        return undefined
      }
      return { value: decode(row.value) }
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  /**
   * Best-effort: a miss either way, and `setCache` overwrites the entry. Without waiting for the
   * lock: a read must not wait `busyTimeoutMs`, or fail, because another process is writing.
   */
  #deleteExpired(key: string, now: number): void {
    this.#db.pragma('busy_timeout = 0')
    try {
      this.#s.deleteExpiredCache.run(key, now)
    } catch {
      // Locked (or the disk refuses it): the next read of the entry tries again.
    } finally {
      this.#db.pragma(`busy_timeout = ${this.#busyTimeoutMs}`)
    }
  }

  setCache(key: string, value: unknown, expiresAt: number | undefined): void {
    const text = encode(value, () => `The cached value ${JSON.stringify(key.replaceAll('\u0000', '/'))}`, 'value')
    this.#flush()
    try {
      this.#ready().setCache.run(key, text, expiresAt ?? null)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  dueRuns(now: number, limit: number): RunRecord[] {
    this.#flush()
    try {
      return (this.#ready().dueRuns.all(now, sqlLimit(limit)) as RunRow[]).map(toRun)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  nextWakeAt(): number | undefined {
    this.#flush()
    try {
      return (this.#ready().nextWakeAt.pluck().get() as number | null) ?? undefined
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  waitingFor(event: string, match: string): RunRecord[] {
    this.#flush()
    try {
      return (this.#ready().waitingFor.all(event, match) as RunRow[]).map(toRun)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  /** Stores an event once per (run, name); with group commit decided in its turn's commit, as `transitionRun`. */
  putEvent(event: EventRecord): boolean | Promise<boolean> {
    const data = encode(event.data, () => `Event "${event.name}" sent to run ${event.runId}: its data`, 'data')
    if (this.#groupCommit) return this.#queueAnswer(this.#ready().putEvent, [event.runId, event.name, data, event.sentAt])
    this.#flush()
    try {
      return this.#ready().putEvent.run(event.runId, event.name, data, event.sentAt).changes === 1
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  getEvent(runId: string, name: string): EventRecord | undefined {
    this.#flush()
    try {
      const row = this.#ready().getEvent.get(runId, name) as { data: string | null; sent_at: number } | undefined
      return row === undefined ? undefined : { runId, name, data: decode(row.data), sentAt: row.sent_at }
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  pruneRuns(endedBefore: number): number {
    this.#flush()
    try {
      return this.#prune(endedBefore)
    } catch (e) {
      throw this.#unavailable(e)
    }
  }

  readonly #prune = (endedBefore: number): number =>
    (this.#ready(), this.#db).transaction(() => {
      this.#ready().pruneEvents.run(endedBefore)
      // Journal entries go with their run (ON DELETE CASCADE).
      return this.#ready().pruneRuns.run(endedBefore).changes
    }).immediate()

  /** Copies what the checkpoint thread has not yet: a WAL under writes that never pause restarts only after a writer's checkpoint. */
  #catchUpCheckpoint(): void {
    try {
      this.#db.pragma('wal_checkpoint(PASSIVE)')
    } catch {
      // Another process checkpoints: the WAL restarts after theirs.
    }
  }

  /** The prepared statements; a store closed by one engine reopens for the next that uses it. */
  #ready(): ReturnType<typeof prepare> {
    if (this.#closed) this.#open()
    return this.#s
  }

  /**
   * Commits pending journal entries and closes the file. The store stays usable: the next call
   * reopens it (an engine closes its store, and another engine may share it).
   */
  close(): void {
    if (this.#closed) return
    if (this.#checks.length > 0) this.#flushLater()
    this.#send()
    if (this.#log !== undefined) this.#closeLog(this.#log)
    this.#closed = true
    // The thread's connection closes first: the last one to close folds the WAL into the file.
    this.#checkpointer?.stop()
    this.#checkpointer = undefined
    this.#db.close()
  }

  /** A `STORE_UNAVAILABLE` error for a journal log that cannot be written. */
  #logUnavailable(log: JournalLog, e: unknown): unknown {
    if (e instanceof SteplineError) return e
    const code = (e as { code?: unknown }).code
    return new SteplineError(
      'STORE_UNAVAILABLE',
      `SQLite store ${this.path}: its journal log ${log.file} cannot be written (${String(code ?? 'error')}): ${(e as Error).message}. Check free disk space and the file system.`,
      { cause: e },
    )
  }

  /**
   * What one write that SQLite refused (a journal entry of a run that is not in the file: pruned,
   * or never created here) becomes, naming the write; a lock or disk error as `#unavailable` says.
   * `shared`: the commit held other writes, which fail with it (the transaction is rolled back).
   */
  #rowError(w: Write, e: unknown, shared: boolean): unknown {
    const unavailable = this.#unavailable(e)
    if (unavailable !== e) return unavailable
    const p = w.params
    const s = this.#s
    const what =
      w.stmt === s.upsertStep ? `Step "${String(p[3])}" (journal key ${String(p[1])}) of run ${String(p[0])}`
      : w.stmt === s.insertRun ? `Run ${String(p[0])} of workflow "${String(p[1])}"`
      : w.stmt === s.putEvent ? `Event "${String(p[1])}" sent to run ${String(p[0])}`
      : `The update of run ${String(p[w.answer === undefined ? p.length - 1 : p.length - 2])}`
    const others = shared ? ' Nothing of its commit was written: the writes that shared it fail with this error too.' : ''
    const code = (e as { code?: unknown }).code
    if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') {
      return new SteplineError('RUN_NOT_FOUND', `${what} cannot be journaled: run ${String(p[0])} is not in SQLite store ${this.path} (${code}); it was pruned or deleted, or never created in this file.${others}`, { cause: e })
    }
    return new SteplineError('STORE_UNAVAILABLE', `${what} cannot be written to SQLite store ${this.path} (${String(code ?? (e as Error).name)}): ${(e as Error).message}.${others}`, { cause: e })
  }

  /** A `STORE_UNAVAILABLE` error for what SQLite reported, naming the file and the fix. */
  #unavailable(e: unknown): unknown {
    if (e instanceof SteplineError) return e
    const code = (e as { code?: unknown }).code
    const file = `SQLite store ${this.path}`
    const why = (e as Error).message
    const fail = (message: string): SteplineError => new SteplineError('STORE_UNAVAILABLE', message, { cause: e })
    if (typeof code !== 'string') return e
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      return fail(`${file} is locked by another process (${code}) after ${this.#busyTimeoutMs} ms: ${why}. Another connection holds a write transaction; let it finish, or raise \`busyTimeoutMs\`.`)
    }
    if (code === 'SQLITE_NOTADB') {
      return fail(`${file} is not a SQLite database (${code}): ${why}. Move the file away or point \`path\` elsewhere.`)
    }
    if (code.startsWith('SQLITE_CORRUPT')) {
      return fail(`${file} is corrupt (${code}): ${why}. Restore it from a backup, or move it away and point \`path\` elsewhere.`)
    }
    // Node's codes come from creating the directory (`path` under a file, or where this process may not write).
    if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_PERM') || NODE_CANTOPEN.has(code)) {
      return fail(`${file} cannot be opened for writing (${code}): ${why}. Check that its directory exists and is writable by this process.`)
    }
    if (code === 'SQLITE_FULL' || code.startsWith('SQLITE_IOERR') || code === 'ENOSPC' || code === 'EIO') {
      return fail(`${file} cannot be written (${code}): ${why}. Check free disk space and the file system.`)
    }
    return e
  }
}

/**
 * Puts the file in WAL mode (a no-op once it is). Of two processes opening a fresh file at once,
 * both switch it, and SQLite may answer one SQLITE_BUSY at once, without the busy timeout (the
 * switch cannot wait while the statement reads): that one tries again, for up to `busyTimeoutMs`,
 * and then finds the file in WAL mode.
 */
function walMode(db: Database.Database, busyTimeoutMs: number): void {
  const end = Date.now() + busyTimeoutMs
  for (;;) {
    try {
      db.pragma('journal_mode = WAL')
      return
    } catch (e) {
      const code = (e as { code?: unknown }).code
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() >= end) throw e
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)
    }
  }
}

function prepare(db: Database.Database) {
  return {
    insertRun: db.prepare(`INSERT INTO runs (${RUN_COLUMNS}) VALUES (${RUN_COLUMNS.split(',').map(() => '?').join(', ')}) ON CONFLICT DO NOTHING`),
    getRun: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`),
    seqOf: db.prepare(`SELECT seq FROM runs WHERE id = ?`),
    getRunByKey: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE workflow_id = ? AND idempotency_key = ?`),
    updateRun: (assignments: string, transition: boolean) =>
      db.prepare(`UPDATE runs SET ${assignments} WHERE id = ?${transition ? ' AND status IN (SELECT value FROM json_each(?))' : ''}`),
    upsertStep: db.prepare(`
      INSERT INTO steps (run_id, key, node_id, name, kind, status, output, error, recovered, attempts, started_at, ended_at, duration_ms, item)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (run_id, key) DO UPDATE SET
        node_id = excluded.node_id, name = excluded.name, kind = excluded.kind, status = excluded.status,
        output = excluded.output, error = excluded.error, recovered = excluded.recovered, attempts = excluded.attempts,
        started_at = excluded.started_at, ended_at = excluded.ended_at, duration_ms = excluded.duration_ms, item = excluded.item`),
    getSteps: db.prepare(`SELECT key, node_id, name, kind, status, output, error, recovered, attempts, started_at, ended_at, duration_ms, item FROM steps WHERE run_id = ? ORDER BY seq`),
    getCache: db.prepare(`SELECT value, expires_at FROM cache WHERE key = ?`),
    deleteExpiredCache: db.prepare(`DELETE FROM cache WHERE key = ? AND expires_at <= ?`),
    setCache: db.prepare(`INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`),
    dueRuns: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE status IN ${PARKED} AND wake_at <= ? ORDER BY wake_at, seq LIMIT ?`),
    nextWakeAt: db.prepare(`SELECT min(wake_at) FROM runs WHERE status IN ${PARKED}`),
    waitingFor: db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE wait_event = ? AND wait_match = ? AND status = 'waiting' ORDER BY seq`),
    putEvent: db.prepare(`INSERT INTO events (run_id, name, data, sent_at) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`),
    getEvent: db.prepare(`SELECT data, sent_at FROM events WHERE run_id = ? AND name = ?`),
    pruneEvents: db.prepare(`DELETE FROM events WHERE run_id IN (SELECT id FROM runs WHERE status IN ${FINISHED} AND ended_at < ?)`),
    pruneRuns: db.prepare(`DELETE FROM runs WHERE status IN ${FINISHED} AND ended_at < ?`),
  }
}

/**
 * A `limit` for SQL, read as the memory store reads it: none for 0 or less (or NaN), a fraction's
 * whole part, no limit (-1) for undefined or Infinity; SQLite refuses a non-integer LIMIT.
 */
function sqlLimit(limit: number | undefined): number {
  if (limit === undefined || limit > Number.MAX_SAFE_INTEGER) return -1
  return limit > 0 ? Math.floor(limit) : 0
}

function toRun(r: RunRow): RunRecord {
  return {
    id: r.id,
    workflowId: r.workflow_id,
    planHash: r.plan_hash,
    status: r.status,
    payload: decode(r.payload),
    output: decode(r.output),
    error: r.error === null ? undefined : (JSON.parse(r.error) as SerializedError),
    idempotencyKey: r.idempotency_key ?? undefined,
    attempt: r.attempt,
    createdAt: r.created_at,
    startedAt: r.started_at ?? undefined,
    endedAt: r.ended_at ?? undefined,
    wakeAt: r.wake_at ?? undefined,
    waitFor: r.wait_event === null ? undefined : { event: r.wait_event, match: r.wait_match ?? undefined },
  }
}

function toStep(r: StepRow): StepRecord {
  const step: StepRecord = {
    key: r.key,
    nodeId: r.node_id,
    name: r.name,
    kind: r.kind,
    status: r.status,
    output: decode(r.output),
    attempts: r.attempts,
    startedAt: r.started_at,
    endedAt: r.ended_at,
    durationMs: r.duration_ms,
  }
  if (r.error !== null) step.error = deserializeError(JSON.parse(r.error) as SerializedError)
  if (r.recovered !== null) step.recovered = r.recovered === 1
  if (r.item !== null) step.item = JSON.parse(r.item) as number[]
  return step
}

function options_(expected: string, got: unknown): SteplineError {
  return new SteplineError('OPTIONS_INVALID', `sqliteStore(): expected ${expected}, got ${typeof got === 'string' ? `'${got}'` : String(got)}.`)
}

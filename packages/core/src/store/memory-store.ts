import { unknownCursor } from './cursor'
import { FINISHED_STATUSES, type CreateRunOptions, type EventRecord, type ListRunsQuery, type RunRecord, type RunStatus, type StepRecord, type Store } from './types'

/**
 * The in-process store: for tests, scripts and benchmarks. Nothing survives the process, but
 * a second engine given the same instance resumes its unfinished runs, as after a crash.
 * @example
 * const engine = createEngine({ store: memoryStore() })
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  return new MemoryStore(options)
}

/** Options of `memoryStore`. */
export interface MemoryStoreOptions {
  /** Finished runs kept (oldest dropped first), so a long-lived process does not grow without bound. Default 10,000. */
  maxFinishedRuns?: number
}

/** How many runs a `limit` lets through, as the SQLite store reads it: none for 0 or less (or NaN), a fraction's whole part. */
function runLimit(limit: number | undefined): number {
  return limit === undefined ? Infinity : limit > 0 ? Math.floor(limit) : 0
}

const TERMINAL: ReadonlySet<string> = new Set(FINISHED_STATUSES)
const PARKED: ReadonlySet<string> = new Set(['sleeping', 'waiting'])

/** The in-process `Store`: create it with `memoryStore()`. */
export class MemoryStore implements Store {
  readonly #maxFinished: number
  readonly #finished: string[] = []
  #finishedHead = 0

  constructor(options: MemoryStoreOptions = {}) {
    this.#maxFinished = options.maxFinishedRuns ?? 10_000
  }

  readonly #runs = new Map<string, RunRecord>()
  // Append-only per run; a later entry with the same key wins when read.
  readonly #steps = new Map<string, StepRecord[]>()
  readonly #keys = new Map<string, string>()
  readonly #cache = new Map<string, { value: unknown; expiresAt: number | undefined }>()
  // By run, then name: a run's events go with it at once, and no separator can make two pairs collide.
  readonly #events = new Map<string, Map<string, EventRecord>>()
  /** Parked runs by id: few compared with all runs, so scans for due ones stay cheap. */
  readonly #parked = new Map<string, RunRecord>()
  /** Creation order of each run: ties among parked runs go in it, as in the SQLite store (its `seq`). */
  readonly #created = new Map<string, number>()
  #nextCreated = 0

  // Every id is checked here, at once: `idChosen` changes nothing.
  createRun(run: RunRecord, _options?: CreateRunOptions): { run: RunRecord; created: boolean } {
    const same = this.#runs.get(run.id)
    if (same !== undefined) return { run: same, created: false }
    if (run.idempotencyKey !== undefined) {
      const existing = this.#keys.get(this.#scoped(run))
      if (existing !== undefined) return { run: this.#runs.get(existing)!, created: false }
      this.#keys.set(this.#scoped(run), run.id)
    }
    this.#runs.set(run.id, run)
    this.#created.set(run.id, this.#nextCreated++)
    if (PARKED.has(run.status)) this.#parked.set(run.id, run)
    return { run, created: true }
  }

  #scoped(run: RunRecord): string {
    return `${run.workflowId}\u0000${run.idempotencyKey}`
  }

  updateRun(id: string, patch: Partial<RunRecord>): void {
    const run = this.#runs.get(id)
    if (run === undefined) return
    // Field by field rather than Object.assign: keeps the record's shape stable (hot path).
    if (patch.status !== undefined) {
      if (TERMINAL.has(patch.status) && !TERMINAL.has(run.status)) this.#finishedRun(id)
      run.status = patch.status
    }
    if ('output' in patch) run.output = patch.output
    if ('error' in patch) run.error = patch.error
    if (patch.attempt !== undefined) run.attempt = patch.attempt
    if (patch.startedAt !== undefined) run.startedAt = patch.startedAt
    if (patch.endedAt !== undefined) run.endedAt = patch.endedAt
    if (patch.planHash !== undefined) run.planHash = patch.planHash
    if ('wakeAt' in patch) run.wakeAt = patch.wakeAt
    if ('waitFor' in patch) run.waitFor = patch.waitFor
    if (PARKED.has(run.status)) this.#parked.set(id, run)
    else this.#parked.delete(id)
  }

  transitionRun(id: string, from: readonly RunStatus[], to: RunStatus, patch: Partial<RunRecord> = {}): boolean {
    const run = this.#runs.get(id)
    if (run === undefined || !from.includes(run.status)) return false
    this.updateRun(id, { ...patch, status: to })
    return true
  }

  dueRuns(now: number, limit: number): RunRecord[] {
    const due: RunRecord[] = []
    for (const r of this.#parked.values()) if (r.wakeAt !== undefined && r.wakeAt <= now) due.push(r)
    return due.sort((a, b) => a.wakeAt! - b.wakeAt! || this.#created.get(a.id)! - this.#created.get(b.id)!).slice(0, runLimit(limit))
  }

  nextWakeAt(): number | undefined {
    let next: number | undefined
    for (const r of this.#parked.values()) if (r.wakeAt !== undefined && (next === undefined || r.wakeAt < next)) next = r.wakeAt
    return next
  }

  waitingFor(event: string, match: string): RunRecord[] {
    const out: RunRecord[] = []
    for (const r of this.#parked.values()) if (r.status === 'waiting' && r.waitFor?.event === event && r.waitFor.match === match) out.push(r)
    return out.sort((a, b) => this.#created.get(a.id)! - this.#created.get(b.id)!)
  }

  putEvent(event: EventRecord): boolean {
    const events = this.#events.get(event.runId)
    if (events === undefined) this.#events.set(event.runId, new Map([[event.name, event]]))
    else if (events.has(event.name)) return false
    else events.set(event.name, event)
    return true
  }

  getEvent(runId: string, name: string): EventRecord | undefined {
    return this.#events.get(runId)?.get(name)
  }

  pruneRuns(endedBefore: number): number {
    let n = 0
    for (const run of [...this.#runs.values()]) {
      if (TERMINAL.has(run.status) && run.endedAt !== undefined && run.endedAt < endedBefore) {
        this.#forget(run)
        n++
      }
    }
    return n
  }

  #forget(run: RunRecord): void {
    if (run.idempotencyKey !== undefined) this.#keys.delete(this.#scoped(run))
    this.#runs.delete(run.id)
    this.#created.delete(run.id)
    this.#steps.delete(run.id)
    this.#parked.delete(run.id)
    this.#events.delete(run.id)
  }

  #finishedRun(id: string): void {
    this.#finished.push(id)
    if (this.#finished.length - this.#finishedHead <= this.#maxFinished) return
    const old = this.#finished[this.#finishedHead]!
    this.#finishedHead++
    const run = this.#runs.get(old)
    if (run !== undefined) this.#forget(run)
    // Compact the queue now and then instead of shifting on every eviction.
    if (this.#finishedHead > 1024 && this.#finishedHead * 2 > this.#finished.length) {
      this.#finished.splice(0, this.#finishedHead)
      this.#finishedHead = 0
    }
  }

  recordStep(runId: string, step: StepRecord): void {
    const journal = this.#steps.get(runId)
    if (journal === undefined) this.#steps.set(runId, [step])
    else journal.push(step)
  }

  getRun(id: string): RunRecord | undefined {
    return this.#runs.get(id)
  }

  listRuns(query: ListRunsQuery = {}): RunRecord[] {
    const statuses = query.status === undefined ? undefined : new Set(Array.isArray(query.status) ? query.status : [query.status])
    const all = [...this.#runs.values()].reverse()
    let start = 0
    if (query.before !== undefined) {
      start = all.findIndex((r) => r.id === query.before) + 1
      if (start === 0) throw unknownCursor(query.before)
    }
    const out: RunRecord[] = []
    const limit = runLimit(query.limit)
    for (let i = start; i < all.length && out.length < limit; i++) {
      const r = all[i]!
      if (query.workflowId !== undefined && r.workflowId !== query.workflowId) continue
      if (statuses && !statuses.has(r.status)) continue
      out.push(r)
    }
    return out
  }

  getSteps(runId: string): StepRecord[] {
    const journal = this.#steps.get(runId)
    if (journal === undefined) return []
    const latest = new Map<string, StepRecord>()
    for (const s of journal) latest.set(s.key, s)
    return [...latest.values()]
  }

  getCache(key: string, now: number): { value: unknown } | undefined {
    const hit = this.#cache.get(key)
    if (hit === undefined) return undefined
    if (hit.expiresAt !== undefined && hit.expiresAt <= now) {
      this.#cache.delete(key)
      return undefined
    }
    return { value: hit.value }
  }

  setCache(key: string, value: unknown, expiresAt: number | undefined): void {
    this.#cache.set(key, { value, expiresAt })
  }
}

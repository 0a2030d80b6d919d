import type { ListRunsQuery, RunRecord, StepRecord, Store } from './types'

/**
 * The in-process store: for tests, scripts and benchmarks. Nothing survives the process, but
 * a second engine given the same instance resumes its unfinished runs, as after a crash.
 * @example
 * const engine = createEngine({ store: memoryStore() })
 */
export function memoryStore(): MemoryStore {
  return new MemoryStore()
}

export class MemoryStore implements Store {
  readonly #runs = new Map<string, RunRecord>()
  readonly #steps = new Map<string, Map<string, StepRecord>>()
  readonly #keys = new Map<string, string>()
  readonly #cache = new Map<string, { value: unknown; expiresAt: number | undefined }>()

  createRun(run: RunRecord): { run: RunRecord; created: boolean } {
    if (run.idempotencyKey !== undefined) {
      const existing = this.#keys.get(this.#scoped(run))
      if (existing !== undefined) return { run: this.#runs.get(existing)!, created: false }
      this.#keys.set(this.#scoped(run), run.id)
    }
    const copy = { ...run }
    this.#runs.set(run.id, copy)
    return { run: copy, created: true }
  }

  #scoped(run: RunRecord): string {
    return `${run.workflowId}\u0000${run.idempotencyKey}`
  }

  updateRun(id: string, patch: Partial<RunRecord>): void {
    const run = this.#runs.get(id)
    if (run) Object.assign(run, patch)
  }

  recordStep(runId: string, step: StepRecord): void {
    let journal = this.#steps.get(runId)
    if (journal === undefined) {
      journal = new Map()
      this.#steps.set(runId, journal)
    }
    journal.set(step.key, step)
  }

  getRun(id: string): RunRecord | undefined {
    return this.#runs.get(id)
  }

  listRuns(query: ListRunsQuery = {}): RunRecord[] {
    const statuses = query.status === undefined ? undefined : new Set(Array.isArray(query.status) ? query.status : [query.status])
    const all = [...this.#runs.values()].reverse()
    let start = 0
    if (query.before !== undefined) start = all.findIndex((r) => r.id === query.before) + 1
    const out: RunRecord[] = []
    for (let i = start; i < all.length && out.length < (query.limit ?? Infinity); i++) {
      const r = all[i]!
      if (query.workflowId !== undefined && r.workflowId !== query.workflowId) continue
      if (statuses && !statuses.has(r.status)) continue
      out.push(r)
    }
    return out
  }

  getSteps(runId: string): StepRecord[] {
    return [...(this.#steps.get(runId)?.values() ?? [])]
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

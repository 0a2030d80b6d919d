import { afterAll, afterEach, expect, vi } from 'vitest'
import { createEngine, type Engine, type EngineOptions, type Executor, type RunHandle, type StepRecord, type Store } from '@stepline/core'

/** What a store/executor combination provides to the conformance suite. */
export interface ConformanceTarget {
  name: string
  /** A fresh, empty store per call. */
  createStore: () => Store | Promise<Store>
  executor?: () => Executor
  cleanup?: () => Promise<void>
}

/** What every topic file gets: the target, and engine/store factories bound to it. */
export interface SuiteContext {
  target: ConformanceTarget
  /** A fresh store from the target. */
  store: () => Promise<Store>
  /** An engine over a fresh store (or `store` when given) with the target's executor. */
  engine: (options?: Omit<EngineOptions, 'store' | 'executor'> & { store?: Store }) => Promise<Engine>
}

let seq = 0
/** A workflow id unique in this process, so durable stores shared between tests never mix runs. */
export function uid(prefix = 'wf'): string {
  return `${prefix}-${Date.now().toString(36)}-${(++seq).toString(36)}`
}

export function createSuiteContext(target: ConformanceTarget): SuiteContext {
  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })
  afterAll(async () => {
    await target.cleanup?.()
  })
  const store = async (): Promise<Store> => target.createStore()
  return {
    target,
    store,
    engine: async (options = {}) => {
      const { store: given, ...rest } = options
      return createEngine({ ...rest, store: given ?? (await store()), executor: target.executor?.() })
    },
  }
}

/** Resolves after `ms` (on whatever timers are installed), or rejects when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    const onAbort = (): void => {
      clearTimeout(t)
      reject(signal!.reason)
    }
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** A promise that never settles unless `signal` aborts (then it rejects with the reason). */
export function forever(signal?: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    signal?.addEventListener('abort', () => reject(signal.reason), { once: true })
  })
}

export interface Deferred<T = void> {
  promise: Promise<T>
  resolve: (v: T) => void
  reject: (e: unknown) => void
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Counts work in flight and remembers the highest count seen. */
export function inFlight(): { run: <T>(fn: () => Promise<T>) => Promise<T>; readonly max: number; readonly now: number } {
  let now = 0
  let max = 0
  return {
    async run(fn) {
      now++
      max = Math.max(max, now)
      try {
        return await fn()
      } finally {
        now--
      }
    },
    get max() {
      return max
    },
    get now() {
      return now
    },
  }
}

/** Lets pending promise callbacks run (real timers). */
export function tick(ms = 0): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}

/** Every error reachable from `err` through `cause` and `errors`, `err` first. */
export function errorChain(err: unknown): unknown[] {
  const out: unknown[] = []
  const visit = (e: unknown): void => {
    if (e === undefined || e === null || out.includes(e)) return
    out.push(e)
    if (typeof e === 'object') {
      visit((e as { cause?: unknown }).cause)
      const errors = (e as { errors?: unknown }).errors
      if (Array.isArray(errors)) errors.forEach(visit)
    }
  }
  visit(err)
  return out
}

/** The innermost cause of an error (what a step really threw). */
export function rootCause(err: unknown): unknown {
  let e = err
  while (typeof e === 'object' && e !== null && (e as { cause?: unknown }).cause !== undefined) e = (e as { cause?: unknown }).cause
  return e
}

/** The error a promise rejects with; fails when it resolves. */
export async function rejectionOf(p: Promise<unknown>): Promise<any> {
  try {
    await p
  } catch (e) {
    return e
  }
  throw new Error('expected the promise to reject, but it resolved')
}

/** Normalises a Standard Schema issue path to plain keys. */
export function pathOf(path: ReadonlyArray<PropertyKey | { key: PropertyKey }> | undefined): PropertyKey[] {
  // Array.from, not .map: some libraries (arktype) subclass Array for paths.
  return Array.from(path ?? [], (p) => (typeof p === 'object' && p !== null ? p.key : p))
}

/**
 * `store` with some methods replaced, to make it slow or failing at one point; the others are
 * bound to it (the stores' methods read private fields, which a proxy does not have).
 */
export function storeWith(store: Store, replace: { [K in keyof Store]?: Store[K] }): Store {
  return new Proxy(store, {
    get: (target, key) => {
      const replaced = (replace as Record<PropertyKey, unknown>)[key]
      if (replaced !== undefined) return replaced
      const value = Reflect.get(target, key) as unknown
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
    },
  })
}

/**
 * `store` whose journal writes of the entries `held` picks wait until `release()`; `writing`
 * resolves once the first of them started. For what a run does while a write is pending.
 */
export function holdingWrites(store: Store, held: (rec: StepRecord) => boolean): { store: Store; writing: Promise<void>; release: () => void } {
  const writing = deferred()
  const released = deferred()
  const holding = storeWith(store, {
    recordStep: async (runId, rec) => {
      if (held(rec)) {
        writing.resolve()
        await released.promise
      }
      await store.recordStep(runId, rec)
    },
  })
  return { store: holding, writing: writing.promise, release: () => released.resolve() }
}

/** Cancels `handle`'s run once a write `holdingWrites` holds has started, then lets the write finish. */
export async function cancelDuringWrite(handle: RunHandle<unknown>, held: { writing: Promise<void>; release: () => void }): Promise<void> {
  await held.writing
  expect(await handle.cancel()).toBe(true)
  held.release()
  await tick(10)
}

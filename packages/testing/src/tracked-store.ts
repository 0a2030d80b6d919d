import type { Store } from '@stepline/core'

/** The counters the runner reads to tell a run that works from one that only waits for time. */
export interface Activity {
  /** Work started and not settled yet: step attempts, store calls. */
  inFlight: number
  /** Grows whenever some work settles. */
  progress: number
}

/**
 * The store as the engine sees it in `testRun`: the same store, but each call that answers with
 * a promise (or any thenable) counts as work in flight, so that virtual time does not move while
 * a durable store (SQLite, any async store) is still writing what the run did. Calls answered
 * synchronously are passed through untouched.
 */
export function trackStore(store: Store, activity: Activity): Store {
  return new Proxy(store, {
    get(target, key) {
      const member = Reflect.get(target, key, target) as unknown
      if (typeof member !== 'function') return member
      return (...args: unknown[]): unknown => {
        const out = (member as (...a: unknown[]) => unknown).apply(target, args)
        if (!isThenable(out)) return out
        activity.inFlight++
        const settled = (): void => {
          activity.inFlight--
          activity.progress++
        }
        // As a native promise: parts of the engine only await what is `instanceof Promise`.
        return Promise.resolve(out).then(
          (v: unknown) => (settled(), v),
          (e: unknown) => {
            settled()
            throw e
          },
        )
      }
    },
  })
}

/** Any thenable is work in flight, as the runtime sees it: a query builder (knex, mongoose) is one. */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === 'object' || typeof v === 'function') && typeof (v as PromiseLike<unknown>).then === 'function'
}

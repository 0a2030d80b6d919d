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
 * a promise counts as work in flight, so that virtual time does not move while a durable store
 * (SQLite, any async store) is still writing what the run did. Calls answered
 * synchronously are passed through untouched.
 */
export function trackStore(store: Store, activity: Activity): Store {
  return new Proxy(store, {
    get(target, key) {
      const member = Reflect.get(target, key, target) as unknown
      if (typeof member !== 'function') return member
      return (...args: unknown[]): unknown => {
        const out = (member as (...a: unknown[]) => unknown).apply(target, args)
        if (!(out instanceof Promise)) return out
        activity.inFlight++
        const settled = (): void => {
          activity.inFlight--
          activity.progress++
        }
        return out.then(
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

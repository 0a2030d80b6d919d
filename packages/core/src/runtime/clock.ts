/**
 * Time as the runtime sees it. Swap it to run retries, timeouts and `sleep` on virtual time
 * (the testing package's fake clock does).
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  /** Calls `fn` after `ms`; returns a function that cancels it. */
  setTimer(fn: () => void, ms: number): () => void
}

/**
 * The real clock. Timers are looked up on `globalThis` at call time, so fake timers
 * installed by a test runner (`vi.useFakeTimers()`) apply.
 */
export const systemClock: Clock = {
  // Date.now(), not performance: absolute times users pass (sleepUntil, Dates in payloads) and
  // fake timers installed by tests must agree with the clock's timeline. Millisecond precision.
  now: () => Date.now(),
  setTimer(fn, ms) {
    // Node fires a timeout over 2^31-1 ms (24.8 days) at once: a longer wait goes in legs.
    if (ms > MAX_TIMEOUT_MS) {
      let t: ReturnType<typeof setTimeout>
      const end = Date.now() + ms
      const leg = (): void => {
        const left = end - Date.now()
        t = left > MAX_TIMEOUT_MS ? globalThis.setTimeout(leg, MAX_TIMEOUT_MS) : globalThis.setTimeout(fn, Math.max(0, left))
      }
      leg()
      return () => globalThis.clearTimeout(t)
    }
    const t = globalThis.setTimeout(fn, ms)
    return () => globalThis.clearTimeout(t)
  },
}

/** The longest delay `setTimeout` keeps. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

/** Resolves after `ms` on `clock`, or rejects with the scope's reason when `signal` aborts. */
export function delay(clock: Clock, ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      cancel()
      reject(signal!.reason)
    }
    const cancel = clock.setTimer(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

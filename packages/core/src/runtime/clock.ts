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
    const t = globalThis.setTimeout(fn, ms)
    return () => globalThis.clearTimeout(t)
  },
}

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

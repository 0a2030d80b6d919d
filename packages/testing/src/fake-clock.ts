import type { Clock } from '@stepline/core'

interface Timer {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/** Options of `fakeClock`. */
export interface FakeClockOptions {
  /** Virtual start time, ms since the epoch. Default: 2026-01-01T00:00:00Z. */
  start?: number | Date
  /**
   * While a step is in flight, how long (real ms) the runner waits without any progress before
   * it moves virtual time to the next timer anyway, e.g. to let a step `timeout` fire. Default 50.
   */
  idleMs?: number
}

/**
 * Virtual time for runs: retry backoff, step timeouts and `sleep` wait on it, and `testRun`
 * moves it forward whenever the run is only waiting for time. A `sleep('7d')` takes no real time.
 * @example
 * const clock = fakeClock()
 * const run = await testRun(wf, payload, { clock })
 * clock.now() // virtual time when the run ended
 */
export function fakeClock(options: FakeClockOptions = {}): FakeClock {
  return new FakeClock(options)
}

/** Virtual time: create it with `fakeClock()`. */
export class FakeClock implements Clock {
  readonly idleMs: number
  readonly startedAt: number
  #now: number
  #seq = 0
  #timers: Timer[] = []

  constructor(options: FakeClockOptions = {}) {
    const start = options.start ?? Date.UTC(2026, 0, 1)
    this.#now = start instanceof Date ? start.getTime() : start
    if (!Number.isFinite(this.#now)) {
      throw new RangeError(`fakeClock: expected \`start\` as a Date or ms since the epoch, got ${String(start)}.`)
    }
    this.startedAt = this.#now
    this.idleMs = options.idleMs ?? 50
    if (!(typeof this.idleMs === 'number' && this.idleMs >= 0)) {
      throw new RangeError(`fakeClock: expected \`idleMs\` as a number of real milliseconds ≥ 0, got ${String(this.idleMs)}.`)
    }
  }

  now(): number {
    return this.#now
  }

  /** Virtual milliseconds since the clock was made. */
  elapsed(): number {
    return this.#now - this.startedAt
  }

  setTimer(fn: () => void, ms: number): () => void {
    const timer: Timer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false }
    this.#timers.push(timer)
    return () => {
      timer.cancelled = true
    }
  }

  /** Timers scheduled and not yet fired or cancelled. */
  get pending(): number {
    this.#prune()
    return this.#timers.length
  }

  /** When the next timer fires, or undefined when none is pending. */
  nextAt(): number | undefined {
    this.#prune()
    let next: number | undefined
    for (const t of this.#timers) if (next === undefined || t.at < next) next = t.at
    return next
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  advance(ms: number): void {
    if (!(Number.isFinite(ms) && ms >= 0)) {
      throw new RangeError(`fakeClock.advance: expected ms as a finite number ≥ 0, got ${String(ms)}; virtual time only moves forward.`)
    }
    const until = this.#now + ms
    for (;;) {
      const t = this.#earliest()
      if (t === undefined || t.at > until) break
      this.#fire(t)
    }
    this.#now = until
  }

  /** Jumps to the next timer and fires it (and any due at the same instant). False if none. */
  advanceToNext(): boolean {
    const t = this.#earliest()
    if (t === undefined) return false
    const at = t.at
    for (let next = this.#earliest(); next !== undefined && next.at === at; next = this.#earliest()) this.#fire(next)
    return true
  }

  #fire(t: Timer): void {
    this.#timers.splice(this.#timers.indexOf(t), 1)
    this.#now = Math.max(this.#now, t.at)
    t.fn()
  }

  #earliest(): Timer | undefined {
    this.#prune()
    let best: Timer | undefined
    for (const t of this.#timers) if (best === undefined || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t
    return best
  }

  #prune(): void {
    if (this.#timers.some((t) => t.cancelled)) this.#timers = this.#timers.filter((t) => !t.cancelled)
  }
}

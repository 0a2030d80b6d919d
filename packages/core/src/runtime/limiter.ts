/**
 * A counting semaphore whose `acquire` returns `undefined` when a slot is free, so the common
 * uncontended case costs a comparison and no promise.
 */
export class Limiter {
  readonly max: number
  #active = 0
  readonly #waiting: Array<() => void> = []

  constructor(max: number) {
    this.max = max
  }

  get active(): number {
    return this.#active
  }

  get queued(): number {
    return this.#waiting.length
  }

  /** Takes a slot if one is free right now. */
  tryAcquire(): boolean {
    if (this.#active >= this.max) return false
    this.#active++
    return true
  }

  acquire(): Promise<void> | undefined {
    if (this.#active < this.max) {
      this.#active++
      return undefined
    }
    return new Promise((resolve) => this.#waiting.push(resolve))
  }

  release(): void {
    const next = this.#waiting.shift()
    // The slot passes straight to the next waiter; `active` stays the same.
    if (next) next()
    else this.#active--
  }
}

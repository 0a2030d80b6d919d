import { setMaxListeners } from 'node:events'

/**
 * A node in the tree of things that can be aborted: the run, a `parallel`, one step attempt.
 * The `AbortController` behind `signal` is made only when someone reads `signal`, so steps that
 * never look at it cost one small object, not a controller and a listener.
 */
export class AbortScope {
  readonly parent: AbortScope | undefined
  #aborted = false
  #reason: unknown
  #controller: AbortController | undefined
  #unlink: (() => void) | undefined

  constructor(parent?: AbortScope) {
    this.parent = parent
  }

  get aborted(): boolean {
    if (this.#aborted) return true
    // A scope whose controller exists hears its parent through a listener; one without asks.
    if (this.#controller === undefined && this.parent?.aborted) {
      this.#aborted = true
      this.#reason = this.parent.reason
    }
    return this.#aborted
  }

  get reason(): unknown {
    return this.aborted ? this.#reason : undefined
  }

  get signal(): AbortSignal {
    if (this.#controller) return this.#controller.signal
    const controller = new AbortController()
    // Many steps legitimately listen to one scope (a wide parallel, a forEach): not a leak.
    setMaxListeners(0, controller.signal)
    this.#controller = controller
    if (this.aborted) {
      controller.abort(this.#reason)
      return controller.signal
    }
    if (this.parent) {
      const parentSignal = this.parent.signal
      const onAbort = (): void => this.abort(parentSignal.reason)
      parentSignal.addEventListener('abort', onAbort, { once: true })
      this.#unlink = () => parentSignal.removeEventListener('abort', onAbort)
    }
    return controller.signal
  }

  abort(reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#unlink?.()
    this.#controller?.abort(reason)
  }

  /** Detaches from the parent once the work this scope guarded is over. */
  dispose(): void {
    this.#unlink?.()
    this.#unlink = undefined
  }
}

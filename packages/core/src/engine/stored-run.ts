import { EventEmitter } from 'eventemitter3'
import { SteplineError } from '../errors'
import type { EngineEvents } from '../events'
import type { RunStatus } from '../store/types'
import type { Engine } from './engine'
import type { HandleSource, RunOutcome } from './handle'

/** A run this engine does not execute: answers from the store, polling until it ends. */
export class StoredRun implements HandleSource<unknown> {
  #status: RunStatus = 'queued'
  readonly #id: string
  readonly #engine: Engine
  #emitter: EventEmitter<EngineEvents> | undefined

  constructor(id: string, engine: Engine) {
    this.#id = id
    this.#engine = engine
  }

  status(): RunStatus {
    return this.#status
  }

  async outcome(): Promise<RunOutcome<unknown>> {
    for (;;) {
      const rec = await this.#engine.store.getRun(this.#id)
      if (rec === undefined) throw new SteplineError('RUN_NOT_FOUND', `No run "${this.#id}" exists in this engine's store.`)
      this.#status = rec.status
      if (rec.status === 'completed' || rec.status === 'failed' || rec.status === 'cancelled') {
        const steps = await this.#engine.store.getSteps(this.#id)
        return this.#engine.outcomeOf(rec, steps)
      }
      await new Promise((r) => setTimeout(r, 50))
    }
  }

  cancel(reason?: string): Promise<boolean> {
    return this.#engine.cancel(this.#id, reason)
  }

  emitter(): EventEmitter<EngineEvents> {
    return (this.#emitter ??= new EventEmitter<EngineEvents>())
  }
}

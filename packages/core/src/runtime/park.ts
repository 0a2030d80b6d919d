import type { RunRecord } from '../store/types'

/**
 * Thrown by a `sleep` or `waitForEvent` at the top of a run to park it: the walker stops, the
 * engine writes the run's row as `sleeping`/`waiting` and lets go of everything else. Not an
 * error: nothing catches it on the way up but the engine.
 */
export class Parked {
  readonly status: 'sleeping' | 'waiting'
  readonly wakeAt: number | undefined
  readonly waitFor: RunRecord['waitFor']

  constructor(status: 'sleeping' | 'waiting', wakeAt: number | undefined, waitFor?: RunRecord['waitFor']) {
    this.status = status
    this.wakeAt = wakeAt
    this.waitFor = waitFor
  }
}

import { FINISHED_STATUSES, type Engine, type EngineEventName } from '@stepline/core'
import { toJson, utf8Bytes } from './respond'

/** Engine events a run stream forwards, in the order the engine can emit them. */
export const RUN_EVENTS: readonly EngineEventName[] = [
  'run:started',
  'run:resumed',
  'step:started',
  'step:retrying',
  'step:completed',
  'step:failed',
  'step:skipped',
  'run:progress',
  'log',
  'run:parked',
  'run:completed',
  'run:failed',
  'run:cancelled',
]
const FINAL = new Set<string>(['run:completed', 'run:failed', 'run:cancelled'])

type Subscriber = (name: string, payload: unknown) => void

/**
 * Fans the engine's events out to run streams by run id. It listens on the engine only while a
 * stream is open (the engine computes nothing for events nobody listens to), with one listener
 * per event name however many streams there are.
 * @example
 * const hub = new RunEventHub(engine); const off = hub.subscribe(runId, (name, e) => send(name, e))
 */
export class RunEventHub {
  readonly #engine: Engine
  readonly #byRun = new Map<string, Set<Subscriber>>()
  readonly #listeners = new Map<EngineEventName, (e: { runId: string }) => void>()

  constructor(engine: Engine) {
    this.#engine = engine
  }

  subscribe(runId: string, fn: Subscriber): () => void {
    if (this.#byRun.size === 0) this.#attach()
    let set = this.#byRun.get(runId)
    if (set === undefined) this.#byRun.set(runId, (set = new Set()))
    set.add(fn)
    return () => {
      const s = this.#byRun.get(runId)
      if (s === undefined || !s.delete(fn)) return
      if (s.size === 0) this.#byRun.delete(runId)
      if (this.#byRun.size === 0) this.#detach()
    }
  }

  /** Delivers an event the engine does not emit (a parked run cancelled from the store). */
  publish(runId: string, name: string, payload: unknown): void {
    const set = this.#byRun.get(runId)
    if (set) for (const fn of [...set]) fn(name, payload)
  }

  #attach(): void {
    for (const name of RUN_EVENTS) {
      const l = (e: { runId: string }): void => this.publish(e.runId, name, e)
      this.#listeners.set(name, l)
      this.#engine.on(name, l as never)
    }
  }

  #detach(): void {
    for (const [name, l] of this.#listeners) this.#engine.off(name, l as never)
    this.#listeners.clear()
  }
}

const frame = (name: string, data: unknown): Uint8Array => utf8Bytes(`event: ${name}\ndata: ${toJson(data)}\n\n`)

/** Bytes a client may leave unread before its stream is cut: past it, its events would pile up in memory without end. */
const MAX_BEHIND = 1024 * 1024

/**
 * Options of `streamRun`.
 * @example
 * streamRun(engine, hub, runId, { heartbeatMs: 5000, signal: request.signal })
 */
export interface StreamOptions {
  /** Milliseconds between `: heartbeat` comments that keep proxies from closing the stream. Default 15000. */
  heartbeatMs?: number
  /** Ends the stream (the client went away). */
  signal?: AbortSignal
}

/**
 * A run as Server-Sent Events: first `snapshot` (`{ run, steps }`), then the engine's events of
 * that run as they happen (`event: step:completed`, …), ending after the run's final event, or
 * right after the snapshot when the run had already ended. Events emitted while the snapshot was
 * read are sent after it, so none is lost (a step may then show in both). Each heartbeat also
 * re-reads the run, so a run that ended where this engine could not see it still ends the stream
 * (with a final `snapshot`), and one removed from the store ends it with an `error` event
 * (`RUN_NOT_FOUND`), as a stream of an unknown run does.
 * @example
 * return new Response(streamRun(engine, hub, run), { headers: { 'content-type': 'text/event-stream' } })
 */
export function streamRun(engine: Engine, hub: RunEventHub, runId: string, options: StreamOptions = {}): ReadableStream<Uint8Array> {
  const { heartbeatMs = 15_000, signal } = options
  let cleanup = (): void => {}
  // Set by the end of the run, the signal, or the reader cancelling (the client went away): nothing is enqueued after it.
  let closed = false
  return new ReadableStream<Uint8Array>({
    async start(controller) {
      let snapshotSent = false
      const early: [string, unknown][] = []
      const close = (): void => {
        if (closed) return
        closed = true
        cleanup()
        try {
          controller.close()
        } catch {
          // already cancelled by the reader
        }
      }
      const send = (name: string, data: unknown): void => {
        if (closed) return
        // desiredSize is minus the bytes still queued (highWaterMark 0): the client reads slower than the run writes.
        if ((controller.desiredSize ?? 0) < -MAX_BEHIND) {
          closed = true
          cleanup()
          // The connection is cut; an EventSource reconnects and starts again from a snapshot.
          controller.error(new Error(`Run stream ${runId}: the client is more than ${MAX_BEHIND} bytes behind; closing it.`))
          return
        }
        controller.enqueue(frame(name, data))
        if (FINAL.has(name)) close()
      }
      // Subscribed before the snapshot is read, so nothing falls between the two.
      const off = hub.subscribe(runId, (name, payload) => (snapshotSent ? send(name, payload) : early.push([name, payload])))
      const timer = setInterval(() => {
        if (closed) return
        // Only when nothing is queued: a client that has not read what waits gains nothing from more.
        if ((controller.desiredSize ?? 0) === 0) controller.enqueue(utf8Bytes(': heartbeat\n\n'))
        void lastFrame(engine, runId).then((last) => {
          if (last !== undefined) send(...last), close()
        }, () => {})
      }, heartbeatMs)
      const onAbort = (): void => close()
      cleanup = () => {
        off()
        clearInterval(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      if (signal?.aborted) return close()
      signal?.addEventListener('abort', onAbort)
      const [run, steps] = await Promise.all([engine.getRun(runId), engine.getSteps(runId)]).catch((error: unknown) => {
        // The stream errors (the connection is cut): no heartbeat may write to it, nor events reach it.
        closed = true
        cleanup()
        throw error
      })
      if (closed) return
      if (run === undefined) {
        send('error', runNotFound(`No run "${runId}".`))
        return close()
      }
      send('snapshot', { run, steps })
      snapshotSent = true
      for (const [name, payload] of early.splice(0)) send(name, payload)
      if (FINISHED_STATUSES.includes(run.status)) close()
    },
    cancel() {
      closed = true
      cleanup()
    },
  }, { highWaterMark: 0, size: (chunk) => chunk.byteLength })
}

const runNotFound = (message: string) => ({ error: { code: 'RUN_NOT_FOUND', message } })

/** The frame that ends a stream whose run ended unseen (a `snapshot`) or left the store (an `error`); undefined while it lives. */
async function lastFrame(engine: Engine, runId: string): Promise<[string, unknown] | undefined> {
  const run = await engine.getRun(runId)
  // Pruned (or deleted) while the stream was open: without this it would send heartbeats forever.
  if (run === undefined) return ['error', runNotFound(`Run "${runId}" no longer exists: it was removed from the store.`)]
  if (!FINISHED_STATUSES.includes(run.status)) return undefined
  return ['snapshot', { run, steps: await engine.getSteps(runId) }]
}

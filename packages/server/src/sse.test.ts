import { describe, expect, it } from 'vitest'
import type { Engine } from '@stepline/core'
import { RunEventHub, streamRun } from './sse'

describe('streamRun', () => {
  it('writes nothing after the reader cancelled (the client went away)', async () => {
    let serialised = false
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    const run = { id: 'r1', status: 'running', toJSON: () => ((serialised = true), { id: 'r1' }) }
    const engine = {
      on: () => undefined,
      off: () => undefined,
      getRun: async () => (await gate, run),
      getSteps: async () => [],
    } as unknown as Engine
    const stream = streamRun(engine, new RunEventHub(engine), 'r1', { heartbeatMs: 60_000 })
    await stream.cancel()
    release()
    await new Promise((r) => setTimeout(r, 20))
    expect(serialised).toBe(false)
  })

  it('stops its heartbeat and unsubscribes when the snapshot cannot be read (store down)', async () => {
    let listening = 0
    const engine = {
      on: () => void listening++,
      off: () => void listening--,
      getRun: async () => {
        throw new Error('SQLITE_BUSY: database is locked')
      },
      getSteps: async () => [],
    } as unknown as Engine
    const stream = streamRun(engine, new RunEventHub(engine), 'r1', { heartbeatMs: 10 })
    await expect(stream.getReader().read()).rejects.toThrow(/SQLITE_BUSY/)
    // Heartbeats on the errored stream would throw from a timer: an uncaught exception every 10 ms.
    await new Promise((r) => setTimeout(r, 50))
    expect(listening).toBe(0)
  })
})

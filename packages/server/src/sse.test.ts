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

  it('cuts a client that falls more than 1 MiB behind, instead of queueing its events without end (slow client)', async () => {
    let listening = 0
    const engine = {
      on: () => void listening++,
      off: () => void listening--,
      getRun: async () => ({ id: 'r1', status: 'running' }),
      getSteps: async () => [],
    } as unknown as Engine
    const hub = new RunEventHub(engine)
    const stream = streamRun(engine, hub, 'r1', { heartbeatMs: 60_000 })
    const reader = stream.getReader()
    expect(new TextDecoder().decode((await reader.read()).value)).toMatch(/^event: snapshot/)
    // The client reads nothing more while the run logs 4 MiB.
    const line = 'x'.repeat(1024)
    for (let i = 0; i < 4096; i++) hub.publish('r1', 'log', { runId: 'r1', message: line })
    expect(listening).toBe(0)
    let queued = 0
    await expect((async () => {
      for (;;) {
        const { done, value } = await reader.read()
        if (done) return
        queued += value.byteLength
      }
    })()).rejects.toThrow(/behind/)
    expect(queued).toBeLessThan(1.1 * 1024 * 1024)
  })
})

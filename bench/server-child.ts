/**
 * One server of the HTTP bench (bench/server.ts), in a process of its own as `stepline serve`
 * runs: `bare` (node:http reading the body and answering 202), `sqlite` (the webhook → a run on
 * the SQLite file as `stepline serve` opens it) or `nothing` (the same on a store that keeps
 * nothing). Speaks to the parent over IPC: `ready` with its URL; on `mark` it starts counting
 * CPU time and event-loop use, on `read` reports them; on `stop` it closes, waits for every
 * accepted run to end, and reports how many requests it accepted.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { performance } from 'node:perf_hooks'
import { createEngine, workflow, type Engine, type Store } from '@stepline/core'
import { createHandler, toNodeListener, webhook } from '@stepline/server'
import { sqliteStore } from '@stepline/store-sqlite'

export type ServerKind = 'bare' | 'sqlite' | 'nothing'

/** Messages from the parent. */
export type ToChild = { cmd: 'mark' } | { cmd: 'read' } | { cmd: 'stop' }

/** Messages to the parent. */
export type FromChild =
  | { kind: 'ready'; url: string }
  | { kind: 'usage'; cpuUs: number; elu: number; accepted: number }
  | { kind: 'stopped'; accepted: number; unanswered: number; drainMs: number }

/** A store that keeps nothing: every write succeeds at once, every read finds nothing. */
function storeThatKeepsNothing(): Store {
  return {
    createRun: (run) => ({ run, created: true }),
    updateRun: () => undefined,
    recordStep: () => undefined,
    getRun: () => undefined,
    listRuns: () => [],
    getSteps: () => [],
    getCache: () => undefined,
    setCache: () => undefined,
    transitionRun: () => true,
    dueRuns: () => [],
    nextWakeAt: () => undefined,
    waitingFor: () => [],
    putEvent: () => true,
    getEvent: () => undefined,
    pruneRuns: () => 0,
  }
}

const kind = process.argv[2] as ServerKind
const dbFile = process.argv[3]
const send = (message: FromChild): void => void process.send!(message)

let engine: Engine | undefined
let store: Store | undefined
let listener: (req: IncomingMessage, res: ServerResponse) => void
if (kind === 'bare') {
  listener = (req, res) => {
    req.resume()
    req.on('end', () => {
      res.writeHead(202, { 'content-type': 'application/json', 'content-length': '15' })
      res.end('{"runId":"x1"}\n')
    })
  }
} else {
  const order = workflow<{ orderId: string; amount: number }>('order', { triggers: [webhook({ path: 'orders' })] })
    .step('price', (ctx) => ctx.payload.amount * 2)
    .step('confirm', (ctx) => ({ orderId: ctx.payload.orderId, total: ctx.last }))
  store = kind === 'sqlite' ? sqliteStore({ path: dbFile!, groupCommit: 'immediate', writes: 'log' }) : storeThatKeepsNothing()
  engine = createEngine({ store })
  // The handler goes to Node as createHandler made it (a wrapper would lose its light requests).
  listener = toNodeListener(createHandler({ engine, workflows: [order] }))
}

// Every server counts its 202s on the Node response, the bare one too, so all pay the same for it;
// and the requests whose client left before its answer was written (wrk closes its connections
// at the end of a run): such a request may have started a run that nobody heard of.
let accepted = 0
let unanswered = 0
const server = createServer((req, res) => {
  res.once('close', () => {
    if (!res.writableFinished) unanswered++
    else if (res.statusCode === 202) accepted++
  })
  listener(req, res)
})
server.listen(0, '127.0.0.1', () => send({ kind: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }))

let cpu0 = process.cpuUsage()
let elu0 = performance.eventLoopUtilization()
process.on('message', (message: ToChild) => {
  if (message.cmd === 'mark') {
    cpu0 = process.cpuUsage()
    elu0 = performance.eventLoopUtilization()
  } else if (message.cmd === 'read') {
    const cpu = process.cpuUsage(cpu0)
    send({ kind: 'usage', cpuUs: cpu.user + cpu.system, elu: performance.eventLoopUtilization(elu0).utilization, accepted })
  } else if (message.cmd === 'stop') {
    void stop()
  }
})

async function stop(): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
  const t0 = Date.now()
  if (engine !== undefined) {
    // Every accepted run ends before the store closes (the parent counts them in the file).
    while ((await engine.listRuns({ status: ['queued', 'running'], limit: 1 })).length > 0) {
      if (Date.now() - t0 > 120_000) throw new Error('runs did not finish within 2 minutes after the load')
      await new Promise((r) => setTimeout(r, 10))
    }
    await engine.close()
    await (store as { close?: () => Promise<void> | void }).close?.()
  }
  send({ kind: 'stopped', accepted, unanswered, drainMs: Date.now() - t0 })
  process.disconnect()
}

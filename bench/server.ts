/**
 * The HTTP side under load: `wrk` POSTs a small JSON body to a Stepline webhook (SQLite store
 * as `stepline serve` opens it: per-turn group commit and the journal log; a 2-step workflow)
 * and, as the baseline, to a bare node:http server that reads the body and answers 202. A third
 * server runs the same webhook and workflow on a store that keeps nothing: what the HTTP layer and
 * the engine cost without durability, the most any store could give. Each measurement follows a
 * short unmeasured run against the same server; the bare server is measured half before and half
 * after the others (both printed), so that drift in this machine's speed shows instead of skewing
 * the ratio. Reports requests/s, p99
 * latency and errors, then checks that every accepted request (202) became exactly one
 * completed run.
 * Run: `pnpm bench server` (BENCH_SERVER_SECONDS, default 30; BENCH_SERVER_CONNECTIONS, default 64).
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import Database from 'better-sqlite3'
import { createEngine, workflow, type Store } from '@stepline/core'
import { createHandler, toNodeListener, webhook } from '@stepline/server'
import { sqliteStore } from '@stepline/store-sqlite'
import { fmt, type Row } from './util'

const SECONDS = Number(process.env.BENCH_SERVER_SECONDS ?? 30)
const CONNECTIONS = Number(process.env.BENCH_SERVER_CONNECTIONS ?? 64)
const THREADS = Math.max(1, Math.min(2, availableParallelism() >> 1))

interface WrkResult {
  requests: number
  /** CPU time of this process (the server under test lives in it) per request, µs. */
  cpuPerRequestUs: number
  /** Share of the wrk run the server's event loop was busy (1 = the main thread was the limit). */
  elu: number
  rps: number
  p99Ms: number
  non2xx: number
  socketErrors: number
}

function toMs(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text)
  if (!m) return NaN
  return Number(m[1]) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[m[2] as 'us' | 'ms' | 's' | 'm']
}

/** Runs wrk without blocking this process's event loop (the servers under test live in it). */
function wrk(url: string, script: string, seconds = SECONDS): Promise<WrkResult> {
  const cpu0 = process.cpuUsage()
  const elu0 = performance.eventLoopUtilization()
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', script, url])
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}:\n${out}`))
      const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? 0)
      const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
      const cpu = process.cpuUsage(cpu0)
      const elu = performance.eventLoopUtilization(elu0).utilization
      const requests = num(/(\d+) requests in/)
      resolve({
        requests,
        cpuPerRequestUs: (cpu.user + cpu.system) / Math.max(1, requests),
        elu,
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        p99Ms: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
        non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
        socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
      })
    })
  })
}

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

/** Several runs of wrk against one server as one: rates weighted by requests, the worst p99. */
function combine(runs: readonly WrkResult[]): WrkResult {
  const requests = runs.reduce((n, r) => n + r.requests, 0)
  const weigh = (f: (r: WrkResult) => number): number => runs.reduce((sum, r) => sum + f(r) * r.requests, 0) / Math.max(1, requests)
  return {
    requests,
    rps: requests / runs.reduce((t, r) => t + r.requests / r.rps, 0),
    cpuPerRequestUs: weigh((r) => r.cpuPerRequestUs),
    elu: weigh((r) => r.elu),
    p99Ms: Math.max(...runs.map((r) => r.p99Ms)),
    non2xx: runs.reduce((n, r) => n + r.non2xx, 0),
    socketErrors: runs.reduce((n, r) => n + r.socketErrors, 0),
  }
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

const close = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })

export async function serverBench(): Promise<Row[]> {
  if (spawnSync('wrk', ['--version']).error) {
    console.log('\nserver bench skipped: `wrk` is not installed (apt-get install -y wrk).')
    return []
  }
  const dir = mkdtempSync(join(tmpdir(), 'stepline-bench-server-'))
  try {
    const script = join(dir, 'post.lua')
    writeFileSync(script, `wrk.method = "POST"\nwrk.body = '{"orderId":"o-1","amount":42}'\nwrk.headers["Content-Type"] = "application/json"\n`)

    // Baseline: node:http reading the body and answering 202 with a small JSON.
    const bare = createServer((req, res) => {
      req.resume()
      req.on('end', () => {
        res.writeHead(202, { 'content-type': 'application/json', 'content-length': '15' })
        res.end('{"runId":"x1"}\n')
      })
    })
    const bareUrl = await listen(bare)

    const order = workflow<{ orderId: string; amount: number }>('order', { triggers: [webhook({ path: 'orders' })] })
      .step('price', (ctx) => ctx.payload.amount * 2)
      .step('confirm', (ctx) => ({ orderId: ctx.payload.orderId, total: ctx.last }))

    // The ceiling: the same webhook and workflow on a store that keeps nothing.
    const nothing = createEngine({ store: storeThatKeepsNothing() })
    const ceilingServer = createServer(toNodeListener(createHandler({ engine: nothing, workflows: [order] })))
    const ceilingUrl = `${await listen(ceilingServer)}/webhooks/orders`

    const file = join(dir, 'bench.db')
    const store = sqliteStore({ path: file, groupCommit: 'immediate', writes: 'log' })
    const engine = createEngine({ store })
    // The handler goes to Node as createHandler made it (a wrapper would lose its light requests):
    // 202s are counted on the Node response.
    const listener = toNodeListener(createHandler({ engine, workflows: [order] }))
    let accepted = 0
    const server = createServer((req, res) => {
      res.once('finish', () => res.statusCode === 202 && accepted++)
      void listener(req, res)
    })
    const url = `${await listen(server)}/webhooks/orders`
    const unfinished = async (): Promise<boolean> => (await engine.listRuns({ status: ['queued', 'running'], limit: 1 })).length > 0

    // Each measurement follows a short unmeasured run against the same server (JIT, connections,
    // the store's threads): V8 lets a server's code go cold while another one runs.
    const measure = async (target: string, seconds: number): Promise<WrkResult> => {
      await wrk(target, script, 2)
      return wrk(target, script, seconds)
    }
    // The bare server half before and half after the Stepline servers, which run in one piece each.
    const half = Math.max(1, Math.round(SECONDS / 2))
    const bareRuns = [await measure(bareUrl, half)]
    const step = await measure(url, SECONDS)
    // Every accepted run ends before another server is measured.
    const t0 = Date.now()
    while (await unfinished()) {
      if (Date.now() - t0 > 120_000) throw new Error('runs did not finish within 2 minutes after the load')
      await new Promise((r) => setTimeout(r, 10))
    }
    const drainMs = Date.now() - t0
    const ceiling = await measure(ceilingUrl, SECONDS)
    bareRuns.push(await measure(bareUrl, half))
    await Promise.all([close(bare), close(server), close(ceilingServer)])
    await nothing.close()
    const base = combine(bareRuns)

    // Count the runs in the file itself.
    await engine.close()
    await store.close()
    const db = new Database(file, { readonly: true })
    const counts = Object.fromEntries((db.prepare('SELECT status, count(*) AS n FROM runs GROUP BY status').all() as { status: string; n: number }[]).map((r) => [r.status, r.n]))
    db.close()
    const completed = counts.completed ?? 0
    const total = Object.values(counts).reduce((a, b) => a + b, 0)

    const conf = `${SECONDS}s per server, ${CONNECTIONS} connections, ${THREADS} wrk thread(s)`
    return [
      { name: 'requests/s (POST small JSON → 202)', baseline: base.rps, engine: step.rps, unit: 'req/s', higherIsBetter: true, note: `bare node:http (${bareRuns.map((r) => fmt(r.rps)).join(' before, ')} after) vs webhook → run on SQLite, journal log as stepline serve; ${conf}` },
      { name: 'requests/s, store that keeps nothing', baseline: base.rps, engine: ceiling.rps, unit: 'req/s', higherIsBetter: true, note: 'the same webhook and runs without durability: the most any store could give' },
      { name: 'p99 latency', baseline: base.p99Ms, engine: step.p99Ms, unit: 'ms', note: `store that keeps nothing: ${fmt(ceiling.p99Ms)} ms` },
      { name: 'server CPU per request (all threads)', baseline: base.cpuPerRequestUs, engine: step.cpuPerRequestUs, unit: 'µs', note: `store that keeps nothing: ${fmt(ceiling.cpuPerRequestUs)} µs; the servers run in this process, one at a time; wrk is another` },
      { name: 'event loop busy (main thread)', baseline: base.elu * 100, engine: step.elu * 100, unit: '%', note: `store that keeps nothing: ${fmt(ceiling.elu * 100)} %; 100 % = the main thread is the limit` },
      { name: 'non-2xx + socket errors', baseline: base.non2xx + base.socketErrors, engine: step.non2xx + step.socketErrors, unit: '', note: `stepline: ${step.non2xx} non-2xx, ${step.socketErrors} socket errors` },
      {
        name: 'accepted (202) → completed runs',
        baseline: accepted,
        engine: completed,
        unit: 'runs',
        note: `${completed === accepted && total === accepted ? 'completed == accepted ✓' : `MISMATCH: ${JSON.stringify(counts)}`}; wrk saw ${step.requests}; drained in ${drainMs} ms after the load`,
      },
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

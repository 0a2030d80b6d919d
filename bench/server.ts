/**
 * The HTTP side under load: `wrk` POSTs a small JSON body to a Stepline webhook (SQLite store,
 * a 2-step workflow) and, as the baseline, to a bare node:http server that reads the body and
 * answers 202. Reports requests/s, p99 latency and errors, then waits for the engine to finish
 * and checks that every accepted request (202) became exactly one completed run.
 * Run: `pnpm bench server` (BENCH_SERVER_SECONDS, default 30; BENCH_SERVER_CONNECTIONS, default 64).
 */
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { createEngine, workflow } from '@stepline/core'
import { createHandler, toNodeListener, webhook } from '@stepline/server'
import { sqliteStore } from '@stepline/store-sqlite'
import type { Row } from './util'

const SECONDS = Number(process.env.BENCH_SERVER_SECONDS ?? 30)
const CONNECTIONS = Number(process.env.BENCH_SERVER_CONNECTIONS ?? 64)
const THREADS = Math.max(1, Math.min(2, availableParallelism() >> 1))

interface WrkResult {
  requests: number
  /** CPU time of this process (the server under test lives in it) per request, µs. */
  cpuPerRequestUs: number
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
function wrk(url: string, script: string): Promise<WrkResult> {
  const cpu0 = process.cpuUsage()
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', '-s', script, url])
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}:\n${out}`))
      const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? 0)
      const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
      const cpu = process.cpuUsage(cpu0)
      const requests = num(/(\d+) requests in/)
      resolve({
        requests,
        cpuPerRequestUs: (cpu.user + cpu.system) / Math.max(1, requests),
        rps: num(/Requests\/sec:\s+([\d.]+)/),
        p99Ms: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
        non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
        socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
      })
    })
  })
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
    const base = await wrk(bareUrl, script)
    await close(bare)

    const file = join(dir, 'bench.db')
    const store = sqliteStore({ path: file, groupCommit: 'immediate' })
    const engine = createEngine({ store })
    const order = workflow<{ orderId: string; amount: number }>('order', { triggers: [webhook({ path: 'orders' })] })
      .step('price', (ctx) => ctx.payload.amount * 2)
      .step('confirm', (ctx) => ({ orderId: ctx.payload.orderId, total: ctx.last }))
    const handler = createHandler({ engine, workflows: [order] })
    let accepted = 0
    const counting = async (request: Request): Promise<Response> => {
      const res = await handler(request)
      if (res.status === 202) accepted++
      return res
    }
    const server = createServer(toNodeListener(counting))
    const url = await listen(server)
    const step = await wrk(`${url}/webhooks/orders`, script)
    await close(server)

    // Let every accepted run finish, then count in the file itself.
    const t0 = Date.now()
    while ((await engine.listRuns({ status: ['queued', 'running'], limit: 1 })).length > 0) {
      if (Date.now() - t0 > 120_000) throw new Error('runs did not finish within 2 minutes after the load')
      await new Promise((r) => setTimeout(r, 50))
    }
    const drainMs = Date.now() - t0
    await engine.close()
    await store.close()
    const db = new Database(file, { readonly: true })
    const counts = Object.fromEntries((db.prepare('SELECT status, count(*) AS n FROM runs GROUP BY status').all() as { status: string; n: number }[]).map((r) => [r.status, r.n]))
    db.close()
    const completed = counts.completed ?? 0
    const total = Object.values(counts).reduce((a, b) => a + b, 0)

    const conf = `${SECONDS}s, ${CONNECTIONS} connections, ${THREADS} wrk thread(s)`
    return [
      { name: 'requests/s (POST small JSON → 202)', baseline: base.rps, engine: step.rps, unit: 'req/s', higherIsBetter: true, note: `bare node:http vs webhook → run on SQLite; ${conf}` },
      { name: 'p99 latency', baseline: base.p99Ms, engine: step.p99Ms, unit: 'ms' },
      { name: 'server CPU per request (all threads)', baseline: base.cpuPerRequestUs, engine: step.cpuPerRequestUs, unit: 'µs', note: 'the servers run in this process, one at a time; wrk is another' },
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

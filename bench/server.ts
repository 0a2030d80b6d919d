/**
 * The HTTP side under load: `wrk` POSTs a small JSON body to a Stepline webhook (SQLite store
 * as `stepline serve` opens it: per-turn group commit and the journal log; a 2-step workflow)
 * and, as the baseline, to a bare node:http server that reads the body and answers 202. A third
 * server runs the same webhook and workflow on a store that keeps nothing: what the HTTP layer and
 * the engine cost without durability, the most any store could give. The SQLite server is also
 * measured with a new Idempotency-Key on every request (the store decides keys in the file). Each server runs in a
 * process of its own (bench/server-child.ts), as `stepline serve` would run. The three are
 * measured in turns (BENCH_SERVER_ROUNDS rounds, default 3, each server's slice preceded by a
 * 1 s unmeasured run against it, the order rotating each round), so that drift in this machine's
 * speed, which can reach a third within an hour, weighs on all three alike; each round's ratio
 * is printed. Reports requests/s, p99 latency, CPU per request and errors, then checks that
 * every accepted request (202) became exactly one completed run, counted in the SQLite file (runs
 * of requests whose client left before the answer, as wrk's do when it stops, are counted apart).
 * Run: `pnpm bench server` (BENCH_SERVER_SECONDS per server, default 30; BENCH_SERVER_ROUNDS,
 * default 3; BENCH_SERVER_CONNECTIONS, default 64).
 */
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import type { FromChild, ServerKind, ToChild } from './server-child'
import { fmt, type Row } from './util'

const SECONDS = Number(process.env.BENCH_SERVER_SECONDS ?? 30)
const CONNECTIONS = Number(process.env.BENCH_SERVER_CONNECTIONS ?? 64)
const ROUNDS = Math.max(1, Number(process.env.BENCH_SERVER_ROUNDS ?? 3))
const THREADS = Math.max(1, Math.min(2, availableParallelism() >> 1))
const CHILD = new URL('./server-child.ts', import.meta.url)

interface WrkResult {
  requests: number
  /** CPU time of the server's process (all its threads) per request, µs. */
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

/** A bench server in its own process. */
class ChildServer {
  readonly #child: ChildProcess
  readonly #waiting = new Map<FromChild['kind'], { resolve: (m: FromChild) => void; reject: (e: Error) => void }>()
  constructor(kind: ServerKind, dbFile = '') {
    this.#child = fork(CHILD, [kind, dbFile], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.#child.on('message', (m: FromChild) => {
      const waiter = this.#waiting.get(m.kind)
      this.#waiting.delete(m.kind)
      waiter?.resolve(m)
    })
    this.#child.on('exit', (code) => {
      for (const [kind, waiter] of this.#waiting) waiter.reject(new Error(`bench server exited (${code}) before "${kind}"`))
      this.#waiting.clear()
    })
    // Asked for at once: a child may be ready before anyone awaits it.
    this.#ready = this.#next('ready').then((m) => m.url)
  }

  readonly #ready: Promise<string>

  #next<K extends FromChild['kind']>(kind: K, message?: ToChild): Promise<Extract<FromChild, { kind: K }>> {
    return new Promise((resolve, reject) => {
      this.#waiting.set(kind, { resolve: resolve as (m: FromChild) => void, reject })
      if (message) this.#child.send(message)
    })
  }

  ready = (): Promise<string> => this.#ready
  mark = (): void => void this.#child.send({ cmd: 'mark' } satisfies ToChild)
  usage = () => this.#next('usage', { cmd: 'read' })
  stop = () => this.#next('stopped', { cmd: 'stop' })
}

/** Runs wrk against `url`; the server's CPU and event-loop use over the run come from its process. */
async function wrk(server: ChildServer, url: string, script: string, seconds: number): Promise<WrkResult> {
  server.mark()
  const out = await new Promise<string>((resolve, reject) => {
    const child = spawn('wrk', [`-t${THREADS}`, `-c${CONNECTIONS}`, `-d${seconds}s`, '--latency', '-s', script, url])
    let text = ''
    child.stdout.on('data', (d: Buffer) => (text += d.toString()))
    child.stderr.on('data', (d: Buffer) => (text += d.toString()))
    child.on('error', reject)
    child.on('close', (code) => (code === 0 ? resolve(text) : reject(new Error(`wrk exited with ${code}:\n${text}`))))
  })
  const usage = await server.usage()
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? 0)
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const requests = num(/(\d+) requests in/)
  return {
    requests,
    cpuPerRequestUs: usage.cpuUs / Math.max(1, requests),
    elu: usage.elu,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p99Ms: toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? ''),
    non2xx: num(/Non-2xx or 3xx responses: (\d+)/),
    socketErrors: errors ? errors.slice(1).reduce((a, b) => a + Number(b), 0) : 0,
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

export async function serverBench(): Promise<Row[]> {
  if (spawnSync('wrk', ['--version']).error) {
    console.log('\nserver bench skipped: `wrk` is not installed (apt-get install -y wrk).')
    return []
  }
  const dir = mkdtempSync(join(tmpdir(), 'stepline-bench-server-'))
  try {
    const script = join(dir, 'post.lua')
    writeFileSync(script, `wrk.method = "POST"\nwrk.body = '{"orderId":"o-1","amount":42}'\nwrk.headers["Content-Type"] = "application/json"\n`)

    // An Idempotency-Key on every request, new to the store: the webhook's retry-safe form.
    let keyedScripts = 0
    const keyedScript = (): string => {
      const path = join(dir, `keyed-${++keyedScripts}.lua`)
      writeFileSync(path, `${readFileSync(script, 'utf8')}local n = 0\nrequest = function()\n  n = n + 1\n  return wrk.format(nil, nil, { ["Idempotency-Key"] = "w${keyedScripts}-" .. n })\nend\n`)
      return path
    }

    const file = join(dir, 'bench.db')
    const kinds: ServerKind[] = ['bare', 'sqlite', 'nothing']
    const processes = kinds.map((kind) => new ChildServer(kind, file))
    // The keyed side is the SQLite server again, under the keyed script.
    const sides = [...kinds, 'keyed'].map((name, i) => ({ name, server: processes[Math.min(i, 1)]!, url: '', script: name === 'keyed' ? keyedScript : () => script, slices: [] as WrkResult[] }))
    for (const s of sides) s.url = `${await s.server.ready()}/webhooks/orders`
    const slice = Math.max(1, Math.round(SECONDS / ROUNDS))
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < sides.length; i++) {
        const s = sides[(i + round) % sides.length]!
        // Connections, caches and the JIT warm again after another server had the machine.
        await wrk(s.server, s.url, s.script(), 1)
        s.slices.push(await wrk(s.server, s.url, s.script(), slice))
      }
    }
    const [bareSide, sqliteSide, nothingSide, keyedSide] = sides
    const stops = await Promise.all(processes.map((p) => p.stop()))
    const { accepted, unanswered, drainMs } = stops[kinds.indexOf('sqlite')]!
    const base = combine(bareSide!.slices)
    const step = combine(sqliteSide!.slices)
    const ceiling = combine(nothingSide!.slices)
    const keyed = combine(keyedSide!.slices)
    const perRound = (side: typeof sides[number]): string => side.slices.map((r, i) => fmt(r.rps / bareSide!.slices[i]!.rps)).join(', ')

    // Count the runs in the file itself.
    const db = new Database(file, { readonly: true })
    const counts = Object.fromEntries((db.prepare('SELECT status, count(*) AS n FROM runs GROUP BY status').all() as { status: string; n: number }[]).map((r) => [r.status, r.n]))
    db.close()
    const completed = counts.completed ?? 0
    const total = Object.values(counts).reduce((a, b) => a + b, 0)

    const conf = `${SECONDS}s per server in ${ROUNDS} turns, ${CONNECTIONS} connections, ${THREADS} wrk thread(s)`
    return [
      { name: 'requests/s (POST small JSON → 202)', baseline: base.rps, engine: step.rps, unit: 'req/s', higherIsBetter: true, note: `bare node:http (${bareSide!.slices.map((r) => fmt(r.rps)).join(', ')} by turn) vs webhook → run on SQLite, journal log as stepline serve; ratio by turn ${perRound(sqliteSide!)}; ${conf}` },
      { name: 'requests/s, store that keeps nothing', baseline: base.rps, engine: ceiling.rps, unit: 'req/s', higherIsBetter: true, note: `the same webhook and runs without durability: the most any store could give; ratio by turn ${perRound(nothingSide!)}` },
      { name: 'requests/s, an Idempotency-Key on each', baseline: base.rps, engine: keyed.rps, unit: 'req/s', higherIsBetter: true, note: `the SQLite server again, every request with a new key (the file decides each: one transaction per turn); ratio by turn ${perRound(keyedSide!)}; p99 ${fmt(keyed.p99Ms)} ms, ${keyed.non2xx} non-2xx` },
      { name: 'p99 latency', baseline: base.p99Ms, engine: step.p99Ms, unit: 'ms', note: `store that keeps nothing: ${fmt(ceiling.p99Ms)} ms` },
      { name: 'server CPU per request (all threads)', baseline: base.cpuPerRequestUs, engine: step.cpuPerRequestUs, unit: 'µs', note: `store that keeps nothing: ${fmt(ceiling.cpuPerRequestUs)} µs; each server in a process of its own, one at a time; wrk is another` },
      { name: 'event loop busy (main thread)', baseline: base.elu * 100, engine: step.elu * 100, unit: '%', note: `store that keeps nothing: ${fmt(ceiling.elu * 100)} %; 100 % = the main thread is the limit` },
      { name: 'non-2xx + socket errors', baseline: base.non2xx + base.socketErrors, engine: step.non2xx + step.socketErrors, unit: '', note: `stepline: ${step.non2xx} non-2xx, ${step.socketErrors} socket errors` },
      {
        name: 'accepted (202) → completed runs',
        baseline: accepted,
        engine: completed,
        unit: 'runs',
        // A client that left before its 202 was written may still have started a run (it is not lost: it completed too).
        note: `${total === completed && completed >= accepted && completed - accepted <= unanswered ? `every accepted run completed ✓${completed > accepted ? ` (and ${completed - accepted} of the ${unanswered} requests whose client left before the answer)` : ''}` : `MISMATCH: ${JSON.stringify(counts)}, ${unanswered} unanswered`}; wrk saw ${step.requests + keyed.requests} in the measured turns (keyed ones too) (the warm-ups' count too); drained in ${drainMs} ms after the load`,
      },
    ]
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { prng } from './prng'

// The promise a user of `stepline serve` relies on, under SIGKILL: every webhook answered
// `202 { runId }` becomes a run that completes, even if the server dies right after answering, and
// no step that was journaled runs again. The built CLI on its default store (SQLite,
// `groupCommit: 'immediate'`, `writes: 'log'`), webhooks posted over real sockets, the server
// killed at seeded random moments under load and started again on the same file. The test
// command builds before it tests.
const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist/cli.js')
const built = existsSync(cli) && existsSync(join(root, 'packages/server/dist/index.js')) && existsSync(join(root, 'packages/store-sqlite/dist/index.js'))
const workflows = 'test/crash/server-workflows.ts'
/** The step names of `crash-ingest`, as its journal names them and its steps log them. */
const STEPS = ['receive', 'enrich', 'fan[0]', 'fan[1]', 'fan[2]', 'settle'] as const
const KILLS = Number(process.env.SERVER_CRASH_KILLS ?? 3)
const CLIENTS = Number(process.env.SERVER_CRASH_CLIENTS ?? 16)
// Fixed unless asked for: the same kill moments in every CI run (the machine's speed still varies them).
const SEED = Number(process.env.SERVER_CRASH_SEED ?? 7)

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Waits until `ready()` holds, polling every 5 ms; throws `message()` after `ms`. */
async function until(ready: () => boolean, ms: number, message: () => string): Promise<void> {
  const started = Date.now()
  while (!ready()) {
    if (Date.now() - started > ms) throw new Error(message())
    await sleep(5)
  }
}

/** A step output of the fixture: `<step>@<life>`, or for `settle` an object whose `settle` is that. */
type Made = string | { settle: string }

/** The life of the server whose execution of the step made an output. */
function madeIn(output: Made): number | undefined {
  const tag = /@(\d+)$/.exec(typeof output === 'string' ? output : output.settle)
  return tag === null ? undefined : Number(tag[1])
}

/** One `stepline serve` process ("life" n of the journal): its URL once it listens, and its end. */
interface Life {
  n: number
  child: ChildProcess
  url: string
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  output: () => string
}

async function serve(dir: string, n: number): Promise<Life> {
  const child = spawn(process.execPath, [cli, 'serve', workflows, '--db', join(dir, 'x.db'), '--port', '0'], {
    cwd: root,
    env: { ...process.env, NO_COLOR: '1', FORCE_TTY: '', STEPLINE_CRASH_EXEC_LOG: join(dir, 'exec.log'), STEPLINE_CRASH_LIFE: String(n) },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  // Read all of it (a server blocks on a full stdout pipe), keep the banner and the tail.
  let head = ''
  let tail = ''
  const take = (d: Buffer) => {
    if (head.length < 2000) head += d
    tail = (tail + d).slice(-2000)
  }
  child.stdout!.on('data', take)
  child.stderr!.on('data', take)
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })))
  const output = () => (head.length < 2000 ? head : `${head}\n…\n${tail}`)
  try {
    await until(() => /serving .* on http:\/\/\S+/.test(head) || child.exitCode !== null || child.signalCode !== null, 15_000, () => `stepline serve (life ${n}) did not listen within 15 s:\n${output()}`)
  } catch (e) {
    child.kill('SIGKILL')
    throw e
  }
  const url = /serving .* on (http:\/\/\S+)/.exec(head)?.[1]
  if (url === undefined) throw new Error(`stepline serve (life ${n}) exited before it listened:\n${output()}`)
  return { n, child, url: url.replace(/\/$/, ''), exited, output }
}

interface RunRow {
  id: string
  status: string
  payload: string
  output: string | null
}

interface Journal {
  runs: Map<string, RunRow>
  /** Completed step outputs (JSON) by `<runId> <step>`. */
  outputs: Map<string, string>
}

async function readJournal(path: string): Promise<Journal> {
  const { default: Database } = await import('better-sqlite3')
  const db = new Database(path, { readonly: true })
  try {
    const runs = new Map((db.prepare('select id, status, payload, output from runs').all() as RunRow[]).map((r) => [r.id, r]))
    const steps = db.prepare("select run_id, name, output from steps where status = 'completed' and kind in ('step', 'fn')").all() as { run_id: string; name: string; output: string }[]
    return { runs, outputs: new Map(steps.map((s) => [`${s.run_id} ${s.name}`, s.output])) }
  } finally {
    db.close()
  }
}

/**
 * What a killed server had made durable: a copy of its files (the process is gone, so they no
 * longer change) opened once by the store, which applies the journal logs the server left as the
 * next server does, then read. `logs`: how many journal logs the server left.
 */
async function snapshot(dir: string, life: number): Promise<Journal & { logs: number }> {
  const at = join(dir, `snapshot-${life}`)
  mkdirSync(at)
  const files = readdirSync(dir).filter((name) => name === 'x.db' || name === 'x.db-wal' || name.startsWith('x.db-log-'))
  for (const name of files) copyFileSync(join(dir, name), join(at, name))
  const { sqliteStore } = await import('@stepline/store-sqlite')
  await sqliteStore({ path: join(at, 'x.db') }).close()
  return { ...(await readJournal(join(at, 'x.db'))), logs: files.filter((name) => name.startsWith('x.db-log-')).length }
}

describe.runIf(built)('stepline serve under SIGKILL (SQLite, group commit, journal log)', () => {
  it(`every webhook answered 202 becomes a completed run across ${KILLS} SIGKILLs under load; no journaled step runs again`, async () => {
    const began = Date.now()
    const dir = mkdtempSync(join(tmpdir(), 'stepline-server-crash-'))
    const random = prng(SEED)
    const why = `(seed ${SEED}; SERVER_CRASH_SEED=${SEED} replays the kill moments)`

    // The load: CLIENTS loops, each posting one request at a time to whichever server is up.
    // Request n carries { n }, so that every run in the journal names the request that made it.
    // Every third request has an Idempotency-Key; when it fails (cut off by a kill), it is sent
    // again to the next server, as a client that retries does, until it is answered.
    let target: Life | undefined
    let stopped = false
    /** Whether clients send new requests, or only the retries. */
    let fresh = true
    let inFlight = 0
    let requests = 0
    let attempts = 0
    const answers: { runId: string; n: number; life: number; duplicate: boolean }[] = []
    /** The requests that failed, with the lives they failed in. */
    const failed = new Map<number, number[]>()
    const retries: number[] = []
    const unexpected: string[] = []
    const keyed = (n: number) => n % 3 === 0
    const client = async () => {
      while (!stopped) {
        const life = target
        if (life === undefined) {
          await sleep(2)
          continue
        }
        const n = retries.shift() ?? (fresh ? requests++ : undefined)
        if (n === undefined) {
          await sleep(2)
          continue
        }
        attempts++
        inFlight++
        try {
          const res = await fetch(`${life.url}/webhooks/crash/ingest`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(keyed(n) ? { 'idempotency-key': `request-${n}` } : {}) },
            body: JSON.stringify({ n }),
          })
          const text = await res.text()
          if (res.status !== 202) unexpected.push(`request ${n} to life ${life.n}: ${res.status} ${text}`)
          else {
            const { runId, duplicate } = JSON.parse(text) as { runId: string; duplicate?: boolean }
            answers.push({ runId, n, life: life.n, duplicate: duplicate === true })
          }
        } catch {
          // Refused, or cut off by the kill: it may have made a run or not.
          failed.set(n, [...(failed.get(n) ?? []), life.n])
          if (keyed(n)) retries.push(n)
        } finally {
          inFlight--
        }
      }
    }
    const clients = Array.from({ length: CLIENTS }, client)

    const snapshots: (Journal & { logs: number })[] = []
    const kills: string[] = []
    const lives: Life[] = []
    try {
      for (let n = 1; n <= KILLS; n++) {
        const life = await serve(dir, n)
        lives.push(life)
        target = life
        // Odd lives die at a random moment after the store began writing through its journal log
        // (after its first 100 group commits); even ones at a random moment after their first 202,
        // while they may still be resuming the runs the previous kill left.
        const afterLog = n % 2 === 1
        if (afterLog) await until(() => readdirSync(dir).some((name) => name.startsWith('x.db-log-')), 15_000, () => `life ${n} wrote no journal log ${why}:\n${life.output()}`)
        else await until(() => answers.some((a) => a.life === n), 15_000, () => `life ${n} answered no request ${why}:\n${life.output()}`)
        const delay = Math.floor(random() * (afterLog ? 400 : 600))
        await sleep(delay)
        life.child.kill('SIGKILL')
        target = undefined
        const end = await life.exited
        expect(end.signal, `life ${n} ended before its kill ${why}:\n${life.output()}`).toBe('SIGKILL')
        snapshots[n] = await snapshot(dir, n)
        const open = [...snapshots[n]!.runs.values()].filter((r) => r.status !== 'completed')
        const queued = open.filter((r) => r.status === 'queued').length
        kills.push(`${delay} ms after its ${afterLog ? 'journal log began' : 'first 202'} (${open.length} runs unfinished, ${queued} of them queued)`)
      }

      // The last life takes only the retries: it resumes what the last kill left, and drains.
      const last = await serve(dir, KILLS + 1)
      lives.push(last)
      fresh = false
      target = last
      await until(() => retries.length === 0 && inFlight === 0, 15_000, () => `the retries were not answered ${why}:\n${last.output()}`)
      stopped = true
      await Promise.all(clients)
      const draining = Date.now()
      for (let open = 1; open > 0; ) {
        if (Date.now() - draining > 30_000) throw new Error(`runs still unfinished 30 s after the last start ${why}:\n${last.output()}`)
        await sleep(50)
        const res = await fetch(`${last.url}/runs?status=queued,running,sleeping,waiting&limit=1`)
        open = ((await res.json()) as { runs: unknown[] }).runs.length
      }
      last.child.kill('SIGTERM')
      expect((await last.exited).code, `the last life did not stop cleanly on SIGTERM ${why}:\n${last.output()}`).toBe(0)
      // Closing applied and removed its journal log: the file alone now holds everything.
      expect(readdirSync(dir).filter((name) => name.startsWith('x.db-log-'))).toEqual([])

      const final = await readJournal(join(dir, 'x.db'))
      const lines = readFileSync(join(dir, 'exec.log'), 'utf8').split('\n').filter((l) => l !== '')
      // `<runId> <step>` → the lives that executed it, in order.
      const execs = new Map<string, number[]>()
      const malformed: string[] = []
      for (const line of lines) {
        const m = /^exec (\d+) (\S+) (\S+)$/.exec(line)
        if (m === null) malformed.push(line)
        else execs.set(`${m[2]} ${m[3]}`, [...(execs.get(`${m[2]} ${m[3]}`) ?? []), Number(m[1])])
      }

      // 1. A 202 is answered once its run is durable: the run is in the journal its server left.
      const notDurable = answers.filter((a) => !(snapshots[a.life] ?? final).runs.has(a.runId)).map((a) => `${a.runId} (request ${a.n}, life ${a.life})`)
      // 2. Every 202'd run completed, and no run at all is left unfinished.
      const accepted = new Set(answers.map((a) => a.runId))
      const lost = [...accepted].filter((id) => final.runs.get(id)?.status !== 'completed').map((id) => `${id}: ${final.runs.get(id)?.status ?? 'missing'}`)
      const unfinished = [...final.runs.values()].filter((r) => r.status !== 'completed').map((r) => `${r.id}: ${r.status}`)
      // 3. One request, at most one run, however often it was sent (keyed retries answered with
      //    that run, marked duplicate only if it was in the journal before); a run no 202 named
      //    belongs to a request that failed.
      const answered = new Map<number, string>()
      const strays: string[] = []
      for (const a of answers) {
        if (answered.has(a.n) && answered.get(a.n) !== a.runId) strays.push(`request ${a.n} was answered ${answered.get(a.n)} and ${a.runId}`)
        answered.set(a.n, a.runId)
        // (Unless an attempt failed in that same life, which only a kill should do.)
        if (a.duplicate && !snapshots[a.life - 1]?.runs.has(a.runId) && !failed.get(a.n)?.includes(a.life)) strays.push(`request ${a.n} was answered duplicate of ${a.runId} in life ${a.life}, which the journal did not have before`)
      }
      const runOf = new Map<number, string>()
      for (const run of final.runs.values()) {
        const { n } = JSON.parse(run.payload) as { n: number }
        if (runOf.has(n)) strays.push(`request ${n} made runs ${runOf.get(n)} and ${run.id}`)
        else if (answered.has(n) && answered.get(n) !== run.id) strays.push(`request ${n} was answered ${answered.get(n)} but made ${run.id}`)
        else if (!answered.has(n) && !failed.has(n)) strays.push(`run ${run.id} of request ${n}, which was not answered 202 and did not fail`)
        runOf.set(n, run.id)
      }
      // 4. A step runs only for a run that is durable (the run is created before its steps start).
      const phantoms = [...new Set([...execs.keys()].map((k) => k.split(' ')[0]!))].filter((id) => !final.runs.has(id))
      // 5. Each journaled output was made by an execution in the life its tag names; journaled,
      //    it was durable when that server died, so no later life may execute the step again.
      //    A step executed in several lives (in flight at a kill) is allowed: at-least-once.
      const unexplained: string[] = []
      const reExecuted: string[] = []
      const twiceInOneLife: string[] = []
      const inconsistent: string[] = []
      let rerunInFlight = 0
      for (const run of final.runs.values()) {
        for (const step of STEPS) {
          const key = `${run.id} ${step}`
          const output = final.outputs.get(key)
          const ran = execs.get(key) ?? []
          const made = output === undefined ? undefined : madeIn(JSON.parse(output) as Made)
          if (made === undefined || !ran.includes(made)) unexplained.push(`${key}: output ${output ?? 'missing'}, executed in lives [${ran.join(', ')}]`)
          else if (ran.some((l) => l > made)) reExecuted.push(`${key}: journaled in life ${made}, executed in lives [${ran.join(', ')}]`)
          if (new Set(ran).size !== ran.length) twiceInOneLife.push(`${key}: executed in lives [${ran.join(', ')}]`)
          if (new Set(ran).size > 1) rerunInFlight++
        }
        // 6. The last step saw the journaled outputs of the steps before it (replayed or fresh),
        //    and the run's output is the last step's journaled output.
        const journaled = (step: string) => JSON.parse(final.outputs.get(`${run.id} ${step}`) ?? 'null') as unknown
        const expected = {
          n: (JSON.parse(run.payload) as { n: number }).n,
          receive: journaled('receive'),
          enrich: journaled('enrich'),
          fan: [journaled('fan[0]'), journaled('fan[1]'), journaled('fan[2]')],
          settle: (journaled('settle') as { settle?: unknown } | null)?.settle,
        }
        if (run.output !== JSON.stringify(expected) || run.output !== final.outputs.get(`${run.id} settle`)) {
          inconsistent.push(`${run.id}: output ${run.output}, settle journaled ${final.outputs.get(`${run.id} settle`)}, the steps before it ${JSON.stringify(expected)}`)
        }
      }
      // 7. An output journaled before a kill is the output in the end (outputs are exactly-once).
      const replaced: string[] = []
      for (let n = 1; n <= KILLS; n++) {
        for (const [key, output] of snapshots[n]!.outputs) {
          if (final.outputs.get(key) !== output) replaced.push(`${key}: ${output} at kill ${n}, ${final.outputs.get(key) ?? 'missing'} in the end`)
        }
      }

      const extra = [...final.runs.keys()].filter((id) => !accepted.has(id)).length
      console.log(
        `server crash: seed ${SEED}; ${KILLS} SIGKILLs, ${kills.map((k, i) => `life ${i + 1} at ${k}`).join(', ')}; ` +
          `${requests} requests (${attempts} sent, from ${CLIENTS} clients): ${answered.size} answered 202, ${[...failed.keys()].filter((n) => !answered.has(n)).length} failed, ` +
          `${attempts - requests} keyed retries (${answers.filter((a) => a.duplicate).length} answered with the run of the attempt the kill cut off); ` +
          `${final.runs.size} runs (${extra} of failed requests), ${final.runs.size - unfinished.length} completed; ${lines.length} step executions, ` +
          `${rerunInFlight} in-flight steps re-run after a kill (allowed: at-least-once), ${reExecuted.length} journaled steps re-executed; ` +
          `${((Date.now() - began) / 1000).toFixed(1)} s`,
      )

      expect.soft(unexpected, `answers other than 202 ${why}`).toEqual([])
      expect.soft(malformed, `torn lines in the execution log ${why}`).toEqual([])
      expect.soft(notDurable, `202 answered before its run was durable ${why}`).toEqual([])
      expect.soft(lost, `202'd runs not completed ${why}`).toEqual([])
      expect.soft(unfinished, `runs left unfinished ${why}`).toEqual([])
      expect.soft(strays, `runs that do not match one request ${why}`).toEqual([])
      expect.soft(phantoms, `steps executed for runs the journal does not have ${why}`).toEqual([])
      expect.soft(unexplained, `journaled outputs that no execution made ${why}`).toEqual([])
      expect.soft(reExecuted, `journaled steps executed again after a restart ${why}`).toEqual([])
      expect.soft(twiceInOneLife, `steps executed twice by one server ${why}`).toEqual([])
      expect.soft(replaced, `journaled outputs replaced ${why}`).toEqual([])
      expect.soft(inconsistent, `run outputs that disagree with the journal ${why}`).toEqual([])
      // The test means something only if kills left journal logs and unfinished runs to resume.
      expect(snapshots.some((s) => s.logs > 0), `no kill left a journal log ${why}`).toBe(true)
      expect(snapshots.some((s) => [...s.runs.values()].some((r) => r.status !== 'completed')), `no kill left an unfinished run ${why}`).toBe(true)
    } finally {
      stopped = true
      target = undefined
      for (const life of lives) life.child.kill('SIGKILL') // no-op for those that ended
      await Promise.all(clients)
      rmSync(dir, { recursive: true, force: true })
    }
  }, 90_000)
})

if (!built) console.warn('server crash harness: skipped because dist/ is missing; run `pnpm build` first (the test command does).')

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { prng } from './prng'

// The harness runs the built packages in a real child process (the test command builds first).
const root = fileURLToPath(new URL('../..', import.meta.url))
const built = existsSync(join(root, 'packages/core/dist/index.js')) && existsSync(join(root, 'packages/store-sqlite/dist/index.js'))
const RUNS = Number(process.env.CRASH_RUNS ?? 100)
const SEED = Number(process.env.CRASH_SEED ?? 42)

interface Life {
  killed: boolean
  code: number | null
}

function live(dbPath: string, logPath: string, killAfterMs: number | undefined, writes: 'inline' | 'log'): Promise<Life> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'test/crash/child.mjs'), dbPath, logPath, String(RUNS), writes], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    let stderr = ''
    child.stderr.on('data', (d) => (stderr += String(d)))
    let killed = false
    let timer: NodeJS.Timeout | undefined
    // Counted from when the child has loaded and opened the journal, not from the spawn: how long loading takes depends on the machine's load.
    child.stdout.once('data', () => {
      if (killAfterMs !== undefined) timer = setTimeout(() => ((killed = true), child.kill('SIGKILL')), killAfterMs)
    })
    child.stdout.resume()
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      if (!killed && code !== 0) reject(new Error(`crash child exited with ${code}: ${stderr}`))
      else resolve({ killed, code })
    })
  })
}

describe.runIf(built)('crash recovery under SIGKILL (SQLite journal)', () => {
  for (const writes of ['inline', 'log'] as const) {
    it(`${RUNS} runs with parallel, forEach and branch nodes all complete across random kills; no completed step runs again (writes: '${writes}')`, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'stepline-crash-'))
      const dbPath = join(dir, 'crash.db')
      const logPath = join(dir, 'effects.log')
      const random = prng(SEED)
      let kills = 0
      // Lives killed with a journal log the thread had not emptied: the next life applies it.
      let leftLogs = 0
      try {
        // Kill at random moments (seeded) until a life ends on its own with every run completed.
        for (let life = 0; life < 200; life++) {
          const killAfter = life < 25 ? 60 + Math.floor(random() * 240) : undefined
          const result = await live(dbPath, logPath, killAfter, writes)
          if (result.killed) kills++
          if (readdirSync(dir).some((name) => name.startsWith('crash.db-log-'))) leftLogs++
          if (!result.killed) break
        }
        expect(readdirSync(dir).filter((name) => name.startsWith('crash.db-log-'))).toEqual([])
        const lines = readFileSync(logPath, 'utf8').split('\n').filter((l) => /^(exec|journaled) \S+ \S+$/.test(l))
        const journaled = new Set<string>()
        const reExecuted: string[] = []
        const execs = new Map<string, number>()
        for (const line of lines) {
          const [kind, runId, key] = line.split(' ') as [string, string, string]
          const id = `${runId} ${key}`
          if (kind === 'journaled') journaled.add(id)
          else {
            if (journaled.has(id)) reExecuted.push(id)
            execs.set(id, (execs.get(id) ?? 0) + 1)
          }
        }
        const { default: Database } = await import('better-sqlite3')
        const db = new Database(dbPath, { readonly: true })
        const statuses = db.prepare('select status, count(*) as n from runs group by status').all() as { status: string; n: number }[]
        db.close()
        const repeated = [...execs.values()].filter((n) => n > 1).length
        console.log(
          `crash harness (writes: '${writes}'): ${RUNS} runs, seed ${SEED}, ${kills} SIGKILLs, ${writes === 'log' ? `${leftLogs} of them left a journal log, ` : ''}${execs.size} step executions logged, ` +
            `${repeated} in-flight steps re-run after a kill (allowed: at-least-once), ${reExecuted.length} completed steps re-executed`,
        )
        expect(statuses).toEqual([{ status: 'completed', n: RUNS }])
        expect(kills).toBeGreaterThan(5)
        if (writes === 'log') expect(leftLogs).toBeGreaterThan(0)
        expect(reExecuted).toEqual([])
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    }, 240_000)
  }
})

describe.runIf(built)('a parked run across a restart (SQLite journal)', () => {
  it('a run sleeping in one process completes in the next one, after its wake time', async () => {
    const { execFileSync } = await import('node:child_process')
    const dir = mkdtempSync(join(tmpdir(), 'stepline-sleep-'))
    const db = join(dir, 'sleep.db')
    const child = (mode: string) => JSON.parse(execFileSync(process.execPath, [join(root, 'test/crash/child-sleep.mjs'), db, mode], { cwd: root }).toString())
    try {
      const parked = child('start')
      expect(parked.status).toBe('sleeping')
      const done = child('resume')
      expect(done).toMatchObject({ runId: parked.runId, status: 'completed' })
      expect(done.output.after - done.output.before).toBeGreaterThanOrEqual(1500)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }, 60_000)
})

if (!built) console.warn('crash harness: skipped because dist/ is missing; run `pnpm build` first (the test command does).')

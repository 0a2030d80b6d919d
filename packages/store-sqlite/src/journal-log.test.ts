import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { Serializer } from 'node:v8'
import Database from 'better-sqlite3'
import { describe, expect, it, vi } from 'vitest'
import { createEngine, workflow } from '@stepline/core'
import { JournalLog } from './journal-log'
import { sqliteStore, type SqliteStore } from './sqlite-store'
import { run, step, tempStores } from './test-fixtures'

const { file, make } = tempStores('stepline-journal-log-', { writes: 'log' })
const logsOf = (path: string): string[] => readdirSync(dirname(path)).filter((name) => name.startsWith(`${basename(path)}-log-`))

/** One group commit per write: 100 of them hand the store's commits to the log. */
async function fill(store: SqliteStore, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) {
    await store.createRun(run(`r${i}`))
    await store.recordStep(`r${i}`, step('a', { output: { i } }))
  }
}

const count = (path: string, table: string): number => {
  const db = new Database(path, { readonly: true })
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n
  } finally {
    db.close()
  }
}

/**
 * Leaves `log` beside a fresh store's file as a process that died would have, with the mark its
 * thread recorded, then opens the store: the ids of the runs it holds. The log and its mark are
 * gone afterwards.
 */
function recoverDeadLog(path: string, log: string | Buffer, mark: { generation: string; offset: number }): string[] {
  sqliteStore({ path }).close()
  const dead = spawnSync(process.execPath, ['-e', '']).pid!
  writeFileSync(`${path}-log-${dead}-deadbeef`, log)
  const db = new Database(path)
  db.prepare('INSERT INTO log_applied (log, offset) VALUES (?, ?)').run(mark.generation, mark.offset)
  db.close()
  const store = sqliteStore({ path })
  let ids: string[]
  try {
    ids = store.listRuns().map((r) => r.id).sort()
  } finally {
    store.close()
  }
  expect(logsOf(path)).toEqual([])
  expect(count(path, 'log_applied')).toBe(0)
  return ids
}

describe("writes: 'log' (the journal log)", () => {
  it('after 100 group commits, commits go to the log and a thread applies them; reads see every write; close removes the log', async () => {
    const path = file()
    const store = make(path)
    await fill(store, 0, 40)
    expect(logsOf(path)).toEqual([]) // 80 commits: still inline
    await fill(store, 40, 160)
    expect(logsOf(path)).toHaveLength(1)
    // Without waiting: every read first waits for the thread to catch up.
    expect(store.listRuns({ limit: 1000 })).toHaveLength(200)
    expect(store.getSteps('r199')).toMatchObject([{ key: 'a', output: { i: 199 } }])
    await store.updateRun('r199', { status: 'completed', endedAt: 5 })
    expect(await store.transitionRun('r199', ['completed'], 'failed')).toBe(true)
    expect(store.getRun('r199')).toMatchObject({ status: 'failed', endedAt: 5 })
    store.close()
    expect(logsOf(path)).toEqual([])
    expect(count(path, 'steps')).toBe(200)
    expect(count(path, 'log_applied')).toBe(0)
  })

  it('an engine completes its runs, keyed and not, with every step journaled', async () => {
    const path = file()
    const engine = createEngine({ store: make(path, { groupCommit: 'immediate' }) })
    const wf = workflow<{ n: number }>('pair')
      .step('double', (ctx) => ctx.payload.n * 2)
      .step('label', (ctx) => `n=${ctx.last}`)
    engine.register(wf)
    // One after another first: three commits each, so that the store reaches its 100th and starts the log.
    for (let i = 0; i < 40; i++) await engine.run(wf, { n: i })
    expect(logsOf(path)).toHaveLength(1)
    const outputs = await Promise.all(Array.from({ length: 260 }, (_, i) => engine.run(wf, { n: i })))
    expect(outputs[259]).toBe('n=518')
    const first = await engine.start(wf, { n: 1 }, { idempotencyKey: 'k1' })
    const again = await engine.start(wf, { n: 1 }, { idempotencyKey: 'k1' })
    expect(again.id).toBe(first.id)
    await first.result()
    const runs = await engine.listRuns({ limit: 1000 })
    expect(runs).toHaveLength(301)
    expect(runs.every((r) => r.status === 'completed')).toBe(true)
    expect((await engine.getSteps(runs[0]!.id)).map((s) => s.name)).toEqual(['double', 'label'])
    await engine.close()
  })

  it('a log left by a process that died is applied when the file is opened: past its mark, without a torn last line', () => {
    const insert = 'INSERT INTO runs (id, workflow_id, plan_hash, status, attempt, created_at) VALUES (?, ?, ?, ?, ?, ?)'
    const lines = [
      JSON.stringify({ stepline: 'journal-log', generation: 'g1' }),
      JSON.stringify(['S', 0, insert]),
      JSON.stringify([0, 'r1', 'wf', 'h', 'running', 1, 1]),
      JSON.stringify([0, 'r2', 'wf', 'h', 'running', 1, 2]),
      JSON.stringify([0, 'r3', 'wf', 'h', 'running', 1, 3]),
    ]
    const text = `${lines.join('\n')}\n${JSON.stringify([0, 'r4', 'wf']).slice(0, 9)}`
    // The thread had applied r1 (and recorded so) before the process died: r1 must not come back.
    const offset = Buffer.byteLength(`${lines.slice(0, 3).join('\n')}\n`)
    expect(recoverDeadLog(file(), text, { generation: 'g1', offset })).toEqual(['r2', 'r3'])
  })

  it('a v8 log left by a process that died is applied past its mark, without a torn last record or a tail of zeros', () => {
    const insert = 'INSERT INTO runs (id, workflow_id, plan_hash, status, attempt, created_at) VALUES (?, ?, ?, ?, ?, ?)'
    // The format as journal-log.ts documents it: a length, then V8-serialized entries.
    const record = (entries: [tag: number, ...values: unknown[]][]): Buffer => {
      const ser = new Serializer()
      ser.writeHeader()
      for (const [tag, ...values] of entries) {
        ser.writeUint32(tag)
        if (tag === 0) {
          ser.writeUint32(values[0] as number)
          ser.writeValue(values[1])
        } else ser.writeValue(values[0])
      }
      ser.writeUint32(1)
      const body = ser.releaseBuffer()
      const length = Buffer.alloc(4)
      length.writeUInt32LE(body.byteLength)
      return Buffer.concat([length, body])
    }
    const header = Buffer.from(`${JSON.stringify({ stepline: 'journal-log', generation: 'g4', format: 'v8' })}\n`)
    const first = record([[0, 0, insert], [2, ['r1', 'wf', 'h', 'running', 1, 1]]])
    const second = record([[2, ['r2', 'wf', 'h', 'running', 1, 2]], [2, ['r3', 'wf', 'h', 'running', 1, 3]]])
    const torn = record([[2, ['r4', 'wf', 'h', 'running', 1, 4]]])
    for (const tail of [torn.subarray(0, torn.length - 3), Buffer.alloc(64)]) {
      // The thread had applied the first record (and recorded so): r1 must not come back.
      const log = Buffer.concat([header, first, second, tail])
      expect(recoverDeadLog(file(), log, { generation: 'g4', offset: header.length + first.length })).toEqual(['r2', 'r3'])
    }
  })

  it('a log that cannot be applied stops the store from opening, naming the log and the way out', () => {
    const path = file()
    sqliteStore({ path }).close()
    const dead = spawnSync(process.execPath, ['-e', '']).pid!
    const name = `${path}-log-${dead}-0badf00d`
    writeFileSync(name, `${JSON.stringify({ stepline: 'journal-log', generation: 'g3' })}\nnot json\n`)
    expect(() => sqliteStore({ path })).toThrow(
      expect.objectContaining({ code: 'STORE_UNAVAILABLE', message: expect.stringMatching(new RegExp(`journal log ${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, left by process ${dead}, cannot be applied: .*move it away`)) }),
    )
    expect(logsOf(path)).toEqual([basename(name)])
  })

  it("a live process's log is left to it", async () => {
    const path = file()
    sqliteStore({ path }).close()
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'])
    try {
      const name = `${path}-log-${child.pid}-cafebabe`
      writeFileSync(name, `${JSON.stringify({ stepline: 'journal-log', generation: 'g2' })}\n${JSON.stringify(['S', 0, 'DELETE FROM runs'])}\n${JSON.stringify([0])}\n`)
      sqliteStore({ path }).close()
      expect(logsOf(path)).toEqual([basename(name)])
    } finally {
      child.kill()
    }
  })

  it('a thread that fails right after catchUp does not cost a turn its answers: transitions and events still commit on the tables and say whether they changed a row', async () => {
    const path = file()
    const store = make(path)
    await fill(store, 0, 100)
    expect(logsOf(path)).toHaveLength(1)
    const working = Object.getOwnPropertyDescriptor(JournalLog.prototype, 'working')!.get!
    const catchUp = JournalLog.prototype.catchUp
    let failed = false
    vi.spyOn(JournalLog.prototype, 'working', 'get').mockImplementation(function (this: JournalLog) {
      return !failed && working.call(this)
    })
    vi.spyOn(JournalLog.prototype, 'catchUp').mockImplementation(function (this: JournalLog, db) {
      const done = catchUp.call(this, db)
      failed = true // the thread fails the moment after
      return done
    })
    try {
      const moved = store.transitionRun('r0', ['running'], 'completed')
      const stored = store.putEvent({ runId: 'r1', name: 'go', data: 1, sentAt: 5 })
      expect(await moved).toBe(true)
      expect(await stored).toBe(true)
    } finally {
      vi.restoreAllMocks()
    }
    expect(store.getRun('r0')?.status).toBe('completed')
    expect(store.getEvent('r1', 'go')).toMatchObject({ data: 1 })
  })

  it('when the thread cannot open the file, the store applies the log itself and writes inline from then on', async () => {
    const path = file()
    const store = make(path)
    await fill(store, 0, 10)
    // Deleted under the open store: its connection still writes; the thread (started at 100 commits) cannot open it.
    rmSync(path)
    await fill(store, 10, 60)
    await new Promise((r) => setTimeout(r, 300))
    await fill(store, 70, 30)
    expect(store.listRuns({ limit: 1000 })).toHaveLength(100)
    expect(store.getSteps('r99').map((s) => s.key)).toEqual(['a'])
    expect(logsOf(path)).toEqual([])
  })

  it('a log neither its thread nor the store can apply yet (another process holds the lock) is kept and applied first: calls fail with STORE_UNAVAILABLE meanwhile, and no write overtakes it', async () => {
    const path = file()
    const store = make(path, { busyTimeoutMs: 50 })
    await fill(store, 0, 60) // 120 commits: the log is on
    expect(logsOf(path)).toHaveLength(1)
    const locker = new Database(path)
    locker.exec('BEGIN IMMEDIATE')
    let third: string | undefined
    try {
      // Durable once in the log, but neither the thread nor the store can apply it while the lock is held.
      await store.updateRun('r0', { status: 'sleeping', wakeAt: 5 })
      expect(() => store.getRun('r0')).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE', message: expect.stringContaining('is locked by another process') }))
      expect(() => store.getRun('r0')).toThrow(expect.objectContaining({ code: 'STORE_UNAVAILABLE' }))
      // Logged after the first while the thread lives (it waits for the lock too); refused once it
      // gave up, since the store must then apply the log itself before writing anything.
      third = await Promise.resolve(store.updateRun('r0', { status: 'running' })).then(() => 'logged', (e: { code?: string }) => e.code)
      expect(['logged', 'STORE_UNAVAILABLE']).toContain(third)
    } finally {
      locker.exec('ROLLBACK')
      locker.close()
    }
    // The logged writes are applied, in order, before anything else reads or writes the tables.
    expect(store.getRun('r0')).toMatchObject({ status: third === 'logged' ? 'running' : 'sleeping', wakeAt: 5 })
    await store.updateRun('r0', { status: 'completed', endedAt: 9, wakeAt: undefined })
    store.close()
    expect(logsOf(path)).toEqual([])
    // Reopened, the file holds the last write, not the logged one applied over it.
    expect(make(path).getRun('r0')).toMatchObject({ status: 'completed', endedAt: 9 })
  })

  it.skipIf(process.platform !== 'linux')('a log whose pid now belongs to another live process is recovered (Linux: the start time tells them apart)', () => {
    const path = file()
    sqliteStore({ path }).close()
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 20000)'])
    try {
      const started = readFileSync(`/proc/${child.pid}/stat`, 'utf8')
      const start = Number(started.slice(started.lastIndexOf(')') + 2).split(' ')[19])
      const log = (generation: string): string =>
        `${JSON.stringify({ stepline: 'journal-log', generation })}\n${JSON.stringify(['S', 0, 'INSERT INTO cache (key, value) VALUES (?, ?)'])}\n${JSON.stringify([0, generation, '1'])}\n`
      // The pid's process started after the log's writer: the writer is gone.
      writeFileSync(`${path}-log-${child.pid}-${start - 1}-0ddba11`, log('reused'))
      // The very process that wrote it: left to it.
      const own = `${path}-log-${child.pid}-${start}-cafebabe`
      writeFileSync(own, log('own'))
      const store = sqliteStore({ path })
      try {
        expect(store.getCache('reused', 0)).toEqual({ value: 1 })
        expect(store.getCache('own', 0)).toBeUndefined()
      } finally {
        store.close()
      }
      expect(logsOf(path)).toEqual([basename(own)])
    } finally {
      child.kill()
    }
  })

  it("two processes opening the file at once apply a dead process's log once", async () => {
    const path = file()
    sqliteStore({ path }).close()
    const dead = spawnSync(process.execPath, ['-e', '']).pid!
    // Not idempotent, so that a second application shows: n is 0 once applied, 1 if applied twice.
    const bump = "INSERT INTO cache (key, value) VALUES ('n', 0) ON CONFLICT (key) DO UPDATE SET value = value + 1"
    writeFileSync(`${path}-log-${dead}-0c0ffee0`, `${JSON.stringify({ stepline: 'journal-log', generation: 'g5' })}\n${JSON.stringify(['S', 0, bump])}\n${JSON.stringify([0])}\n`)
    // Both read the log, then wait for the lock this test holds, as two processes starting together would.
    const locker = new Database(path)
    locker.exec('BEGIN IMMEDIATE')
    const opener = `
      const { default: Database } = await import('better-sqlite3')
      const { recoverLogs } = await import(${JSON.stringify(new URL('./journal-log.ts', import.meta.url).pathname)})
      const db = new Database(${JSON.stringify(path)})
      db.pragma('busy_timeout = 20000')
      console.log('ready')
      try {
        recoverLogs(db, ${JSON.stringify(path)})
        console.log('ok')
      } catch (e) {
        console.log('failed', e.code, e.message)
      }
      db.close()`
    const children = [0, 1].map(() => {
      // Against the sources, as vitest runs them: tsx maps @stepline/core through the root tsconfig's paths.
      const env = { ...process.env, TSX_TSCONFIG_PATH: new URL('../../../tsconfig.json', import.meta.url).pathname }
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', opener], { cwd: dirname(new URL(import.meta.url).pathname), env })
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d))
      child.stderr.on('data', (d: Buffer) => (out += d))
      const done = new Promise<string>((resolve) => child.once('exit', () => resolve(out.trim())))
      return { ready: () => out.includes('ready'), done }
    })
    try {
      const deadline = Date.now() + 20_000
      while (!children.every((c) => c.ready()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
      await new Promise((r) => setTimeout(r, 300)) // past readdir and read: both wait for the lock now
    } finally {
      locker.exec('ROLLBACK')
      locker.close()
    }
    expect(await Promise.all(children.map((c) => c.done))).toEqual(['ready\nok', 'ready\nok'])
    expect(count(path, "cache WHERE key = 'n' AND value = 0")).toBe(1)
    expect(logsOf(path)).toEqual([])
    expect(count(path, 'log_applied')).toBe(0)
  }, 30_000)

  it('two stores of one process on one file keep a log each', async () => {
    const path = file()
    const a = make(path)
    const b = make(path)
    await Promise.all([fill(a, 0, 120), fill(b, 1000, 120)])
    expect(logsOf(path)).toHaveLength(2)
    expect(a.getRun('r119')).toBeDefined()
    expect(b.getRun('r1119')).toBeDefined()
    a.close()
    b.close()
    expect(logsOf(path)).toEqual([])
    expect(count(path, 'runs')).toBe(240)
  })

  it.skipIf(process.platform !== 'linux')('its thread runs below the event loop\'s CPU priority (Linux: nice +10)', async () => {
    const niceOf = (task: string): number => {
      const stat = readFileSync(`/proc/self/task/${task}/stat`, 'utf8')
      // Fields after the command name (which may hold spaces): nice is field 19, the 17th after ')'.
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])
    }
    // Threads of this process that came after `before` (one may end while it is read).
    const niceOfNew = (before: Set<string>): number[] =>
      readdirSync('/proc/self/task')
        .filter((t) => !before.has(t))
        .flatMap((t) => {
          try {
            return [niceOf(t)]
          } catch {
            return []
          }
        })
    const tasks = (): string[] => readdirSync('/proc/self/task')
    const before = new Set(tasks())
    const path = file()
    const store = make(path)
    await fill(store, 0, 120) // past 100 commits: the log and its thread start
    expect(logsOf(path)).toHaveLength(1)
    const main = niceOf(String(process.pid))
    // The thread lowers its priority first thing, once it runs.
    let seen: number[] = []
    for (let i = 0; i < 100 && !seen.includes(Math.min(19, main + 10)); i++) {
      await new Promise((r) => setTimeout(r, 20))
      seen = niceOfNew(before)
    }
    expect(seen).toContain(Math.min(19, main + 10))
    store.close()
  })

  it('refuses an unknown `writes`', () => {
    expect(() => sqliteStore({ path: file(), writes: 'thread' as never })).toThrow(
      expect.objectContaining({ code: 'OPTIONS_INVALID', message: expect.stringContaining("expected `writes` as 'inline' or 'log', got 'thread'") }),
    )
  })
})

describe('JournalLog', () => {
  /** Polls a connection of its own until `table` has `n` rows (the thread applied them), or 5 s pass. */
  async function rowsBecome(path: string, n: number): Promise<number> {
    const end = Date.now() + 5000
    let seen = count(path, 'cache')
    while (seen !== n && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10))
      seen = count(path, 'cache')
    }
    return seen
  }

  it('catchUp applies on the store\'s connection what the thread has not; the thread goes on with the statements those records declared', async () => {
    const path = file()
    sqliteStore({ path }).close()
    const db = new Database(path)
    const log = new JournalLog(path, { synchronous: 'normal', busyTimeoutMs: 5000 })
    for (let round = 0; round < 50; round++) {
      // A statement new to the log: its record declares it, and catchUp (right after) most often applies it here.
      const stmt = db.prepare(`INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?) -- round ${round}`)
      log.append([{ stmt, params: [`a${round}`, '1', null] }])
      expect(log.catchUp(db)).toBe(true)
      expect((db.prepare('SELECT count(*) AS n FROM cache').get() as { n: number }).n).toBe(round * 2 + 1)
      // Without its declaration: only a thread that read the statement from the record above can apply it.
      log.append([{ stmt, params: [`b${round}`, '1', null] }])
    }
    expect(await rowsBecome(path, 100)).toBe(100)
    expect(log.working).toBe(true)
    log.close(db)
    expect(logsOf(path)).toEqual([])
    db.close()
  })

  for (const who of ['thread', 'store (catchUp)'] as const) {
    it(`a logged write the tables refuse (a step of a run not in the file) is skipped when the ${who} applies it; the writes around it are applied and the log goes on`, async () => {
      const path = file()
      sqliteStore({ path }).close()
      const db = new Database(path)
      db.pragma('foreign_keys = ON')
      const quiet = vi.spyOn(console, 'error').mockImplementation(() => undefined)
      const log = new JournalLog(path, { synchronous: 'normal', busyTimeoutMs: 5000 })
      try {
        const cache = db.prepare('INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?)')
        const orphan = db.prepare(`INSERT INTO steps (run_id, key, node_id, name, kind, status, attempts, started_at, ended_at, duration_ms) VALUES (?, 'n0', 'n0', 'x', 'step', 'completed', 1, 0, 0, 0)`)
        log.append([{ stmt: cache, params: ['before', '1', null] }, { stmt: orphan, params: ['no-such-run'] }, { stmt: cache, params: ['after', '1', null] }])
        if (who === 'thread') expect(await rowsBecome(path, 2)).toBe(2)
        else expect(log.catchUp(db)).toBe(true)
        log.append([{ stmt: cache, params: ['later', '1', null] }])
        expect(log.catchUp(db)).toBe(true)
        expect(log.working).toBe(true)
        expect(db.prepare('SELECT key FROM cache ORDER BY key').pluck().all()).toEqual(['after', 'before', 'later'])
        expect(db.prepare('SELECT count(*) FROM steps').pluck().get()).toBe(0)
        log.close(db)
      } finally {
        quiet.mockRestore()
        db.close()
      }
    })
  }

  it('recovering a dead process\'s log skips a write the tables refuse, says so on stderr, and applies the rest', () => {
    const path = file()
    sqliteStore({ path }).close()
    const dead = spawnSync(process.execPath, ['-e', '']).pid!
    const cache = 'INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?)'
    const orphan = `INSERT INTO steps (run_id, key, node_id, name, kind, status, attempts, started_at, ended_at, duration_ms) VALUES (?, 'n0', 'n0', 'x', 'step', 'completed', 1, 0, 0, 0)`
    const lines = [{ stepline: 'journal-log', generation: 'g9' }, ['S', 0, cache], ['S', 1, orphan], [0, 'before', '1', null], [1, 'no-such-run'], [0, 'after', '1', null]]
    writeFileSync(`${path}-log-${dead}-0badf00d`, `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`)
    const said = vi.spyOn(console, 'error').mockImplementation(() => undefined)
    try {
      sqliteStore({ path }).close()
      expect(said).toHaveBeenCalledWith(expect.stringMatching(/a journal write the tables refuse was skipped \(SQLITE_CONSTRAINT_FOREIGNKEY/))
    } finally {
      said.mockRestore()
    }
    const db = new Database(path, { readonly: true })
    expect(db.prepare('SELECT key FROM cache ORDER BY key').pluck().all()).toEqual(['after', 'before'])
    db.close()
    expect(logsOf(path)).toEqual([])
  })

  it('catchUp between rotations: every write applied once, the thread following each generation', async () => {
    const path = file()
    sqliteStore({ path }).close()
    const db = new Database(path)
    const log = new JournalLog(path, { synchronous: 'normal', busyTimeoutMs: 5000, rotateAtBytes: 4096 })
    const stmt = db.prepare('INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?)')
    for (let batch = 0; batch < 200; batch++) {
      log.append(Array.from({ length: 10 }, (_, i) => ({ stmt, params: [`k${batch}-${i}`, JSON.stringify('x'.repeat(50)), null] })))
      if (batch % 3 === 0) expect(log.catchUp(db)).toBe(true)
    }
    expect(await rowsBecome(path, 2000)).toBe(2000)
    expect(log.working).toBe(true)
    log.close(db)
    expect((db.prepare('SELECT count(*) AS n FROM log_applied').get() as { n: number }).n).toBe(0)
    db.close()
  })

  it('empties the file once applied when it passes its size, and the thread follows into the new generation', () => {
    const path = file()
    const store = sqliteStore({ path })
    store.close()
    const db = new Database(path)
    const log = new JournalLog(path, { synchronous: 'normal', busyTimeoutMs: 5000, rotateAtBytes: 4096 })
    const stmt = { source: 'INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?)' }
    let largest = 0
    for (let batch = 0; batch < 200; batch++) {
      log.append(Array.from({ length: 10 }, (_, i) => ({ stmt, params: [`k${batch}-${i}`, JSON.stringify('x'.repeat(50)), null] })))
      largest = Math.max(largest, statSync(log.file).size)
    }
    expect(log.drain()).toBe(true)
    expect(largest).toBeLessThan(4096 + 2048)
    expect((db.prepare('SELECT count(*) AS n FROM cache').get() as { n: number }).n).toBe(2000)
    log.close(db)
    expect(logsOf(path)).toEqual([])
    expect((db.prepare('SELECT count(*) AS n FROM log_applied').get() as { n: number }).n).toBe(0)
    db.close()
  })
})

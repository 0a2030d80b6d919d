import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { Serializer } from 'node:v8'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
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
    expect(store.transitionRun('r199', ['completed'], 'failed')).toBe(true)
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

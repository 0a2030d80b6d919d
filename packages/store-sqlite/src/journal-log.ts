import { randomUUID } from 'node:crypto'
import { closeSync, existsSync, fdatasyncSync, ftruncateSync, openSync, readdirSync, readFileSync, readSync, rmSync, writevSync } from 'node:fs'
import { basename, dirname, join } from 'node:path'
import { Deserializer, Serializer } from 'node:v8'
import { Worker } from 'node:worker_threads'
import type Database from 'better-sqlite3'
import { SteplineError } from '@stepline/core'

const workerFile = new URL('./journal-log-worker.mjs', import.meta.url)

/** A log past this size is emptied (once the thread applied it) at the next commit. */
const ROTATE_AT_BYTES = 16 * 1024 * 1024

// Int32 slots shared with the thread (journal-log-worker.mjs uses the same numbers).
const WRITTEN = 0 // bytes of the log the store wrote
const APPLIED = 1 // bytes of the log the thread applied to the database
const STOP = 2 // 1: the store asks the thread to stop once it applied everything
const STOPPED = 3 // 1: the thread closed its connection (or never opened one)
const FAILED = 4 // 1: the thread could not apply the log: the store applies the rest itself
const GENERATION = 5 // bumped on each rotation: the thread reads the new header
const LOCK = 6 // who applies the log now: 0 nobody, 1 the thread, 2 the store (`catchUp`, a rotation)

// Entries of a record (journal-log-worker.mjs reads them with the same numbers): DECLARE, then the
// statement's id and SQL, before a statement's first use in a generation; a write is its
// statement's id + WRITE_BASE, then its parameters; END closes the record.
const DECLARE = 0
const END = 1
const WRITE_BASE = 2

/** A write as the store queues it: a prepared statement (its SQL) and its positional parameters. */
export interface LoggedWrite {
  stmt: { readonly source: string }
  params: readonly unknown[]
}

/**
 * Logs this process has open: a log named with this pid but not here is from an earlier life.
 * One set per process, not per copy of this module: a second copy (the CJS build beside the ESM
 * one, another installed version) must not take this copy's live logs for an earlier life's.
 */
const openLogs: Set<string> = ((globalThis as Record<symbol, Set<string> | undefined>)[Symbol.for('@stepline/store-sqlite:open-logs')] ??= new Set())

/** When this process started (Linux), in a log's name: its pid alone may belong to another process by the time a store looks. */
const ownStart = procStat(process.pid)?.start

/**
 * The journal log (`sqliteStore({ writes: 'log' })`): a file beside the database to which the
 * store appends each group commit's writes as one record, one `write()` per commit, and a thread
 * of its own that applies them to the database in the same order, one transaction per batch,
 * recording in that transaction how far it got (table `log_applied`). The commit is durable once
 * the `write()` returns: like a WAL commit with `synchronous = NORMAL` it survives a crash of the
 * process, not of the machine (`synchronous: 'full'` syncs the log as well). The event loop pays
 * one system call per commit instead of SQLite's b-tree and WAL work. What the thread had not
 * applied when the process died is applied by the next store that opens the file (`recoverLogs`).
 *
 * The file, `<db>-log-<pid>-<start>-<id>` (`<start>`, the process's start time, on Linux only): a header line `{"stepline":"journal-log","generation":…,"format":"v8"}`,
 * then one record per commit: its length (4 bytes, little-endian) and its entries in V8's
 * serialization format (`node:v8`, whose format newer versions still read): statements, each
 * declared before its first use, and writes with their parameters. V8's serializer costs less
 * than half of JSON for these rows (strings are copied, not escaped; numbers are not printed),
 * and the event loop pays it on every commit. Logs of earlier versions, JSON lines, are still
 * recovered (`recoverLogs`).
 */
export class JournalLog {
  readonly file: string
  readonly #fd: number
  readonly #flag: Int32Array
  readonly #fsync: boolean
  readonly #rotateAt: number
  /** Generations of this log whose marks go when it closes (a rotation leaves one behind). */
  readonly #generations: string[] = []
  #written = 0
  #generation = ''
  /** Ids of the statements this generation of the log has declared (a DECLARE entry each). */
  readonly #ids = new Map<object, number>()
  /** The same statements by id: what `catchUp` runs, on the store's connection. */
  readonly #byId: Database.Statement[] = []
  #setMark: Database.Statement | undefined
  /** Set once `close` stopped the thread: whether it had applied everything (else the store applies the rest). */
  #drained: boolean | undefined

  constructor(dbPath: string, options: { synchronous: 'normal' | 'full'; busyTimeoutMs: number; rotateAtBytes?: number }) {
    // The pid (and start time) say whether its writer is alive; the rest tells apart stores of one process on one file.
    this.file = `${dbPath}-log-${process.pid}${ownStart === undefined ? '' : `-${ownStart}`}-${randomUUID().slice(0, 8)}`
    this.#fsync = options.synchronous === 'full'
    this.#rotateAt = options.rotateAtBytes ?? ROTATE_AT_BYTES
    // Read back too: `catchUp` applies records here when the store needs the tables at once.
    this.#fd = openSync(this.file, 'wx+')
    openLogs.add(this.file)
    this.#flag = new Int32Array(new SharedArrayBuffer(8 * 4))
    this.#startGeneration()
    Atomics.store(this.#flag, APPLIED, this.#written)
    Atomics.store(this.#flag, WRITTEN, this.#written)
    const worker = new Worker(workerFile, {
      workerData: { dbPath, logPath: this.file, state: this.#flag.buffer, synchronous: options.synchronous, busyTimeoutMs: options.busyTimeoutMs },
    })
    // The thread only applies what the store wrote: it must not keep the process alive.
    worker.unref()
    const failed = (): void => {
      Atomics.store(this.#flag, FAILED, 1)
      Atomics.store(this.#flag, STOPPED, 1)
      Atomics.notify(this.#flag, APPLIED)
      Atomics.notify(this.#flag, STOPPED)
    }
    worker.once('error', failed)
    worker.once('exit', (code) => code !== 0 && failed())
  }

  /** False once the thread failed (or `close` stopped it): the store must `close` the log, which applies the rest. */
  get working(): boolean {
    return this.#drained === undefined && Atomics.load(this.#flag, FAILED) === 0
  }

  /** Appends one commit's writes: durable on return. Throws what the file system reports (disk full). */
  append(writes: readonly LoggedWrite[]): void {
    const known = this.#byId.length
    try {
      const entries = new Serializer()
      entries.writeHeader()
      for (const w of writes) {
        // By the statement itself: its `source` is a new string from better-sqlite3 on every read.
        let id = this.#ids.get(w.stmt)
        if (id === undefined) {
          id = this.#ids.size
          this.#ids.set(w.stmt, id)
          this.#byId.push(w.stmt as Database.Statement)
          entries.writeUint32(DECLARE)
          entries.writeUint32(id)
          entries.writeValue(w.stmt.source)
        }
        entries.writeUint32(id + WRITE_BASE)
        entries.writeValue(w.params)
      }
      entries.writeUint32(END)
      const body = entries.releaseBuffer()
      const length = Buffer.allocUnsafe(4)
      length.writeUInt32LE(body.byteLength)
      this.#write([length, body])
    } catch (e) {
      // The record is not in the file, nor are its declarations: the next record to use these statements declares them.
      for (const stmt of this.#byId.splice(known)) this.#ids.delete(stmt)
      throw e
    }
    Atomics.store(this.#flag, WRITTEN, this.#written)
    Atomics.notify(this.#flag, WRITTEN)
    if (this.#written >= this.#rotateAt && this.drain()) {
      try {
        this.#rotate()
      } catch {
        // The record is durable (and applied): this append succeeded. A log that could not be
        // emptied and started again (the new header refused by a full disk) is left for good.
        this.#retire()
      }
    }
  }

  /**
   * Stops using a log whose every record is applied: the thread stops, and `working` turns false,
   * so that the store closes the log (dropping the file) and commits inline from then on.
   */
  #retire(): void {
    this.#stop(5000)
    closeSync(this.#fd)
    this.#drained = true
  }

  /**
   * Waits until the thread applied everything written, so that the database shows it (blocking,
   * as SQLite's own busy wait does; at most one batch under load). False when the thread failed.
   */
  drain(): boolean {
    for (;;) {
      if (!this.working) return false
      const applied = Atomics.load(this.#flag, APPLIED)
      if (applied >= this.#written) return true
      Atomics.wait(this.#flag, APPLIED, applied, 100)
    }
  }

  /**
   * Makes the tables show everything written, as `drain` does, but without waiting for the thread
   * to wake up and get the CPU: when the thread is not applying at that moment, the store applies
   * the rest itself, on its own connection `db` (the records are read back from the file), in one
   * transaction that moves the mark as the thread's do. A store that reads (a run, its journal)
   * or answers from the file (an event, a transition) between writes, as `engine.send` does,
   * would otherwise wait for a thread wake-up and a transaction of its own on every call. Should
   * that apply fail, it waits for the thread instead, unless another connection held the lock
   * past the busy timeout: then it throws SQLite's error. False when the thread failed.
   */
  catchUp(db: Database.Database): boolean {
    let tried = false
    for (;;) {
      if (!this.working) return false
      const applied = Atomics.load(this.#flag, APPLIED)
      if (applied >= this.#written) return true
      if (!tried && Atomics.compareExchange(this.#flag, LOCK, 0, 2) === 0) {
        tried = true
        try {
          // Read again under the lock: the thread may have applied more meanwhile.
          const from = Atomics.load(this.#flag, APPLIED)
          if (from < this.#written) {
            this.#applyHere(db, from, this.#written)
            Atomics.store(this.#flag, APPLIED, this.#written)
            Atomics.notify(this.#flag, APPLIED)
          }
        } catch (e) {
          // Another connection holds the lock past the busy timeout: the thread would wait as long
          // again, for the same lock. The caller fails now; the next call tries again.
          if (locked(e)) throw e
          // The thread applies it (or fails, and `close` applies it): wait as `drain` does.
        } finally {
          Atomics.store(this.#flag, LOCK, 0)
          Atomics.notify(this.#flag, LOCK)
        }
        continue
      }
      Atomics.wait(this.#flag, APPLIED, applied, 100)
    }
  }

  /** Applies the records between offsets `from` and `to` on `db`, with the mark, in one transaction. */
  #applyHere(db: Database.Database, from: number, to: number): void {
    const bytes = Buffer.allocUnsafe(to - from)
    if (readSync(this.#fd, bytes, 0, bytes.length, from) !== bytes.length) throw new Error(`short read of ${this.file}`)
    this.#setMark ??= db.prepare('INSERT INTO log_applied (log, offset) VALUES (?, ?) ON CONFLICT (log) DO UPDATE SET offset = excluded.offset')
    const setMark = this.#setMark
    const statements = this.#byId
    db.transaction(() => {
      for (const { body } of records(bytes, 0)) readRecord(body, () => undefined, (id, params) => runWrite(statements[id]!, params, this.file))
      setMark.run(this.#generation, to)
    }).immediate()
  }

  /**
   * Stops the thread once it applied everything and waits (up to `timeoutMs`) for it to close its
   * connection, so that the store's close is the last one and folds the WAL in; then the log goes,
   * all of it in the database. After the thread failed, this applies what it had not on `db`
   * (the store's connection) first. Throws what SQLite reports (a lock held past the busy
   * timeout, a full disk) with the log intact: the store calls it again before it touches the
   * tables, so that no write overtakes the log's.
   */
  close(db: Database.Database, timeoutMs = 5000): void {
    if (this.#drained === undefined) {
      const drained = this.drain()
      this.#stop(timeoutMs)
      closeSync(this.#fd)
      this.#drained = drained
    }
    if (!this.#drained) {
      applyLog(db, readFileSync(this.file))
      this.#drained = true
    }
    const drop = db.prepare('DELETE FROM log_applied WHERE log = ?')
    for (const generation of this.#generations) drop.run(generation)
    // Until here the log is this store's: another store of this process must not recover it.
    openLogs.delete(this.file)
    // Everything in it is applied: a log someone removed meanwhile loses nothing.
    rmSync(this.file, { force: true })
  }

  #stop(timeoutMs: number): void {
    Atomics.store(this.#flag, STOP, 1)
    Atomics.notify(this.#flag, WRITTEN)
    const end = Date.now() + timeoutMs
    while (Atomics.load(this.#flag, STOPPED) === 0 && Date.now() < end) Atomics.wait(this.#flag, STOPPED, 0, 50)
  }

  /**
   * Everything is applied: empty the file and start a new generation, which the thread follows.
   * Should the new header not be written, the file is left empty (nothing in it mattered any
   * more) and the thread still on the old generation, with positions that no write moves again.
   */
  #rotate(): void {
    // Under the lock: the thread must not read the file (for the statements a `catchUp` applied) as it is emptied.
    while (Atomics.compareExchange(this.#flag, LOCK, 0, 2) !== 0) Atomics.wait(this.#flag, LOCK, 1, 100)
    try {
      ftruncateSync(this.#fd, 0)
      this.#written = 0
      this.#ids.clear()
      this.#byId.length = 0
      this.#startGeneration()
      // Order matters to the thread: positions first, then the generation it re-reads the header on.
      Atomics.store(this.#flag, APPLIED, this.#written)
      Atomics.store(this.#flag, WRITTEN, this.#written)
      Atomics.add(this.#flag, GENERATION, 1)
    } finally {
      Atomics.store(this.#flag, LOCK, 0)
      Atomics.notify(this.#flag, LOCK)
    }
    Atomics.notify(this.#flag, WRITTEN)
  }

  #startGeneration(): void {
    this.#generation = randomUUID()
    this.#generations.push(this.#generation)
    this.#write([Buffer.from(`${JSON.stringify({ stepline: 'journal-log', generation: this.#generation, format: 'v8' })}\n`)])
  }

  #write(chunks: Buffer[]): void {
    // Positional: after a rotation the next record goes at the start of the emptied file.
    const wrote = writevSync(this.#fd, chunks, this.#written)
    const expected = chunks.reduce((n, c) => n + c.byteLength, 0)
    if (wrote !== expected) {
      // A torn record must not stay in front of the next one: the file ends where it ended.
      ftruncateSync(this.#fd, this.#written)
      throw Object.assign(new Error(`wrote ${wrote} of ${expected} bytes to ${this.file}`), { code: 'ENOSPC' })
    }
    this.#written += wrote
    if (this.#fsync) fdatasyncSync(this.#fd)
  }
}

/**
 * Applies what the journal logs beside `dbPath` hold and the database does not (each from its
 * `log_applied` mark), then removes them: logs of processes that are gone, and this process's
 * own from an earlier life (a container restarts with the same pid). A live process's log is its
 * own to apply. A torn last record (the process died inside the write) was never acknowledged.
 */
export function recoverLogs(db: Database.Database, dbPath: string): void {
  const prefix = `${basename(dbPath)}-log-`
  let names: string[]
  try {
    names = readdirSync(dirname(dbPath)).filter((n) => n.startsWith(prefix))
  } catch {
    return
  }
  for (const name of names) {
    const parts = name.slice(prefix.length).split('-')
    const pid = Number(parts[0])
    // `<pid>-<id>` from other systems and earlier versions; `<pid>-<start>-<id>` on Linux.
    const start = parts.length === 3 ? Number(parts[1]) : undefined
    const file = join(dirname(dbPath), name)
    if (!Number.isInteger(pid) || openLogs.has(file) || (pid !== process.pid && alive(pid, start))) continue
    let generation: string | undefined
    try {
      generation = applyLog(db, readFileSync(file), file)
    } catch (e) {
      // Another process that opened the file at the same moment recovered it first.
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue
      // The log is sound, the file cannot take it now (a lock held past the busy timeout, a full
      // disk): the store's error says so and what to do. Moving the log away would lose its writes.
      if (cannotWriteNow(e)) throw e
      throw new SteplineError(
        'STORE_UNAVAILABLE',
        `SQLite store ${dbPath}: the journal log ${file}, left by process ${pid}, cannot be applied: ${(e as Error).message}. Restore the log from a backup, or move it away to open the store without its writes.`,
        { cause: e },
      )
    }
    rmSync(file, { force: true })
    // Only once the log is gone: until then its mark says it was applied, to a process that read it and waited for the lock.
    if (generation !== undefined) db.prepare('DELETE FROM log_applied WHERE log = ?').run(generation)
  }
}

/** SQLite's answer when another connection held the write lock past the busy timeout. */
function locked(e: unknown): boolean {
  const code = (e as { code?: unknown }).code
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED'))
}

/** An error of the file, not of the log: SQLite's lock, disk and permission codes, and the file system's. */
function cannotWriteNow(e: unknown): boolean {
  const code = (e as { code?: unknown }).code
  return typeof code === 'string' && /^(SQLITE_(BUSY|LOCKED|FULL|IOERR|READONLY|CANTOPEN|PERM)|ENOSPC$|EIO$|EACCES$|EPERM$|EROFS$)/.test(code)
}

/** Whether the process that wrote a log runs: its pid does, is not a zombie, and (when the log's name says) started when it did. */
function alive(pid: number, start: number | undefined): boolean {
  try {
    process.kill(pid, 0)
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  const stat = procStat(pid)
  if (stat === undefined) return true
  // Killed, its parent not yet told (a zombie): the pid still answers, but nothing writes the log.
  if (stat.state === 'Z' || stat.state === 'X') return false
  // A pid taken by a process that started later (a container's next life, a sidecar): the writer is gone.
  return start === undefined || stat.start === undefined || stat.start === start
}

/**
 * The state and start time of process `pid` (fields 3 and 22 of /proc/<pid>/stat; the start in
 * clock ticks after boot); undefined off Linux.
 */
function procStat(pid: number): { state: string; start: number | undefined } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after the command name (which may hold spaces and parentheses) start at field 3.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const start = Number(fields[19])
    return { state: fields[0]!, start: Number.isInteger(start) ? start : undefined }
  } catch {
    return undefined
  }
}

/**
 * Applies the writes of a log past its mark in one transaction, which moves the mark to the log's
 * end; the caller drops the mark once the log is gone. Returns the log's generation. With `file`
 * (recovery), a log another process applied while this one waited for the lock is left alone.
 */
function applyLog(db: Database.Database, bytes: Buffer, file?: string): string | undefined {
  const headerEnd = bytes.indexOf(10)
  if (headerEnd < 0) return undefined
  const { generation, format } = JSON.parse(bytes.toString('utf8', 0, headerEnd)) as { generation: string; format?: string }
  db.transaction(() => {
    if (file !== undefined && !existsSync(file)) return
    const mark = (db.prepare('SELECT offset FROM log_applied WHERE log = ?').pluck().get(generation) as number | undefined) ?? 0
    const statements: Database.Statement[] = []
    // Statements are declared once per generation: those before the mark are prepared too.
    const declare = (id: number, sql: string): void => void (statements[id] = db.prepare(sql))
    if (format === 'v8') {
      for (const { at, body } of records(bytes, headerEnd + 1)) {
        readRecord(body, declare, (id, params) => at >= mark && runWrite(statements[id]!, params, file ?? 'a journal log'))
      }
    } else {
      // A log of an earlier version: JSON lines `["S",id,sql]` and `[id,…params]`.
      let at = headerEnd + 1
      for (let end = bytes.indexOf(10, at); end >= 0; at = end + 1, end = bytes.indexOf(10, at)) {
        const line = JSON.parse(bytes.toString('utf8', at, end)) as unknown[]
        if (line[0] === 'S') declare(line[1] as number, line[2] as string)
        else if (at >= mark) runWrite(statements[line[0] as number]!, line.slice(1), file ?? 'a journal log')
      }
    }
    db.prepare('INSERT INTO log_applied (log, offset) VALUES (?, ?) ON CONFLICT (log) DO UPDATE SET offset = excluded.offset').run(generation, bytes.length)
  }).immediate()
  return generation
}

/**
 * The whole records of a v8 log from `start`, each with its offset. A torn last record (the
 * process died inside the write, so it was never acknowledged) ends them, as does a zero length,
 * which no record has: a tail of zeros the file system left after a machine crash.
 */
function* records(bytes: Buffer, start: number): Generator<{ at: number; body: Buffer }> {
  for (let at = start; at + 4 <= bytes.length; ) {
    const length = bytes.readUInt32LE(at)
    if (length === 0 || at + 4 + length > bytes.length) return
    yield { at, body: bytes.subarray(at + 4, at + 4 + length) }
    at += 4 + length
  }
}

/**
 * Runs one logged write. One the tables refuse by a rule (a constraint: a step of a run that is
 * not in the file) can never be applied: it is skipped, and said on stderr, rather than stopping
 * every write after it, and every call of the store, for good (journal-log-worker.mjs does the same).
 */
function runWrite(stmt: Database.Statement, params: readonly unknown[], log: string): void {
  try {
    stmt.run(...params)
  } catch (e) {
    const code = (e as { code?: unknown }).code
    if (typeof code !== 'string' || !code.startsWith('SQLITE_CONSTRAINT')) throw e
    console.error(`stepline: ${log}: a journal write the tables refuse was skipped (${code}: ${(e as Error).message}): ${stmt.source.trim().slice(0, 80)}`)
  }
}

/** The entries of one record, in order. */
function readRecord(body: Buffer, declare: (id: number, sql: string) => void, write: (id: number, params: unknown[]) => void): void {
  const entries = new Deserializer(body)
  entries.readHeader()
  for (;;) {
    const tag = entries.readUint32()
    if (tag === END) return
    if (tag === DECLARE) declare(entries.readUint32(), entries.readValue() as string)
    else write(tag - WRITE_BASE, entries.readValue() as unknown[])
  }
}

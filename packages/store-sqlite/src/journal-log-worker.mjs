// The journal log's thread (see journal-log.ts): its own connection to the database; applies
// what the store appends to the log, in order, one transaction per batch, with the mark of how
// far it got, until the store stops it. Plain JavaScript, loaded as is from src/ (tests) and
// dist/ (copied by the build). Only ever started on a log its store writes: always format v8.
import { closeSync, openSync, readSync, readlinkSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'
import { Deserializer } from 'node:v8'
import { workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'

const { dbPath, logPath, state, synchronous, busyTimeoutMs } = workerData
const flag = new Int32Array(state)
const WRITTEN = 0
const APPLIED = 1
const STOP = 2
const STOPPED = 3
const FAILED = 4
const GENERATION = 5
const LOCK = 6 // who applies now: 0 nobody, 1 this thread, 2 the store (its catchUp, a rotation)
// Entries of a record (as journal-log.ts writes them).
const DECLARE = 0
const END = 1
const WRITE_BASE = 2

// Below the event loop's CPU priority (nice +10, Linux: a thread is a task of its own there): on a
// busy machine the request path comes first, this thread catches up when the CPU is free. Reads
// and a full log wait for it, so it never falls behind for long.
try {
  const tid = Number(readlinkSync('/proc/thread-self').split('/').pop())
  setPriority(tid, Math.min(19, getPriority(tid) + 10))
} catch {
  // Not Linux, or not allowed: same priority as the event loop.
}

let db
let fd
try {
  db = new Database(dbPath, { fileMustExist: true })
  db.pragma(`busy_timeout = ${busyTimeoutMs}`)
  db.pragma(`synchronous = ${synchronous.toUpperCase()}`)
  db.pragma('foreign_keys = ON')
  fd = openSync(logPath, 'r')
} catch {
  fail()
}

const setMark = db.prepare('INSERT INTO log_applied (log, offset) VALUES (?, ?) ON CONFLICT (log) DO UPDATE SET offset = excluded.offset')
const dropMark = db.prepare('DELETE FROM log_applied WHERE log = ?')
let statements = []
let generation = Atomics.load(flag, GENERATION)
let header = readHeader()
/** The generation before a rotation, whose mark goes with the next batch. */
let previous
let buffer = Buffer.alloc(1 << 20)

// `bytes` holds whole records: the store moves WRITTEN only past a record it wrote whole.
const apply = db.transaction((bytes, upTo) => {
  readRecords(bytes, (id, params) => runWrite(statements[id], params))
  setMark.run(header.generation, upTo)
  if (previous !== undefined) dropMark.run(previous)
}).immediate

// How far this thread has read the log: what it applied, and what the store applied (catchUp),
// read for the statements it declares. The store resets the log with a rotation, which this thread
// sees as a new generation. From the header, not from APPLIED: before this thread started, the store
// may have applied records whose statements it must learn.
let applied = header.length
try {
  for (;;) {
    const written = Atomics.load(flag, WRITTEN)
    // Read after WRITTEN: a rotation stores WRITTEN before GENERATION, so an appended WRITTEN of a new
    // generation always comes with the new GENERATION here.
    if (Atomics.load(flag, GENERATION) !== generation) {
      generation = Atomics.load(flag, GENERATION)
      previous = header.generation
      header = readHeader()
      statements = []
      applied = header.length
      continue
    }
    if (written <= applied) {
      if (Atomics.load(flag, STOP) === 1) break
      Atomics.wait(flag, WRITTEN, written, 100)
      continue
    }
    const holder = Atomics.compareExchange(flag, LOCK, 0, 1)
    if (holder !== 0) {
      // The store applies (catchUp) or empties the log (a rotation): after it, look again.
      Atomics.wait(flag, LOCK, holder, 100)
      continue
    }
    try {
      // A rotation may have come first: the loop's top handles it.
      if (Atomics.load(flag, GENERATION) !== generation) continue
      const shared = Atomics.load(flag, APPLIED)
      if (shared > applied) {
        // The store applied these records itself: only the statements they declare matter here.
        declareFrom(applied, shared)
        applied = shared
      }
      if (written > applied) {
        const size = written - applied
        if (buffer.length < size) buffer = Buffer.alloc(size * 2)
        readSync(fd, buffer, 0, size, applied)
        apply(buffer.subarray(0, size), written)
        previous = undefined
        applied = written
        Atomics.store(flag, APPLIED, written)
        Atomics.notify(flag, APPLIED)
      }
    } finally {
      Atomics.store(flag, LOCK, 0)
      Atomics.notify(flag, LOCK)
    }
  }
} catch {
  // A disk error, or a lock another process held past busyTimeoutMs: the store applies the rest.
  fail()
}
closeSync(fd)
db.close()
Atomics.store(flag, STOPPED, 1)
Atomics.notify(flag, STOPPED)

/** Prepares the statements that the records between two offsets declare, running none of their writes. */
function declareFrom(from, to) {
  const size = to - from
  if (buffer.length < size) buffer = Buffer.alloc(size * 2)
  readSync(fd, buffer, 0, size, from)
  readRecords(buffer.subarray(0, size), () => undefined)
}

/**
 * Runs one logged write. One the tables refuse by a rule (a constraint: a step of a run that is
 * not in the file) can never be applied: it is skipped, and said on stderr, rather than stopping
 * every write after it (journal-log.ts applies the same rule).
 */
function runWrite(stmt, params) {
  try {
    stmt.run(...params)
  } catch (e) {
    if (typeof e?.code !== 'string' || !e.code.startsWith('SQLITE_CONSTRAINT')) throw e
    console.error(`stepline: SQLite store ${dbPath}: a journal write the tables refuse was skipped (${e.code}: ${e.message}): ${stmt.source.trim().slice(0, 80)}`)
  }
}

/** Reads whole records: prepares the statements they declare, hands each write to `write`. */
function readRecords(bytes, write) {
  for (let at = 0; at < bytes.length; ) {
    const length = bytes.readUInt32LE(at)
    const entries = new Deserializer(bytes.subarray(at + 4, at + 4 + length))
    entries.readHeader()
    for (;;) {
      const tag = entries.readUint32()
      if (tag === END) break
      if (tag === DECLARE) statements[entries.readUint32()] = db.prepare(entries.readValue())
      else write(tag - WRITE_BASE, entries.readValue())
    }
    at += 4 + length
  }
}

function readHeader() {
  const probe = Buffer.alloc(256)
  const n = readSync(fd, probe, 0, probe.length, 0)
  const end = probe.subarray(0, n).indexOf(10)
  return { ...JSON.parse(probe.toString('utf8', 0, end)), length: end + 1 }
}

function fail() {
  try {
    if (fd !== undefined) closeSync(fd)
    db?.close()
  } finally {
    Atomics.store(flag, FAILED, 1)
    Atomics.store(flag, STOPPED, 1)
    Atomics.notify(flag, APPLIED)
    Atomics.notify(flag, STOPPED)
    process.exit(0)
  }
}

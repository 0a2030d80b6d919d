// The journal log when a write to it comes short (a full disk): node:fs is mocked here, so this file stands apart.
import { existsSync } from 'node:fs'
import Database from 'better-sqlite3'
import { describe, expect, it, vi } from 'vitest'
import { JournalLog } from './journal-log'
import { sqliteStore } from './sqlite-store'
import { tempStores } from './test-fixtures'

const disk = vi.hoisted(() => ({ full: false, fullAfter: -1 }))

vi.mock('node:fs', async (importOriginal) => {
  const fs = await importOriginal<typeof import('node:fs')>()
  // A full disk takes the first bytes of a write and no more.
  const writevSync = (fd: number, chunks: NodeJS.ArrayBufferView[], position?: number): number => {
    if (disk.fullAfter >= 0 && disk.fullAfter-- === 0) disk.full = true
    if (!disk.full) return fs.writevSync(fd, chunks, position)
    disk.full = false
    return fs.writevSync(fd, [Buffer.from(chunks[0]!.buffer, chunks[0]!.byteOffset, 2)], position)
  }
  return { ...fs, default: { ...fs, writevSync }, writevSync }
})

const { file } = tempStores('stepline-journal-log-full-')

describe('JournalLog on a full disk', () => {
  it('a record the disk refused declares nothing: the next record with its statement declares it again, for the thread and for recovery', () => {
    const path = file()
    sqliteStore({ path }).close()
    const db = new Database(path)
    const log = new JournalLog(path, { synchronous: 'normal', busyTimeoutMs: 5000 })
    const stmt = db.prepare('INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?)')
    disk.full = true
    expect(() => log.append([{ stmt, params: ['a', '1', null] }])).toThrow(/wrote 2 of/)
    log.append([{ stmt, params: ['b', '1', null] }])
    expect(log.drain()).toBe(true)
    expect(log.working).toBe(true)
    log.close(db)
    expect(db.prepare('SELECT key FROM cache').pluck().all()).toEqual(['b'])
    db.close()
  })

  it('a rotation whose new header the disk refuses: the append that triggered it still succeeds, its write is in the tables, and the log retires (the store then commits inline)', () => {
    const path = file()
    sqliteStore({ path }).close()
    const db = new Database(path)
    const log = new JournalLog(path, { synchronous: 'normal', busyTimeoutMs: 5000, rotateAtBytes: 64 })
    const stmt = db.prepare('INSERT INTO cache (key, value, expires_at) VALUES (?, ?, ?)')
    // The record's write goes through; the next one, the new header after the file was emptied, comes short.
    disk.fullAfter = 1
    log.append([{ stmt, params: ['a', 'x'.repeat(100), null] }])
    expect(log.working).toBe(false)
    expect(db.prepare('SELECT key FROM cache').pluck().all()).toEqual(['a'])
    log.close(db)
    expect(existsSync(log.file)).toBe(false)
    expect(db.prepare('SELECT count(*) FROM log_applied').pluck().get()).toBe(0)
    db.close()
  })
})

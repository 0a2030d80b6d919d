// The background checkpointer's thread (see checkpointer.ts): its own connection to the file,
// a PASSIVE checkpoint every `intervalMs` (it never blocks the writer), until the store closes.
// Plain JavaScript, loaded as is from src/ (tests) and dist/ (copied by the build).
import { workerData } from 'node:worker_threads'
import Database from 'better-sqlite3'

const { path, intervalMs, busyTimeoutMs, state } = workerData
const flag = new Int32Array(state)
// flag[0]: 0 running, 1 asked to stop, 2 stopped. flag[1]: 1 when the file could not be opened here.
// flag[2]: 1 once the file is open here (the store's close then waits for this connection to close).
// flag[3]: frames in the WAL at the last checkpoint (the writer restarts a WAL that writes keep long).
let db
try {
  // fileMustExist: a store closed and its file deleted before this thread started must not get it back, empty.
  db = new Database(path, { fileMustExist: true })
  db.pragma(`busy_timeout = ${busyTimeoutMs}`)
  Atomics.store(flag, 2, 1)
} catch {
  Atomics.store(flag, 1, 1)
  Atomics.store(flag, 0, 2)
  Atomics.notify(flag, 0)
  process.exit(0)
}
while (Atomics.wait(flag, 0, 0, intervalMs) === 'timed-out' || Atomics.load(flag, 0) === 0) {
  try {
    const [result] = db.pragma('wal_checkpoint(PASSIVE)')
    Atomics.store(flag, 3, result.log)
  } catch {
    // Busy or locked by another process's checkpoint: the next turn tries again.
  }
}
db.close()
Atomics.store(flag, 0, 2)
Atomics.notify(flag, 0)

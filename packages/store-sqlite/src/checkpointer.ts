import { Worker } from 'node:worker_threads'

const workerFile = new URL('./checkpoint-worker.mjs', import.meta.url)

/**
 * Checkpoints the WAL of a file on a thread of its own. A checkpoint copies the WAL into the
 * database file and syncs it: done by the writing connection (SQLite's default, every 1000
 * pages) it stalls the event loop for the length of an fsync, tens of milliseconds on some
 * disks, in the middle of a commit. Here the writer only appends to the WAL
 * (`wal_autocheckpoint = 0`) and this thread's connection checkpoints it PASSIVE every
 * `intervalMs`, which never blocks the writer. Once a checkpoint caught up, SQLite's next
 * write starts the WAL from its beginning again. Under writes that never pause, no checkpoint
 * catches up by itself: once the WAL passes a size (`walPast`), the writer checkpoints what the
 * thread has not copied yet (little: it keeps up), and the next write restarts the WAL.
 */
export class Checkpointer {
  readonly #worker: Worker
  readonly #flag: Int32Array

  constructor(path: string, options: { intervalMs: number; busyTimeoutMs: number }) {
    const state = new SharedArrayBuffer(16)
    this.#flag = new Int32Array(state)
    this.#worker = new Worker(workerFile, { workerData: { path, intervalMs: options.intervalMs, busyTimeoutMs: options.busyTimeoutMs, state } })
    // A thread that only checkpoints must not keep the process alive.
    this.#worker.unref()
    const failed = (): void => {
      Atomics.store(this.#flag, 1, 1)
      Atomics.store(this.#flag, 0, 2)
    }
    this.#worker.once('error', failed)
    this.#worker.once('exit', (code) => code !== 0 && failed())
  }

  /** False once the thread failed (it could not open the file): the writer must checkpoint itself again. */
  get working(): boolean {
    return Atomics.load(this.#flag, 1) === 0
  }

  /**
   * True once the WAL the thread last saw holds `frames` or more: time for the writer to finish
   * the checkpoint itself, so that the WAL restarts. Answers true once per report.
   */
  walPast(frames: number): boolean {
    if (Atomics.load(this.#flag, 3) < frames) return false
    Atomics.store(this.#flag, 3, 0)
    return true
  }

  /**
   * Stops the thread. When it has the file open, waits (up to `timeoutMs`) for it to close its
   * connection, so that the writer's close is the last one and SQLite folds the WAL into the
   * file; synchronous, since the thread blocks in `Atomics.wait`, not in an event loop. A thread
   * still starting is not waited for: it sees the request as soon as it has the file open.
   */
  stop(timeoutMs = 5000): void {
    if (Atomics.load(this.#flag, 0) === 2) return
    Atomics.store(this.#flag, 0, 1)
    Atomics.notify(this.#flag, 0)
    if (Atomics.load(this.#flag, 2) === 1) Atomics.wait(this.#flag, 0, 1, timeoutMs)
  }
}

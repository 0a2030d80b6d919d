import { availableParallelism } from 'node:os'
import { existsSync } from 'node:fs'
import { Piscina } from 'piscina'
import type { ResourceLimits } from 'node:worker_threads'
import { SteplineError } from '../errors'
import { toMs } from '../duration'
import type { Duration } from '../duration'
import type { CpuRef } from '../plan/types'
import { transferablesOf, type CpuInput } from './cpu'

/** Options of the engine's worker pool for `cpu()` steps (`createEngine({ workers })`). */
export interface WorkerOptions {
  /** Threads kept alive. Default 0: threads start with the first cpu task. */
  min?: number
  /** Most threads. Default `os.availableParallelism()`. */
  max?: number
  /** A thread idle this long exits (down to `min`). Default `'30s'`. */
  idleTimeout?: Duration
  /** Tasks waiting for a thread before `run` rejects. Default unbounded. */
  maxQueue?: number
  /** Heap limits per thread; a task exceeding them fails its step, and the thread is replaced. */
  resourceLimits?: ResourceLimits
}

/** Utilisation of the pool, for progress events and run summaries. */
export interface PoolStats {
  threads: number
  /** Share of the pool's capacity spent running tasks since it started, 0..1 (piscina's figure). */
  utilization: number
  queued: number
  completed: number
}

const workerFile = new URL('./cpu-worker.mjs', import.meta.url)

/**
 * The piscina pool behind `cpu()` steps, created on the first task and closed with the engine.
 * Task modules written in TypeScript load through tsx (registered inside each worker) when it is installed.
 */
export class CpuPool {
  readonly options: WorkerOptions
  #pool: Piscina | undefined

  constructor(options: WorkerOptions = {}) {
    checkWorkerOptions(options)
    this.options = options
  }

  #get(): Piscina {
    if (this.#pool) return this.#pool
    const o = this.options
    this.#pool = new Piscina({
      filename: workerFile.href,
      minThreads: o.min ?? 0,
      maxThreads: o.max ?? availableParallelism(),
      idleTimeout: o.idleTimeout === undefined ? 30_000 : toMs(o.idleTimeout)!,
      ...(o.maxQueue !== undefined ? { maxQueue: o.maxQueue } : {}),
      ...(o.resourceLimits ? { resourceLimits: o.resourceLimits } : {}),
    })
    return this.#pool
  }

  /** Runs one task; `last`'s ArrayBuffers are transferred to the worker unless `move` is false. */
  run(ref: CpuRef, input: CpuInput, signal?: AbortSignal, move = true): Promise<unknown> {
    const pool = this.#get()
    return pool.run({ m: ref.module, e: ref.export, input }, { transferList: move ? transferablesOf(input.last) : [], signal: signal ?? null })
  }

  /** Runs one chunk of items as a single task; results come back in input order. */
  runChunk(ref: CpuRef, inputs: CpuInput[], signal?: AbortSignal): Promise<unknown[]> {
    const pool = this.#get()
    const transfer: ArrayBuffer[] = []
    for (const input of inputs) transferablesOf(input.last, transfer)
    return pool.run({ m: ref.module, e: ref.export, inputs }, { transferList: transfer, signal: signal ?? null })
  }

  stats(): PoolStats | undefined {
    const p = this.#pool
    if (!p) return undefined
    return { threads: p.threads.length, utilization: p.utilization, queued: p.queueSize, completed: p.completed }
  }

  async close(): Promise<void> {
    const p = this.#pool
    this.#pool = undefined
    await p?.destroy()
  }
}

function checkWorkerOptions(o: WorkerOptions): void {
  const bad = (m: string): never => {
    throw new SteplineError('OPTIONS_INVALID', `createEngine: \`workers.${m}`)
  }
  const int = (k: 'min' | 'max' | 'maxQueue', min: number): void => {
    const v = o[k]
    if (v !== undefined && (!Number.isInteger(v) || v < min)) bad(`${k}\` must be a whole number ≥ ${min}, got ${String(v)}.`)
  }
  int('min', 0)
  int('max', 1)
  int('maxQueue', 0)
  if (o.min !== undefined && o.max !== undefined && o.min > o.max) bad(`min\` (${o.min}) is larger than \`max\` (${o.max}).`)
  if (o.idleTimeout !== undefined && toMs(o.idleTimeout) === undefined) bad(`idleTimeout\` must be a duration like '30s', got ${String(o.idleTimeout)}.`)
}

/** True when the worker script is where the pool expects it (it ships beside the bundle). */
export function workerFileExists(): boolean {
  return existsSync(workerFile)
}

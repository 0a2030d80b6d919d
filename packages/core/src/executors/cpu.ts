import { fileURLToPath, pathToFileURL } from 'node:url'
import { isAbsolute, resolve } from 'node:path'
import type { CpuRef } from '../plan/types'

const CPU = Symbol.for('stepline.cpu')

/**
 * A step body that runs in the engine's worker-thread pool: a module and an export, never a
 * closure. `TOut` types the step's output (the worker's return value).
 */
export interface CpuTask<TOut = unknown> {
  readonly [CPU]: true
  readonly ref: CpuRef
  /** @internal type-level only */
  readonly __output?: TOut
}

/** Options of `cpu()`. */
export interface CpuOptions {
  /** The export of the module that handles the task. Default `'default'`. */
  export?: string
  /** Names of earlier steps whose outputs the worker receives in `input.steps`. */
  steps?: readonly string[]
  /**
   * Also send the run's payload (`input.payload`). Off by default: it is cloned for every task,
   * which for a `forEach` over a large payload would copy the whole payload per item.
   */
  payload?: boolean
}

/**
 * What a cpu task's handler receives, by structured clone (ArrayBuffers and typed arrays in
 * `last` are transferred, not copied). It gets what it names: `last` always, the payload and
 * earlier steps' outputs only when `cpu()` asks for them.
 * @example
 * // score.task.ts
 * export default function score(input: CpuInput<Doc>) { return rank(input.last) }
 */
export interface CpuInput<TLast = unknown, TPayload = unknown> {
  /** The run's payload when `cpu(module, { payload: true })`; otherwise undefined. */
  payload: TPayload | undefined
  last: TLast
  /** Outputs of the steps named in `cpu(module, { steps })`. */
  steps: Record<string, unknown>
  /** Inside a `forEach`: the item and its index. */
  item: unknown
  index: number | undefined
  run: { id: string; workflowId: string; attempt: number }
  attempt: number
}

/**
 * Declares a CPU-bound step body that runs in a piscina worker thread, so CPU work uses other
 * cores. `module` is a file URL or path (use `new URL('./x.task.js', import.meta.url)`); its
 * export is called with a `CpuInput` and returns the output (or a promise of it).
 * @example
 * workflow('docs').step('score', cpu<number>(new URL('./score.task.js', import.meta.url), { steps: ['parse'] }))
 */
export function cpu<TOut = unknown>(module: string | URL | { module: string | URL; export?: string }, options: CpuOptions = {}): CpuTask<TOut> {
  const spec = typeof module === 'object' && !(module instanceof URL) ? module : { module, export: undefined }
  const ref: CpuRef = { module: toFileUrl(spec.module), export: spec.export ?? options.export ?? 'default' }
  if (options.steps !== undefined) ref.steps = [...options.steps]
  if (options.payload === true) ref.payload = true
  return { [CPU]: true, ref }
}

/** True when `value` is a task made by `cpu()`. */
export function isCpuTask(value: unknown): value is CpuTask {
  return typeof value === 'object' && value !== null && (value as { [CPU]?: unknown })[CPU] === true
}

function toFileUrl(module: string | URL): string {
  if (module instanceof URL) return module.href
  if (module.startsWith('file:')) return module
  return pathToFileURL(isAbsolute(module) ? module : resolve(module)).href
}

/** The module's file path, for messages and existence checks. */
export function modulePath(ref: CpuRef): string {
  return ref.module.startsWith('file:') ? fileURLToPath(ref.module) : ref.module
}

/**
 * ArrayBuffers inside `value` (directly, or behind typed arrays and plain objects/arrays),
 * once each: what a `postMessage` can transfer instead of copying. A typed array that views
 * only part of its buffer is copied instead: moving the buffer would take the bytes of every
 * other view of it (the next `forEach` item's `subarray`, a pooled Node `Buffer`'s neighbours;
 * Node 21+ refuses to move the pool). cpu-worker.mjs applies the same rule to results; change
 * both together.
 */
export function transferablesOf(value: unknown, out: ArrayBuffer[] = [], depth = 0): ArrayBuffer[] {
  if (value === null || typeof value !== 'object' || depth > 8) return out
  if (value instanceof ArrayBuffer) {
    if (!out.includes(value) && value.byteLength > 0) out.push(value)
  } else if (ArrayBuffer.isView(value)) {
    const b = value.buffer
    if (b instanceof ArrayBuffer && value.byteLength === b.byteLength && !out.includes(b) && b.byteLength > 0) out.push(b)
  } else if (Array.isArray(value)) {
    for (const v of value) transferablesOf(v, out, depth + 1)
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const k in value) transferablesOf((value as Record<string, unknown>)[k], out, depth + 1)
  }
  return out
}

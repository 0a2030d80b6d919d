import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { MessageChannel, Worker, receiveMessageOnPort } from 'node:worker_threads'
import { modulePath } from './cpu'
import type { CpuRef } from '../plan/types'

/** What loading a cpu module showed: its exports and their types, or why it failed to load. */
export type ModuleCheck = { ok: true; exports: Record<string, string> } | { ok: false; error: string }

const checked = new Map<string, ModuleCheck>()

// Runs in a throwaway worker: imports the module, reports its exports, wakes the caller.
const CHECKER = `
const { workerData } = require('node:worker_threads')
const { port, shared, url } = workerData
const flag = new Int32Array(shared)
let sent = false
const done = (msg) => { if (sent) return; sent = true; port.postMessage(msg); Atomics.store(flag, 0, 1); Atomics.notify(flag, 0) }
// A module that ends the thread while it loads would otherwise leave the caller waiting 30 s.
process.once('exit', (code) => done({ ok: false, error: 'it called process.exit(' + code + ') while loading' }))
const ts = /\.[cm]?ts$/.test(url)
;(ts ? import('tsx/esm/api').then((m) => m.register()) : Promise.resolve()).then(() => import(url)).then(
  (mod) => {
    const exports = {}
    for (const k of Object.keys(mod)) exports[k] = typeof mod[k]
    if (mod.default && typeof mod.default === 'object') for (const k of Object.keys(mod.default)) exports[k] ??= typeof mod.default[k]
    // As the worker does: CommonJS compiled from TypeScript sets exports.default to the handler.
    if (typeof mod.default?.default === 'function') exports.default = 'function'
    done({ ok: true, exports })
  },
  (e) => done({ ok: false, error: String(e && e.message || e) }),
)
`

/**
 * Loads a cpu module in a throwaway worker thread and reports its exports, synchronously, so
 * that `engine.register()` can refuse a bad module path or a missing export at once rather than
 * at the first run. Cached per module for the process.
 */
export function checkCpuModule(ref: CpuRef): ModuleCheck {
  const hit = checked.get(ref.module)
  if (hit) return hit
  let result: ModuleCheck
  if (!existsSync(modulePath(ref))) {
    result = { ok: false, error: 'the file does not exist' }
  } else if (isTs(ref) && !tsxAvailable()) {
    result = { ok: false, error: 'it is TypeScript and tsx is not installed to load it; build it to .js or add tsx' }
  } else {
    result = loadInWorker(ref)
  }
  checked.set(ref.module, result)
  return result
}

function loadInWorker(ref: CpuRef): ModuleCheck {
  const shared = new SharedArrayBuffer(4)
  const flag = new Int32Array(shared)
  const { port1, port2 } = new MessageChannel()
  const worker = new Worker(CHECKER, {
    eval: true,
    workerData: { port: port2, shared, url: ref.module },
    transferList: [port2],
  })
  try {
    if (Atomics.wait(flag, 0, 0, 30_000) === 'timed-out') return { ok: false, error: 'loading it took more than 30 s' }
    const msg = receiveMessageOnPort(port1)
    return (msg?.message as ModuleCheck | undefined) ?? { ok: false, error: 'the checker worker exited without an answer' }
  } finally {
    port1.close()
    void worker.terminate()
  }
}

function isTs(ref: CpuRef): boolean {
  return /\.[cm]?ts$/.test(modulePath(ref))
}

function tsxAvailable(): boolean {
  if (process.execArgv.some((a) => a.includes('tsx'))) return true
  try {
    createRequire(join(process.cwd(), 'index.js')).resolve('tsx')
    return true
  } catch {
    return false
  }
}

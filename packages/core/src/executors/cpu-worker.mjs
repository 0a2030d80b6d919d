// The piscina worker behind `cpu()` steps. Plain JavaScript so that it runs as it is, from
// source in tests and from dist once built. It loads the task's module once per thread, calls
// its export, and moves ArrayBuffers in the result back instead of copying them. An error that a
// task's leftover work raises after the task finished fails no later task (see `tasks` below).
import { AsyncLocalStorage } from 'node:async_hooks'
import { fileURLToPath } from 'node:url'
import { move, transferableSymbol, valueSymbol } from 'piscina'

const handlers = new Map()
let tsx

/** TypeScript task modules load through tsx's hooks, registered in this thread on first need. */
async function loadTs() {
  tsx ??= import('tsx/esm/api').then((m) => m.register())
  return tsx
}

async function load(module, name, key) {
  if (/\.[cm]?ts$/.test(module)) await loadTs()
  const mod = await import(module)
  let h = mod[name] ?? (name === 'default' ? undefined : mod.default?.[name])
  if (typeof h !== 'function' && name === 'default' && typeof mod.default?.default === 'function') h = mod.default.default
  if (typeof h !== 'function') {
    throw new Error(`cpu module ${module} has no function export "${name}" (exports: ${Object.keys(mod).join(', ') || 'none'})`)
  }
  handlers.set(key, h)
  return h
}

// The same rule as `transferablesOf` in cpu.ts, which this plain-JS worker cannot import
// (it must run as it is from src and from dist). Change both together.
function buffersOf(value, out = [], depth = 0) {
  if (value === null || typeof value !== 'object' || depth > 8) return out
  if (value instanceof ArrayBuffer) {
    if (!out.includes(value) && value.byteLength > 0) out.push(value)
  } else if (ArrayBuffer.isView(value)) {
    const b = value.buffer
    if (b instanceof ArrayBuffer && value.byteLength === b.byteLength && !out.includes(b) && b.byteLength > 0) out.push(b)
  } else if (Array.isArray(value)) {
    for (const v of value) buffersOf(v, out, depth + 1)
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const k in value) buffersOf(value[k], out, depth + 1)
  }
  return out
}

// Errors cross as plain data in the shape of `serializeError` in errors.ts (which this worker
// cannot import either), marker included: structured clone keeps only an Error's message and
// stack, and a NonRetriableError that lost its `code` would be retried.
function serialized(e, depth = 0) {
  if (!(e instanceof Error)) return { __stepline_error__: true, name: 'Error', message: messageOf(e) }
  const out = { __stepline_error__: true, name: e.name, message: e.message, stack: e.stack }
  if (typeof e.code === 'string') out.code = e.code
  if (typeof e.step === 'string') out.step = e.step
  // Bounded: a cause chain can loop.
  if (e.cause !== undefined && depth < 8) out.cause = serialized(e.cause, depth + 1)
  if (Array.isArray(e.errors) && depth < 8) out.errors = e.errors.map((x) => serialized(x, depth + 1))
  return out
}

/** As `messageOf` in errors.ts. */
function messageOf(e) {
  if (typeof e === 'string') return e
  try {
    return JSON.stringify(e) ?? String(e)
  } catch {
    return String(e)
  }
}

// piscina posts the result itself. When structured clone refuses it (a function in the output),
// the DataCloneError ends this thread and reaches the pool as `{}`: a DOMException's name and
// message are not own properties, so the error serialisation skips them. Make them own.
process.on('uncaughtExceptionMonitor', (e) => {
  if (e?.name !== 'DataCloneError') return
  Object.defineProperties(e, { name: { value: e.name, enumerable: true }, message: { value: e.message, enumerable: true } })
})

function moved(result) {
  const buffers = buffersOf(result)
  if (buffers.length === 0) return result
  if (buffers.length === 1 && (result instanceof ArrayBuffer || ArrayBuffer.isView(result))) return move(result)
  return { [transferableSymbol]: buffers, [valueSymbol]: result }
}

// Work a task starts and does not await (a timer, an unawaited promise) can fail after the task
// has finished: it runs later, often while the thread's next task runs, since an idle piscina
// thread blocks in Atomics.wait and runs no timers until a task arrives. Left to Node, such an
// error ends the thread and piscina fails whatever task the thread is running then: an
// unrelated step of maybe another run. So each task runs in an AsyncLocalStorage context whose
// store is a small token (not the task: leftover timers would keep its input alive), which
// every timer, promise and callback the task starts carries. An uncaught error is judged by the
// token of the work that raised it:
// - a task that is still running: the thread ends as Node would end it, and piscina fails that
//   task with the error, as before. It is the only task on the thread (piscina's default of one
//   task per thread, which pool.ts keeps), and ending the thread also ends the rest of its work;
// - a task that has finished: the error cannot change that task's result any more. It is
//   written to stderr naming the module and export, and the thread goes on. Ending the thread
//   instead would not be clean: the pool may have sent it its next task already, which would
//   then fail with "worker exited", the very failure this prevents. Going on is what Node's own
//   `--unhandled-rejections=warn` does, and the throw unwound only the leftover callback's
//   stack, never a running task's;
// - no task (piscina's own work, e.g. the DataCloneError of a result it could not post, which
//   must fail that task): the thread ends, as before.
const tasks = new AsyncLocalStorage()

function onUncaught(error) {
  const owner = tasks.getStore()
  if (owner !== undefined && owner.done) reportLeftover(owner, error)
  else rethrow(error)
}

// Node calls this in the async context of the rejected promise (where it was created; on Node
// versions with AsyncContextFrame, where it was rejected): either way, the leftover work's task.
function onUnhandledRejection(reason) {
  const owner = tasks.getStore()
  if (owner !== undefined && owner.done) reportLeftover(owner, reason)
  else rethrow(reason instanceof Error ? reason : unhandledRejection(reason))
}

/** As Node makes of a rejection with no Error for a reason, with the reason in the message. */
function unhandledRejection(reason) {
  const error = new Error(`a promise that nothing awaited or caught was rejected with ${messageOf(reason)}`)
  error.name = 'UnhandledPromiseRejection'
  error.code = 'ERR_UNHANDLED_REJECTION'
  return error
}

/** Leaves `error` to Node's default, which ends the thread: piscina fails the running task with it. */
function rethrow(error) {
  process.off('uncaughtException', onUncaught)
  process.off('unhandledRejection', onUnhandledRejection)
  queueMicrotask(() => {
    throw error
  })
}

function reportLeftover(owner, error) {
  const module = owner.m.startsWith('file:') ? fileURLToPath(owner.m) : owner.m
  try {
    console.error(
      `stepline: cpu module ${module}, export "${owner.e}", left an error behind after its task had finished; ` +
        'it failed no step, and this worker thread goes on. Await or catch all the work a task starts.',
      error,
    )
  } catch {
    // An error whose inspection throws: a listener that throws would end the thread after all.
  }
}

process.on('uncaughtException', onUncaught)
process.on('unhandledRejection', onUnhandledRejection)

/** One task: `{ m: module, e: export, input }`, or a chunk: `{ m, e, inputs: [...] }`. */
export default function run(task) {
  const owner = { m: task.m, e: task.e, done: false }
  return tasks.run(owner, runTask, task, owner)
}

async function runTask(task, owner) {
  const key = `${task.m}#${task.e}`
  try {
    // The common case costs a map lookup and no extra await: the handler is loaded already.
    const handler = handlers.get(key) ?? (await load(task.m, task.e, key))
    if (task.inputs === undefined) {
      task.input.steps ??= {}
      const out = handler(task.input)
      return moved(out instanceof Promise ? await out : out)
    }
    const out = new Array(task.inputs.length)
    for (let i = 0; i < task.inputs.length; i++) {
      task.inputs[i].steps ??= {}
      out[i] = await handler(task.inputs[i])
    }
    return moved(out)
  } catch (e) {
    // A thrown string or plain object clones as it is; only Errors lose fields on the way.
    throw e instanceof Error ? serialized(e) : e
  } finally {
    // From here on, an error of the work it leaves behind is no longer this task's failure.
    owner.done = true
  }
}

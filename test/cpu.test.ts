import { threadId } from 'node:worker_threads'
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest'
import {
  cpu,
  createEngine,
  inlineExecutor,
  isSteplineError,
  PlanError,
  StepError,
  StepTimeoutError,
  workflow,
  type Engine,
  type EngineOptions,
} from '@stepline/core'

const tasks = new URL('./fixtures/cpu/tasks.mjs', import.meta.url)
const task = <T = unknown>(name: string, steps?: string[]) => cpu<T>(tasks, { export: name, payload: true, ...(steps ? { steps } : {}) })

let engines: Engine[] = []
const engineWith = (options: EngineOptions = {}): Engine => {
  const e = createEngine({ workers: { max: 2 }, ...options })
  engines.push(e)
  return e
}
afterEach(async () => {
  await Promise.all(engines.map((e) => e.close()))
  engines = []
})

describe('cpu() steps on the worker pool', () => {
  it('run in another thread with payload, last, the named step outputs and the run identity', async () => {
    const wf = workflow<{ n: number }>('cpu-input')
      .step('first', (ctx) => ctx.payload.n + 1)
      .step('echo', task<{ last: number; payload: { n: number }; steps: Record<string, unknown>; runId: string; attempt: number }>('echo', ['first']))
      .step('where', task<{ threadId: number }>('burn'))
    const engine = engineWith()
    const handle = await engine.start(wf, { n: 1 })
    const out = await handle.result()
    expect(out.threadId).not.toBe(threadId)
    const steps = await engine.getSteps(handle.id)
    expect(steps.find((s) => s.name === 'echo')?.output).toEqual({
      last: 2, payload: { n: 1 }, steps: { first: 2 }, item: undefined, index: undefined, attempt: 1, runId: handle.id,
    })
  })

  it('uses the default export unless told otherwise, and works as parallel branches', async () => {
    const engine = engineWith()
    expect(await engine.run(workflow<number>('cpu-default').step('d', cpu<string>(tasks)), 7)).toBe('default:7')
    const wf = workflow<number>('cpu-par').parallel('both', [task<number>('square'), (ctx) => `${ctx.last}!`])
    const out = await engine.run(wf, 3)
    expect(out).toEqual([9, '3!'])
    expectTypeOf(out).toEqualTypeOf<[number, string]>()
  })

  it('sends the payload only when asked for: cpu(module, { payload: true })', async () => {
    const wf = workflow<{ big: number[] }>('cpu-payload')
      .step('without', cpu<{ payload: unknown }>(tasks, { export: 'echo' }))
      .step('with', cpu<{ payload: unknown }>(tasks, { export: 'echo', payload: true }))
    const engine = engineWith()
    const handle = await engine.start(wf, { big: [1, 2, 3] })
    expect(await handle.result()).toMatchObject({ payload: { big: [1, 2, 3] } })
    const steps = await engine.getSteps(handle.id)
    expect(steps[0]?.output).toMatchObject({ payload: undefined })
  })

  it('runs a CommonJS task module compiled from TypeScript (exports.default)', async () => {
    const engine = engineWith()
    const wf = workflow<number>('cpu-cjs').step('score', cpu<string>(new URL('./fixtures/cpu/compiled.cjs', import.meta.url)))
    expect(await engine.run(wf, 5)).toBe('compiled:5')
  })

  it('loads a TypeScript task module through tsx inside the worker', async () => {
    const engine = engineWith()
    const wf = workflow<string>('cpu-ts').step('shout', cpu<string>(new URL('./fixtures/cpu/typed.task.ts', import.meta.url)))
    expect(await engine.run(wf, 'hello')).toBe('HELLO!')
  })

  it('a forEach with a cpu body gives results in input order, chunked or not', async () => {
    const items = Array.from({ length: 50 }, (_, i) => i)
    const plain = workflow<number[]>('cpu-each').forEach('sq', (ctx) => ctx.payload, task<number>('square'), { concurrency: 4 })
    const chunked = workflow<number[]>('cpu-chunks').forEach('sq', (ctx) => ctx.payload, task<number>('square'), { concurrency: 2, chunkSize: 8 })
    const engine = engineWith()
    const progress: { done: number; total: number; threads?: number }[] = []
    engine.on('run:progress', (e) => progress.push({ done: e.done, total: e.total, threads: e.pool?.threads }))
    expect(await engine.run(plain, items)).toEqual(items.map((i) => i * i))
    const before = progress.length
    const handle = await engine.start(chunked, items)
    expect(await handle.result()).toEqual(items.map((i) => i * i))
    const chunkEvents = progress.slice(before)
    expect(chunkEvents).toHaveLength(Math.ceil(50 / 8))
    expect(chunkEvents.at(-1)).toMatchObject({ done: 50, total: 50 })
    expect(chunkEvents[0]?.threads).toBeGreaterThan(0)
    // The summary reports the pool: cpu steps that ran there, its threads and utilisation.
    const summary = (await handle.outcome()).summary
    expect(summary.pool?.cpuSteps).toBe(50)
    expect(summary.pool?.threads).toBeGreaterThan(0)
    expect(summary.pool?.utilization).toBeGreaterThanOrEqual(0)
    // Every item is journaled on its own, so a resumed run does not redo finished items.
    const steps = await engine.getSteps(handle.id)
    const keys = steps.filter((s) => s.name === 'sq:task').map((s) => s.key)
    expect(keys.sort()).toEqual(items.map((i) => `n0.body.n0@${i}`).sort())
  })

  it('a worker that throws fails the step naming step and module, and is retried by policy', async () => {
    const engine = engineWith()
    const failing = workflow('cpu-throw').step('boom', task('fail'), { retry: { attempts: 2, delay: 1 } })
    const err = await engine.run(failing).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepError)
    expect((err as StepError).attempts).toBe(2)
    const cause = (err as StepError).cause
    expect(isSteplineError(cause, 'CPU_TASK_FAILED')).toBe(true)
    expect((cause as Error).message).toMatch(/^Step "boom" \(cpu module .*tasks\.mjs, export "fail"\) failed in a worker thread: task failed on attempt 2$/)
    const flaky = workflow('cpu-flaky').step('flaky', task<string>('flaky'), { retry: { attempts: 3, delay: 1 } })
    expect(await engine.run(flaky)).toBe('ok on 3')
  })

  it('a worker that calls process.exit fails its step; the pool replaces it and goes on', async () => {
    const engine = engineWith()
    const err = await engine.run(workflow('cpu-exit').step('quit', task('exit'))).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepError)
    expect(String((err as StepError).cause)).toMatch(/Step "quit" \(cpu module .*export "exit"\) failed in a worker thread/)
    expect(await engine.run(workflow<number>('cpu-after-exit').step('sq', task<number>('square')), 9)).toBe(81)
  })

  it('a worker that runs out of memory under resourceLimits fails its step; the pool recovers', async () => {
    const engine = engineWith({ workers: { max: 1, resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 } } })
    const err = await engine.run(workflow('cpu-oom').step('hog', task('oom'))).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepError)
    expect(String((err as StepError).cause)).toMatch(/Step "hog" .*failed in a worker thread: .*(memory|ERR_WORKER_OUT_OF_MEMORY)/i)
    expect(await engine.run(workflow<number>('cpu-after-oom').step('sq', task<number>('square')), 4)).toBe(16)
  }, 30_000)

  it('a timeout aborts the task in its worker (even a busy loop) and the pool stays healthy', async () => {
    const engine = engineWith({ workers: { max: 1 } })
    const t0 = performance.now()
    const err = await engine.run(workflow('cpu-timeout').step('spin', task('forever'), { timeout: 300 })).catch((e: unknown) => e)
    expect(performance.now() - t0).toBeLessThan(5000)
    expect((err as StepError).cause).toBeInstanceOf(StepTimeoutError)
    // With one thread, this only runs if the spinning worker was terminated and replaced.
    expect(await engine.run(workflow<number>('cpu-after-timeout').step('sq', task<number>('square')), 5)).toBe(25)
  })

  it('cancel aborts the task in its worker', async () => {
    const engine = engineWith({ workers: { max: 1 } })
    const handle = await engine.start(workflow('cpu-cancel').step('spin', task('forever')).step('never', () => 'ran'))
    await new Promise((r) => setTimeout(r, 200))
    await handle.cancel('test')
    expect((await handle.outcome()).status).toBe('cancelled')
    expect(await engine.run(workflow<number>('cpu-after-cancel').step('sq', task<number>('square')), 6)).toBe(36)
    expect((await engine.getSteps(handle.id)).map((s) => s.name)).not.toContain('never')
  })

  it('moves a 64 MB buffer to the worker and back without copying: the sender’s copy is detached', async () => {
    const size = 64 * 1024 * 1024
    const bytes = new Uint8Array(size).fill(3)
    const wf = workflow<null>('cpu-transfer')
      .step('make', () => bytes)
      .step('double', task<Uint8Array>('doubleBytes'))
    const engine = engineWith()
    const out = await engine.run(wf, null)
    expect(bytes.byteLength).toBe(0) // transferred to the worker, not cloned
    expect(out).toBeInstanceOf(Uint8Array)
    expect(out.byteLength).toBe(size)
    expect(out[0]).toBe(6)
    expect(out[4096]).toBe(6)
    expect(out[1]).toBe(3)
  }, 30_000)
})

describe('cpu() module checks at register()', () => {
  it('a missing module fails at register with the path and the fix', () => {
    const engine = engineWith()
    const wf = workflow('bad-path').step('score', cpu(new URL('./fixtures/cpu/nope.mjs', import.meta.url)))
    expect(() => engine.register(wf)).toThrow(PlanError)
    expect(() => engine.register(wf)).toThrow(/^Step "score" in workflow "bad-path": its cpu module .*nope\.mjs cannot be loaded: the file does not exist\. Pass cpu\(new URL/)
  })

  it('a missing export, or one that is no function, fails at register listing the exports', () => {
    const engine = engineWith()
    expect(() => engine.register(workflow('no-export').step('score', task('missing')))).toThrow(
      /its cpu module .*tasks\.mjs has no export "missing" \(exports: .*burn.*echo.*\)\. Export the handler as "missing"/,
    )
    expect(() => engine.register(workflow('not-fn').step('score', task('notAFunction')))).toThrow(/has an export that is a number, not a function, "notAFunction"/)
  })

  it('a module that calls process.exit while loading fails at register at once', () => {
    const engine = engineWith()
    const wf = workflow('exits').step('score', cpu(new URL('./fixtures/cpu/exits-on-load.mjs', import.meta.url)))
    // Before, register() waited out its 30 s load limit and then blamed slowness.
    expect(() => engine.register(wf)).toThrow(/its cpu module .*exits-on-load\.mjs cannot be loaded: it called process\.exit\(0\) while loading/)
  })

  it('the inline executor refuses cpu steps with a clear message', async () => {
    const engine = engineWith({ executor: inlineExecutor() })
    await expect(engine.run(workflow('inline-cpu').step('sq', task('square')), 2)).rejects.toThrow(
      /Step "sq" is a cpu\(\) step, which the inline executor cannot run/,
    )
  })
})

describe('cpu() faults crossing the thread', () => {
  const faults = new URL('./fixtures/cpu/faults.mjs', import.meta.url)
  const fault = <T = unknown>(name: string) => cpu<T>(faults, { export: name })

  it('a NonRetriableError thrown in the worker skips the remaining retries', async () => {
    const engine = engineWith()
    const wf = workflow('cpu-non-retriable').step('lookup', fault('nonRetriable'), { retry: { attempts: 3, delay: 1 } })
    const err = await engine.run(wf).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepError)
    expect((err as StepError).attempts).toBe(1)
    const cause = (err as StepError).cause as Error
    expect(isSteplineError(cause, 'NON_RETRIABLE')).toBe(true)
    expect(cause.message).toMatch(/^Step "lookup" \(cpu module .*faults\.mjs, export "nonRetriable"\) failed in a worker thread: order does not exist \(attempt 1\)$/)
    expect(isSteplineError(cause.cause, 'NON_RETRIABLE')).toBe(true)
  })

  it('a thrown error keeps its name, code and cause across the thread', async () => {
    const engine = engineWith()
    const err = await engine.run(workflow('cpu-error-shape').step('fetch', fault('withCode'))).catch((e: unknown) => e)
    const wrapped = (err as StepError).cause as Error
    expect(isSteplineError(wrapped, 'CPU_TASK_FAILED')).toBe(true)
    const original = wrapped.cause as Error & { code?: string }
    expect(original).toBeInstanceOf(Error)
    expect(original).toMatchObject({ name: 'HttpError', code: 'HTTP_503', message: 'upstream unavailable' })
    expect(original.stack).toMatch(/withCode/)
    expect(original.cause).toMatchObject({ message: 'socket hang up', code: 'ECONNRESET' })
  })

  it('an AbortError the task throws itself fails the attempt like any error, and is retried', async () => {
    const engine = engineWith()
    const wf = workflow('cpu-own-abort').step('fetch', fault('ownAbort'), { retry: { attempts: 2, delay: 1 } })
    const err = await engine.run(wf).catch((e: unknown) => e)
    expect((err as StepError).attempts).toBe(2)
    const cause = (err as StepError).cause as Error
    expect(isSteplineError(cause, 'CPU_TASK_FAILED')).toBe(true)
    expect(cause.cause).toMatchObject({ name: 'AbortError', message: 'This operation was aborted' })
  })

  it('an output that cannot be cloned fails the step saying so, and the pool goes on', async () => {
    const engine = engineWith({ workers: { max: 1 } })
    const err = await engine.run(workflow('cpu-bad-output').step('score', fault('returnsFunction'))).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepError)
    expect(((err as StepError).cause as Error).message).toMatch(
      /^Step "score" \(cpu module .*faults\.mjs, export "returnsFunction"\): what it returned \(or threw\) could not be sent back from the worker thread: .*could not be cloned/,
    )
    expect(await engine.run(workflow<number>('cpu-after-bad-output').step('sq', task<number>('square')), 3)).toBe(9)
  })

  it('an input that cannot be cloned fails the step saying which values must be clonable', async () => {
    const engine = engineWith()
    const wf = workflow('cpu-bad-input').step('make', () => ({ n: 1, fmt: () => 'x' })).step('score', fault('sum'))
    const err = await engine.run(wf).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StepError)
    expect(((err as StepError).cause as Error).message).toMatch(
      /^Step "score" \(cpu module .*faults\.mjs, export "sum"\): its input \(`last`, and the payload and step outputs it asks for\) could not be sent to a worker thread: .*could not be cloned/,
    )
  })

  it('a retried cpu step gets its buffer again: an attempt that failed did not take it', async () => {
    const engine = engineWith()
    const wf = workflow('cpu-retry-buffer')
      .step('make', () => new Uint8Array(1024).fill(1))
      .step('sum', fault<number>('sumOnSecondAttempt'), { retry: { attempts: 2, delay: 1 } })
    expect(await engine.run(wf)).toBe(1024)
  })

  it('parallel cpu branches given the same buffer each get it', async () => {
    const engine = engineWith()
    const wf = workflow('cpu-par-buffer')
      .step('make', () => new Uint8Array(1024).fill(2))
      .parallel('both', [fault<number>('sum'), fault<number>('sum')])
    expect(await engine.run(wf)).toEqual([2048, 2048])
  })

  it('a forEach over views of one buffer gives every item its bytes', async () => {
    const engine = engineWith()
    const wf = workflow('cpu-views')
      .step('make', () => new Uint8Array(4096).fill(1))
      .forEach('parts', (ctx) => [0, 1, 2, 3].map((i) => ctx.last.subarray(i * 1024, (i + 1) * 1024)), fault<number>('sum'), { concurrency: 2 })
    expect(await engine.run(wf)).toEqual([1024, 1024, 1024, 1024])
    const chunked = workflow('cpu-views-chunked')
      .step('make', () => new Uint8Array(4096).fill(1))
      .forEach('parts', (ctx) => [0, 1, 2, 3].map((i) => ctx.last.subarray(i * 1024, (i + 1) * 1024)), fault<number>('sum'), { chunkSize: 2 })
    expect(await engine.run(chunked)).toEqual([1024, 1024, 1024, 1024])
  })
})

describe('cpu() work a task leaves behind', () => {
  const faults = new URL('./fixtures/cpu/faults.mjs', import.meta.url)
  const fault = <T = unknown>(name: string) => cpu<T>(faults, { export: name })
  // One thread, so the later task runs where the earlier one left its work.
  const oneThread = () => engineWith({ workers: { max: 1 } })

  /** What worker threads write to stderr while the test runs (it reaches this process's stderr), kept off the console. */
  const captureStderr = () => {
    let text = ''
    const spy = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString()
      return true
    })
    return { text: () => text, restore: () => spy.mockRestore() }
  }

  it('a throw left behind by a finished task does not fail a later task on its thread', async () => {
    const stderr = captureStderr()
    try {
      const engine = oneThread()
      const where = workflow<number>('cpu-thread').step('where', task<{ threadId: number }>('burn'))
      const before = (await engine.run(where, 1)).threadId
      expect(await engine.run(workflow('cpu-leaves-throw').step('leave', fault<string>('leavesLateThrow')))).toBe('left a throw')
      expect(await engine.run(workflow<number>('cpu-after-left-throw').step('sq', fault<number>('slowSquare')), 7)).toBe(49)
      await vi.waitFor(() => expect(stderr.text()).toMatch(/late throw left by leavesLateThrow/))
      // The thread went on: it was not replaced.
      expect((await engine.run(where, 1)).threadId).toBe(before)
    } finally {
      stderr.restore()
    }
  })

  it('a rejection left behind by a finished task does not fail a later task on its thread', async () => {
    const stderr = captureStderr()
    try {
      const engine = oneThread()
      expect(await engine.run(workflow('cpu-leaves-rejection').step('leave', fault<string>('leavesLateRejection')))).toBe('left a rejection')
      expect(await engine.run(workflow<number>('cpu-after-left-rejection').step('sq', fault<number>('slowSquare')), 6)).toBe(36)
      await vi.waitFor(() => expect(stderr.text()).toMatch(/late rejection left by leavesLateRejection/))
    } finally {
      stderr.restore()
    }
  })

  it('an async error of a task that is still running fails that task with its message; the pool goes on', async () => {
    const engine = oneThread()
    const thrown = await engine.run(workflow('cpu-own-late-throw').step('own', fault('throwsWhileRunning'))).catch((e: unknown) => e)
    expect(thrown).toBeInstanceOf(StepError)
    expect(((thrown as StepError).cause as Error).message).toMatch(
      /^Step "own" \(cpu module .*faults\.mjs, export "throwsWhileRunning"\) failed in a worker thread: own timer threw while the task ran$/,
    )
    const rejected = await engine.run(workflow('cpu-own-late-rejection').step('own', fault('rejectsWhileRunning'))).catch((e: unknown) => e)
    expect(rejected).toBeInstanceOf(StepError)
    expect(((rejected as StepError).cause as Error).message).toMatch(
      /^Step "own" \(cpu module .*faults\.mjs, export "rejectsWhileRunning"\) failed in a worker thread: own promise rejected while the task ran$/,
    )
    const withString = await engine.run(workflow('cpu-own-string-rejection').step('own', fault('rejectsWithStringWhileRunning'))).catch((e: unknown) => e)
    expect(((withString as StepError).cause as Error).message).toMatch(
      /export "rejectsWithStringWhileRunning"\) failed in a worker thread: a promise that nothing awaited or caught was rejected with no such order$/,
    )
    expect(await engine.run(workflow<number>('cpu-after-own-errors').step('sq', fault<number>('slowSquare')), 5)).toBe(25)
  })

  it('an error left behind is reported on stderr naming the module and export that left it', async () => {
    const stderr = captureStderr()
    try {
      const engine = oneThread()
      await engine.run(workflow('cpu-leaves-report').step('leave', fault('leavesLateThrow')))
      await engine.run(workflow<number>('cpu-after-report').step('sq', fault<number>('slowSquare')), 2)
      await vi.waitFor(() => expect(stderr.text()).toMatch(/late throw left by leavesLateThrow/))
      const report = stderr.text()
      expect(report).toMatch(/cpu module .*faults\.mjs, export "leavesLateThrow", left an error behind after its task had finished/)
      expect(report).toMatch(/Error: late throw left by leavesLateThrow\n\s+at /) // with its stack
      expect(report).not.toMatch(/slowSquare/)
    } finally {
      stderr.restore()
    }
  })
})

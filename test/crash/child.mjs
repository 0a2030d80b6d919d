// One life of the crash harness's worker process: opens the SQLite journal, starts (or resumes)
// the runs, and does each step's side effect by appending a line to a log file. The parent
// SIGKILLs it at random moments and starts it again until every run has completed.
import { appendFileSync } from 'node:fs'
import { createEngine, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'

const [dbPath, logPath, runsArg, writes = 'inline'] = process.argv.slice(2)
const RUNS = Number(runsArg)
const log = (line) => appendFileSync(logPath, `${line}\n`)
const pause = (ms) => new Promise((r) => setTimeout(r, ms))

/** A step body whose side effect is one "exec" line, written before the step returns. */
const effect = (name, ms = 10) => async (ctx) => {
  log(`exec ${ctx.run.id} ${name}${ctx.index === undefined ? '' : `@${ctx.index}`}`)
  await pause(ms + Math.floor(Math.random() * ms))
  return `${name}:${ctx.index ?? ''}`
}

// At most 5 runs at once, so that a full pass takes long enough to be killed in the middle.
const crashy = workflow('crashy', { concurrency: 5 })
  .step('prepare', effect('prepare'))
  .parallel('fetch', [effect('fetch[0]', 15), effect('fetch[1]', 5), effect('fetch[2]', 10)])
  .forEach('items', (ctx) => [0, 1, 2, 3, 4, 5], (_item, flow) =>
    flow
      .step('work', effect('work', 2))
      .if('odd', (ctx) => ctx.index % 2 === 1)
      .step('odd-extra', effect('odd-extra', 5))
      .endIf(), { concurrency: 3 })
  .if('big', (ctx) => ctx.payload.n % 2 === 0)
  .step('even-path', effect('even-path'))
  .else()
  .step('odd-path', effect('odd-path'))
  .endIf()
  .step('finish', effect('finish', 5))

const store = sqliteStore({ path: dbPath, writes })
// Log when a journal write is durable: an "exec" of that key after it would be a re-execution.
const record = store.recordStep.bind(store)
store.recordStep = (runId, step) => {
  const done = record(runId, step)
  const mark = () => step.status === 'completed' && (step.kind === 'step' || step.kind === 'fn') && log(`journaled ${runId} ${step.name}${step.item ? `@${step.item.at(-1)}` : ''}`)
  if (done instanceof Promise) return done.then(mark)
  mark()
  return done
}

const engine = createEngine({ store, workflows: [crashy] })
// The parent's kill clock starts here: on a busy machine, loading the modules alone can take longer than a life.
process.stdout.write('ready\n')
for (let i = 0; i < RUNS; i++) await engine.start(crashy, { n: i }, { idempotencyKey: `run-${i}` })
await engine.recover()
for (;;) {
  const open = await engine.listRuns({ status: ['queued', 'running'] })
  if (open.length === 0) break
  await pause(20)
}
await store.close()
process.exit(0)

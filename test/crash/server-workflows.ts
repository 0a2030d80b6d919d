// Fixture of test/crash/server-crash.test.ts: `stepline serve` loads this file. Each step appends
// `exec <life> <runId> <step>` to the file $STEPLINE_CRASH_EXEC_LOG before it returns, and returns
// `<step>@<life>`, $STEPLINE_CRASH_LIFE being the number of the server process: the test compares
// who executed each step with whose output the journal kept.
import { appendFileSync } from 'node:fs'
import { workflow } from 'stepline'
import { webhook } from '@stepline/server'

const execLog = process.env.STEPLINE_CRASH_EXEC_LOG
const life = process.env.STEPLINE_CRASH_LIFE ?? '0'
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** A step body: logs its execution, waits `ms` (if any), and returns who made the output. */
const effect =
  (name: string, ms: number) =>
  async (ctx: { run: { id: string } }): Promise<string> => {
    if (execLog !== undefined) appendFileSync(execLog, `exec ${life} ${ctx.run.id} ${name}\n`)
    if (ms > 0) await pause(ms)
    return `${name}@${life}`
  }

// At most 6 runs at once, so that under load some wait as `queued` when the server is killed.
export const ingest = workflow<{ n: number }>('crash-ingest', { concurrency: 6, triggers: [webhook({ path: 'crash/ingest' })] })
  .step('receive', effect('receive', 0))
  .step('enrich', effect('enrich', 4))
  .parallel('fan', [effect('fan[0]', 6), effect('fan[1]', 2), effect('fan[2]', 4)])
  .step('settle', async (ctx) => {
    const made = await effect('settle', 1)(ctx)
    // What the earlier steps returned, as this execution saw them (replayed or fresh).
    return { n: ctx.payload.n, receive: ctx.steps.receive.output, enrich: ctx.steps.enrich.output, fan: ctx.steps.fan.output, settle: made }
  })

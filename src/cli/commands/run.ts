import { readFileSync } from 'node:fs'
import type { Plan, RunHandle, RunOutcome, Store } from '@stepline/core'
import { parse } from '../args'
import { EXIT, UsageError } from '../errors'
import { checkUniqueIds, loadWorkflows, moduleFiles, pickWorkflow } from '../load'
import { c, cErr, errorChain, formatMs, isTty, prettyJson } from '../output'
import { RunProgress } from '../render/progress'
import { LiveView } from '../render/live'
import { DEFAULT_DB, journalPath, openStore, undoNewJournal } from '../store'

export const RUN_HELP = `Usage: stepline run <file> [options]

Runs one workflow exported by <file> (.ts files load directly) and shows its steps live.

Options:
  --payload <json>       the run's payload, as JSON
  --payload-file <file>  read the payload from a JSON file
  --workflow <id>        which workflow, when the file exports several (default: the first)
  --db <path>            SQLite journal (default: ${DEFAULT_DB})
  --memory               keep the journal in memory instead
  -h, --help             show this help

Exit code: 0 when the run completed, 1 when it failed, 2 on a usage error.`

/** `stepline run`: one run with a live tree (terminal) or one line per event (logs). */
export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('run', argv, {
    payload: { type: 'string' },
    'payload-file': { type: 'string' },
    workflow: { type: 'string', short: 'w' },
    db: { type: 'string' },
    memory: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) {
    console.log(RUN_HELP)
    return EXIT.ok
  }
  const [file, ...extra] = positionals
  if (file === undefined) throw new UsageError('stepline run: expected a workflow file, e.g. stepline run ./workflow.ts')
  if (extra.length) throw new UsageError(`stepline run: unexpected argument '${extra[0]}'. Pass the payload with --payload '<json>'.`)
  if (values.payload !== undefined && values['payload-file'] !== undefined) throw new UsageError('stepline run: pass --payload or --payload-file, not both.')
  if (values.memory && values.db !== undefined) throw new UsageError('stepline run: pass --db or --memory, not both.')
  const payload = readPayload(values.payload, values['payload-file'])
  const db = values.memory ? undefined : journalPath('run', values.db)

  const { found, core } = await loadWorkflows(moduleFiles(file, false))
  const wf = pickWorkflow(found, values.workflow, file).workflow
  checkUniqueIds('run', found, wf.id)
  if (values.workflow === undefined && found.length > 1) {
    console.error(cErr.dim(`${file} exports ${found.length} workflows (${found.map((f) => f.workflow.id).join(', ')}); running "${wf.id}". Pick another with --workflow <id>.`))
  }
  const discardJournal = db === undefined ? undefined : undoNewJournal(db)
  const store: Store | undefined = db === undefined ? undefined : await openStore(db)
  // A one-shot run: resuming other unfinished runs of the journal is `stepline serve`'s job.
  const engine = core.createEngine({ workflows: [wf], recover: false, ...(store ? { store } : {}) })
  let handle: RunHandle<unknown> | undefined
  try {
    handle = await engine.start(wf.id, payload).catch((error: unknown) => {
      throw refusedPayload(error, payload)
    })
    return await execute(engine.planOf(wf.id)!, handle)
  } finally {
    await engine.close()
    await store?.close?.()
    // No run was created: a journal this command created would be an empty file left behind.
    if (handle === undefined) discardJournal?.()
  }
}

/** A payload the workflow's input schema rejects is a mistake in the call (exit 2), like bad JSON. */
function refusedPayload(error: unknown, payload: unknown): unknown {
  if ((error as { code?: unknown }).code !== 'VALIDATION_FAILED') return error
  const hint = payload === undefined ? ' Pass one with --payload \'<json>\' or --payload-file <file>.' : ''
  return new UsageError(`stepline run: ${(error as Error).message}${hint}`)
}

function readPayload(json: string | undefined, file: string | undefined): unknown {
  let text = json
  let where = '--payload'
  if (file !== undefined) {
    where = `--payload-file ${file}`
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      throw new UsageError(`stepline run: cannot read ${file}: ${(error as Error).message}`)
    }
  }
  if (text === undefined) return undefined
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new UsageError(`stepline run: expected ${where} as JSON, e.g. '{"orderId":"o1"}': ${(error as Error).message}`)
  }
}

async function execute(plan: Plan, handle: RunHandle<unknown>): Promise<number> {
  const tty = isTty(process.stdout)
  const progress = new RunProgress(plan)
  const live = tty ? new LiveView(process.stdout, (now) => progress.lines(now)) : undefined
  const out = (line: string) => (live ? live.log(line) : process.stdout.write(line + '\n'))
  const now = () => Date.now()
  const where = (e: { step: string; item?: number[] | undefined }) => e.step + (e.item ? e.item.map((i) => `[${i}]`).join('') : '')

  // A run parked in a sleep or a waitForEvent is cancelled too; only an ended run is left alone.
  const ended = () => handle.status === 'completed' || handle.status === 'failed' || handle.status === 'cancelled'
  // SIGTERM (a `timeout`, a CI job stopped) as Ctrl-C: left to Node's default, the process would die
  // with the run still `running` in the journal, for the next `stepline serve` to resume.
  const interrupt = (signal: NodeJS.Signals) => {
    process.off('SIGINT', interrupt)
    process.off('SIGTERM', interrupt)
    if (!ended()) {
      out(c.yellow(`interrupted (${signal}): cancelling the run (press Ctrl-C again to exit now)`))
      handle.cancel(`interrupted (${signal})`).catch((e: unknown) => out(c.red(`could not cancel the run: ${e instanceof Error ? e.message : String(e)}`)))
      const exitNow = (again: NodeJS.Signals) => {
        live?.stop()
        process.exit(again === 'SIGINT' ? 130 : 143)
      }
      process.once('SIGINT', exitNow)
      process.once('SIGTERM', exitNow)
    }
  }
  process.once('SIGINT', interrupt)
  process.once('SIGTERM', interrupt)
  // Nobody reads the output any more (`| head -3`): the run ends as with Ctrl-C, without a word.
  const readerGone = () => {
    if (!ended()) handle.cancel('stdout closed').catch(() => undefined)
  }
  process.stdout.once('error', readerGone)

  out(`${c.bold('▶')} run ${handle.id} · workflow "${handle.workflowId}"`)
  handle
    .on('step:started', (e) => {
      progress.started(e, now())
      if (!live) out(`· ${where(e)} started`)
    })
    .on('step:completed', (e) => {
      progress.completed(e, now())
      if (!live) out(`${c.green('✓')} ${where(e)} ${formatMs(e.durationMs)}${e.attempt > 1 ? ` (${e.attempt} attempts)` : ''}${e.cached ? ' (cached)' : ''}${e.recovered ? ' (recovered by onError)' : ''}`)
    })
    .on('step:failed', (e) => {
      progress.failed(e, now())
      if (!live) out(`${c.red('✗')} ${where(e)} failed after ${e.attempt} ${e.attempt === 1 ? 'attempt' : 'attempts'}: ${e.error.message}`)
    })
    .on('step:retrying', (e) => {
      progress.retrying(e, now())
      if (!live) out(`${c.yellow('↻')} ${where(e)} attempt ${e.attempt} failed, retrying as attempt ${e.nextAttempt} in ${formatMs(e.delayMs)}: ${e.error.message}`)
    })
    .on('step:skipped', (e) => {
      progress.skipped(e)
      if (!live) out(`– ${where(e)} skipped`)
    })
    .on('run:progress', (e) => {
      progress.progress(e)
      if (!live && shouldPrintProgress(e.done, e.total)) out(`▸ ${e.step} ${e.done}/${e.total} · ${e.itemsPerSecond.toFixed(1)} items/s`)
    })
    .on('run:parked', (e) => out(`⏸ run parked (${e.status}${e.event ? ` for "${e.event}"` : ''}${e.wakeAt ? ` until ${new Date(e.wakeAt).toISOString()}` : ''}); waiting in this process`))
    .on('run:resumed', () => out('▶ run resumed'))
    .on('log', (e) => out(c.dim(`  [${e.level}]${e.step ? ` ${e.step}:` : ''} ${e.message}${e.data === undefined ? '' : ` ${JSON.stringify(e.data)}`}`)))

  live?.start()
  let outcome: RunOutcome<unknown>
  try {
    outcome = await handle.outcome()
  } finally {
    process.off('SIGINT', interrupt)
    process.off('SIGTERM', interrupt)
    process.stdout.off('error', readerGone)
    progress.finish()
    live?.stop()
  }
  return report(outcome)
}

/** In logs, a `forEach` reports at every tenth of its items, not at every item. */
function shouldPrintProgress(done: number, total: number): boolean {
  if (done === total || total <= 10) return true
  const step = Math.ceil(total / 10)
  return Math.floor(done / step) !== Math.floor((done - 1) / step)
}

function report(outcome: RunOutcome<unknown>): number {
  const s = outcome.summary
  const print = (line = '') => process.stdout.write(line + '\n')
  print()
  if (outcome.status === 'completed') {
    print(`${c.green('✓')} run ${outcome.runId} completed in ${formatMs(s.wallMs)}`)
    print()
    print(c.bold('Result'))
    print(prettyJson(outcome.output))
  } else {
    print(`${c.red('✗')} run ${outcome.runId} ${outcome.status} after ${formatMs(s.wallMs)}`)
    print()
    print(c.bold('Error'))
    print(c.red(errorChain(outcome.error)))
  }
  print()
  print(c.bold('Summary'))
  print(`  wall time            ${formatMs(s.wallMs)}`)
  print(`  step time (summed)   ${formatMs(s.stepMs)} over ${s.steps} ${s.steps === 1 ? 'step' : 'steps'}`)
  print(`  parallel efficiency  ${s.parallelEfficiency.toFixed(2)}×`)
  print(`  critical path        ${s.criticalPath.length ? `${s.criticalPath.join(' → ')} (${formatMs(s.criticalPathMs)})` : '–'}`)
  return outcome.status === 'completed' ? EXIT.ok : EXIT.failed
}

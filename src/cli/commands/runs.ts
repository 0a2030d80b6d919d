import { existsSync } from 'node:fs'
import { deserializeError, type RunRecord, type RunStatus, type StepRecord, type Store } from '@stepline/core'
import { parse, positiveInt } from '../args'
import { CommandError, EXIT, UsageError } from '../errors'
import { c, errorChain, formatMs, formatTime, preview, table } from '../output'
import { DEFAULT_DB, journalPath, openStore } from '../store'

export const RUNS_HELP = `Usage: stepline runs [ls] [options]
       stepline runs show <id> [--db path]

Lists the runs in a journal, newest first, or shows one run and its journal.

Options:
  --db <path>        SQLite journal (default: ${DEFAULT_DB})
  --workflow <id>    only runs of this workflow
  --status <s>       only runs with this status (comma-separated: running,failed)
  --limit <n>        at most n runs (default 20)
  -h, --help         show this help`

const STATUSES: readonly RunStatus[] = ['queued', 'running', 'sleeping', 'waiting', 'completed', 'failed', 'cancelled']

/** `stepline runs [ls]` and `stepline runs show <id>`: read the journal, never run anything. */
export async function runsCommand(argv: string[]): Promise<number> {
  const { values, positionals: args } = parse('runs', argv, {
    db: { type: 'string' },
    workflow: { type: 'string', short: 'w' },
    status: { type: 'string', short: 's' },
    limit: { type: 'string', short: 'n' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) {
    console.log(RUNS_HELP)
    return EXIT.ok
  }
  // Options may come before the subcommand too: `stepline runs --db x.db show <id>`.
  const sub = args[0] === 'ls' || args[0] === 'show' ? args[0] : undefined
  const positionals = sub ? args.slice(1) : args
  if (sub === undefined && positionals.length) throw new UsageError(`stepline runs: unknown subcommand '${positionals[0]}'. Use \`stepline runs ls\` or \`stepline runs show <id>\`.`)
  if (sub === 'ls' && positionals.length) throw new UsageError(`stepline runs ls: unexpected argument '${positionals[0]}'.`)
  const [id, ...extra] = positionals
  if (sub === 'show' && id === undefined) throw new UsageError('stepline runs show: expected a run id, e.g. stepline runs show mip8k2x1c4f0a9zq3k7w1')
  if (sub === 'show' && extra.length) throw new UsageError(`stepline runs show: unexpected argument '${extra[0]}'.`)
  const limit = positiveInt('runs', 'limit', values.limit) ?? 20
  const db = journalPath('runs', values.db)
  // Opening a SQLite path creates the file; a mistyped --db should say so instead.
  if (!existsSync(db)) throw new UsageError(`stepline runs: no journal at ${db}. Start a run with \`stepline run <file>\` first, or pass --db <path>.`)
  const store = await openStore(db)
  try {
    return sub === 'show' ? await show(store, id!, db) : await list(store, values.workflow, values.status, limit)
  } finally {
    await store.close?.()
  }
}

async function list(store: Store, workflowId: string | undefined, status: string | undefined, limit: number): Promise<number> {
  const statuses = status?.split(',').map((s) => s.trim()) as RunStatus[] | undefined
  const bad = statuses?.find((s) => !STATUSES.includes(s))
  if (bad !== undefined) throw new UsageError(`stepline runs: unknown --status '${bad}'; expected one of ${STATUSES.join(', ')}.`)
  const runs = await store.listRuns({ limit, ...(workflowId ? { workflowId } : {}), ...(statuses ? { status: statuses } : {}) })
  if (runs.length === 0) {
    console.log('No runs.')
    return EXIT.ok
  }
  console.log(table(['ID', 'WORKFLOW', 'STATUS', 'CREATED', 'DURATION'], runs.map((r) => [r.id, r.workflowId, statusText(r.status), formatTime(r.createdAt), duration(r)])))
  return EXIT.ok
}

async function show(store: Store, id: string, db: string): Promise<number> {
  const run = await store.getRun(id)
  if (run === undefined) {
    throw new CommandError(`stepline runs show: no run "${id}" in the journal ${db}. List its runs with \`stepline runs ls\`, or pass the journal that has it with --db <path>.`)
  }
  const steps = await store.getSteps(id)
  const field = (k: string, v: string) => console.log(`${c.dim(k.padEnd(10))} ${v}`)
  field('run', c.bold(run.id))
  field('workflow', `${run.workflowId} ${c.dim(`(plan ${run.planHash})`)}`)
  field('status', statusText(run.status) + (run.attempt > 1 ? c.dim(` (attempt ${run.attempt})`) : ''))
  field('created', formatTime(run.createdAt))
  field('duration', duration(run))
  if (run.waitFor) field('waits for', `"${run.waitFor.event}"${run.waitFor.match ? ` (match ${run.waitFor.match})` : ''}`)
  if (run.wakeAt) field('wakes at', formatTime(run.wakeAt))
  field('payload', preview(run.payload, 100) || c.dim('none'))
  if (run.status === 'completed') field('output', preview(run.output, 100))
  if (run.error) field('error', c.red(errorChain(deserializeError(run.error)).split('\n').join('\n' + ' '.repeat(11))))
  console.log()
  if (steps.length === 0) {
    console.log(c.dim('No journal entries.'))
    return EXIT.ok
  }
  console.log(table(['STEP', 'KIND', 'STATUS', 'ATTEMPTS', 'DURATION', 'OUTPUT'], journalRows(steps)))
  return EXIT.ok
}

/** Journal entries as a tree: parents before children, indented by their depth in the plan. */
function journalRows(steps: StepRecord[]): string[][] {
  const depth = (s: StepRecord) => nodeDepth(s.nodeId)
  const ordered = steps.map((s, i) => ({ s, i })).sort((a, b) => a.s.startedAt - b.s.startedAt || depth(a.s) - depth(b.s) || a.i - b.i)
  return ordered
    .filter(({ s }) => s.kind !== 'decision')
    .map(({ s }) => [
      '  '.repeat(depth(s)) + s.name + (s.item ? s.item.map((i) => `[${i}]`).join('') : ''),
      s.kind,
      statusText(s.status) + (s.recovered ? c.dim(' (onError)') : ''),
      s.status === 'skipped' ? '' : String(s.attempts),
      s.status === 'skipped' ? '' : formatMs(s.durationMs),
      s.status === 'failed' && s.error ? c.red(cut(s.error.message.split('\n')[0] ?? '', 50)) : preview(s.output, 50),
    ])
}

/** Node ids are paths in the plan (`n3.body.n0`, `n2.c0.n1`): their depth is the number of nested node segments. */
function nodeDepth(nodeId: string): number {
  return Math.max(0, nodeId.split('.').filter((seg) => /^n\d+$/.test(seg) || /^b\d+$/.test(seg)).length - 1)
}

const cut = (s: string, max: number) => (s.length > max ? `${s.slice(0, max - 1)}…` : s)

function duration(r: RunRecord): string {
  if (r.startedAt === undefined) return '–'
  if (r.endedAt === undefined) return c.dim(`${formatMs(Date.now() - r.startedAt)} so far`)
  return formatMs(r.endedAt - r.startedAt)
}

function statusText(status: string): string {
  switch (status) {
    case 'completed':
      return c.green('✓ completed')
    case 'failed':
      return c.red('✗ failed')
    case 'cancelled':
      return c.yellow('⊘ cancelled')
    case 'running':
      return c.cyan('▶ running')
    case 'skipped':
      return c.dim('– skipped')
    case 'sleeping':
    case 'waiting':
      return c.yellow(`⏸ ${status}`)
    default:
      return status
  }
}

import type { AnyWorkflow, Engine, TriggerSpec } from '@stepline/core'
import { nonEmpty, parse, portNumber } from '../args'
import { CommandError, EXIT, UsageError } from '../errors'
import { checkUniqueIds, LOADABLE, loadWorkflows, moduleFiles } from '../load'
import { c, formatMs } from '../output'
import { DEFAULT_DB, journalPath, openStore, undoNewJournal } from '../store'

export const SERVE_HELP = `Usage: stepline serve <dir|file> [options]

Serves the workflows exported by <file>, or by the .ts/.mts/.cts/.tsx/.js/.mjs/.cjs files at
the top of <dir>: webhooks, the run API and cron schedules, on a SQLite journal. Unfinished
runs resume on start.

Options:
  --port <n>       port (default 3000; 0 picks a free one)
  --host <host>    interface to bind (default 127.0.0.1)
  --db <path>      SQLite journal (default: ${DEFAULT_DB})
  --token <t>      bearer token the run API requires (default: $STEPLINE_TOKEN, else none)
  -h, --help       show this help

SIGINT/SIGTERM stop accepting requests and schedules, then wait for runs in flight; a second
signal exits at once (those runs resume from the journal on the next start).`

/** What the CLI uses of `@stepline/server`. */
interface ServerModule {
  serve(options: { engine: Engine; workflows: AnyWorkflow[]; token?: string; port?: number; host?: string }): Promise<{ url: string; port: number; close(): Promise<void> | void }>
  startSchedules(engine: Engine, workflows: AnyWorkflow[]): { stop(): void | Promise<void> }
}

const stamp = () => new Date().toISOString().slice(11, 23)
const log = (line: string) => console.log(`${c.dim(stamp())} ${line}`)

/** `stepline serve`: webhooks, run API and schedules until SIGINT/SIGTERM. */
export async function serveCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('serve', argv, {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    db: { type: 'string' },
    token: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) {
    console.log(SERVE_HELP)
    return EXIT.ok
  }
  const [target, ...extra] = positionals
  if (target === undefined) throw new UsageError('stepline serve: expected a workflow file or directory, e.g. stepline serve ./workflows')
  if (extra.length) throw new UsageError(`stepline serve: unexpected argument '${extra[0]}'.`)
  const port = portNumber('serve', values.port, 3000)
  // Node binds every interface to an empty host, and serves the run API to anyone with an empty token.
  const host = nonEmpty('serve', 'host', values.host, 'Pass 127.0.0.1 for this machine only, 0.0.0.0 for every interface, or leave --host out for 127.0.0.1.') ?? '127.0.0.1'
  const token = nonEmpty('serve', 'token', values.token, 'Pass the token the run API should require, or leave --token out (the run API then requires $STEPLINE_TOKEN if set, else none).') ?? process.env.STEPLINE_TOKEN
  const db = journalPath('serve', values.db)

  const files = moduleFiles(target, true)
  if (files.length === 0) throw new UsageError(`stepline serve: no workflow files (${[...LOADABLE].join(', ')}) at the top of ${target}.`)
  const { found, core } = await loadWorkflows(files)
  const workflows = found.map((f) => f.workflow)
  if (workflows.length === 0) throw new UsageError(`stepline serve: no workflow is exported by ${target}. Export one: export const order = workflow('order').step(…)`)
  checkUniqueIds('serve', found)

  const server = (await import('@stepline/server')) as unknown as Partial<ServerModule>
  if (typeof server.serve !== 'function' || typeof server.startSchedules !== 'function') {
    throw new Error('This @stepline/server has no serve()/startSchedules(); install a matching version of @stepline/server.')
  }
  const discardJournal = undoNewJournal(db)
  const store = await openStore(db, { server: true })
  // The engine resumes unfinished runs of these workflows from the journal as it registers them.
  const engine = core.createEngine({ store, workflows })
  engine
    .on('run:started', (e) => log(`${c.cyan('▶')} ${e.workflowId} ${e.runId} started`))
    .on('run:resumed', (e) => log(`${c.cyan('↻')} ${e.workflowId} ${e.runId} resumed (attempt ${e.attempt})`))
    .on('run:parked', (e) => log(`${c.yellow('⏸')} ${e.workflowId} ${e.runId} ${e.status}${e.event ? ` for "${e.event}"` : ''}`))
    .on('run:completed', (e) => log(`${c.green('✓')} ${e.workflowId} ${e.runId} completed in ${formatMs(e.summary.wallMs)}`))
    .on('run:failed', (e) => log(`${c.red('✗')} ${e.workflowId} ${e.runId} failed after ${formatMs(e.summary.wallMs)}: ${e.error.message}`))
    .on('run:cancelled', (e) => log(`${c.yellow('⊘')} ${e.workflowId} ${e.runId} cancelled: ${e.error.message}`))

  let http: Awaited<ReturnType<ServerModule['serve']>>
  try {
    http = await server.serve({ engine, workflows, port, host, ...(token ? { token } : {}) })
  } catch (error) {
    await engine.close()
    await store.close?.()
    discardJournal()
    throw listenError(error, port, host)
  }
  const schedules = server.startSchedules(engine, workflows)

  console.log(`${c.bold('stepline')} serving ${workflows.length} ${workflows.length === 1 ? 'workflow' : 'workflows'} (${workflows.map((w) => w.id).join(', ')}) on ${c.cyan(http.url)}`)
  console.log(c.dim(`journal ${db}${token ? ' · run API requires a bearer token' : ''}`))
  const hook = firstWebhook(workflows)
  if (hook) {
    const body = hook.schema ? `'<JSON matching the input schema>'` : `'{}'`
    console.log(`try: curl -X ${hook.method} ${http.url.replace(/\/$/, '')}/webhooks/${hook.path.replace(/^\//, '')} -H 'content-type: application/json' -d ${body}`)
  }

  return new Promise<number>((resolve) => {
    let stopping = false
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log(c.red(`${signal} again: exiting now; unfinished runs resume from the journal on the next start`))
        process.exit(signal === 'SIGINT' ? 130 : 143)
      }
      stopping = true
      log(`${signal}: shutting down${engine.activeRuns ? `, waiting for ${engine.activeRuns} ${engine.activeRuns === 1 ? 'run' : 'runs'} in flight (${signal} again to exit now)` : ''}`)
      void (async () => {
        // Stop taking requests first, but do not let a lingering connection hold up the drain.
        const closing = Promise.resolve(http.close())
        await schedules.stop()
        await engine.close()
        await Promise.race([closing, new Promise((r) => setTimeout(r, 3000).unref())])
        await store.close?.()
        log('stopped')
        resolve(EXIT.ok)
      })().catch((error: unknown) => {
        console.error(error)
        resolve(EXIT.failed)
      })
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
  })
}

/** A failed listen that --port or --host caused, as what is wrong and how to fix it; any other error as it is. */
function listenError(error: unknown, port: number, host: string): unknown {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'EADDRINUSE':
      return new CommandError(`stepline serve: port ${port} on ${host} is already in use. Stop what listens there, pick another port with --port <n>, or pass --port 0 for a free one.`)
    case 'EACCES':
      return new CommandError(
        `stepline serve: port ${port} on ${host} needs privileges this process does not have (on most systems every port below 1024 does). Pick a port from 1024 up with --port <n>, or pass --port 0 for a free one.`,
      )
    case 'EADDRNOTAVAIL':
      return new CommandError(
        `stepline serve: --host ${host} is not an address of this machine, so nothing can listen on it. Pass one of its addresses: 127.0.0.1 for this machine only, 0.0.0.0 for every interface.`,
      )
    default:
      return error
  }
}

function firstWebhook(workflows: AnyWorkflow[]): { path: string; method: string; schema: boolean } | undefined {
  for (const wf of workflows) {
    const options = (wf as unknown as { options?: { triggers?: readonly TriggerSpec[]; input?: unknown } }).options
    for (const t of options?.triggers ?? []) {
      if (t.kind === 'webhook' && typeof t.path === 'string') {
        // A payload schema refuses `{}` (422): the hint then says what the body must be.
        const schema = options?.input !== undefined || (t as { schema?: unknown }).schema !== undefined
        return { path: t.path, method: typeof t.method === 'string' ? t.method : 'POST', schema }
      }
    }
  }
  return undefined
}

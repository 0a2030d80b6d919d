/**
 * The `stepline` command: `run | serve | graph | runs`. Built to `dist/cli.js`, the umbrella
 * package's bin.
 */
import { version } from '../../package.json'
import { graphCommand } from './commands/graph'
import { runCommand } from './commands/run'
import { runsCommand } from './commands/runs'
import { serveCommand } from './commands/serve'
import { CommandError, EXIT, UsageError } from './errors'
import { cErr, errorChain } from './output'

const HELP = `stepline ${version} — durable, typed workflows for TypeScript

Usage:
  stepline run <file> [--payload JSON | --payload-file F] [--workflow id] [--db path | --memory]
  stepline serve <dir|file> [--port 3000] [--host 127.0.0.1] [--db path] [--token T]
  stepline graph <file> [--workflow id] [--format mermaid|json]
  stepline runs [ls] [--db path] [--workflow id] [--status s] [--limit n]
  stepline runs show <id> [--db path]

Options:
  -h, --help       show help (of a command too: stepline run --help, stepline help run)
  -v, --version    print the version

The journal defaults to ./.stepline/stepline.db. TypeScript files load directly.`

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  run: runCommand,
  serve: serveCommand,
  graph: graphCommand,
  runs: runsCommand,
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv
  // `stepline help run` is `stepline run --help`.
  if (command === 'help' && rest[0] !== undefined && rest[0] in COMMANDS) return COMMANDS[rest[0]]!(['--help'])
  if (command === '-h' || command === '--help' || command === 'help') {
    console.log(HELP)
    return EXIT.ok
  }
  if (command === undefined) {
    // A call without a command is a usage error: its help goes where errors go, not into a pipe.
    console.error(HELP)
    return EXIT.usage
  }
  if (command === '-v' || command === '--version') {
    console.log(version)
    return EXIT.ok
  }
  const run = COMMANDS[command]
  if (run === undefined) throw new UsageError(`Unknown command '${command}'. Commands: ${Object.keys(COMMANDS).join(', ')}.`)
  return run(rest)
}

/**
 * Exits once stdout and stderr have flushed. A command is done when its promise settles, but a
 * workflow module may hold handles (a database pool, a timer, a step still running after a
 * cancel) that would otherwise keep the process alive.
 */
function exit(code: number): void {
  process.exitCode = code
  process.stdout.write('', () => process.stderr.write('', () => process.exit()))
}

// A reader that went away (`stepline run … | head -3`) ends the output, quietly, as it does for
// other Unix tools; what is left to print is dropped. `run` also cancels its run (commands/run).
process.stdout.on('error', () => undefined)
process.stderr.on('error', () => undefined)

main(process.argv.slice(2)).then(exit, (error: unknown) => {
  if (error instanceof UsageError) {
    console.error(`${cErr.red('error:')} ${error.message}\nRun \`stepline --help\` for usage.`)
    exit(EXIT.usage)
  } else if (error instanceof CommandError) {
    console.error(`${cErr.red('error:')} ${error.message}`)
    exit(EXIT.failed)
  } else {
    console.error(`${cErr.red('error:')} ${errorChain(error)}`)
    if (process.env.STEPLINE_DEBUG && error instanceof Error) console.error(error.stack)
    exit(EXIT.failed)
  }
})

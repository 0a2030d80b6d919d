import { parse } from '../args'
import { EXIT, UsageError } from '../errors'
import { checkUniqueIds, loadWorkflows, moduleFiles, pickWorkflow } from '../load'

export const GRAPH_HELP = `Usage: stepline graph <file> [options]

Prints a workflow's compiled plan: a Mermaid flowchart, or the plan as JSON.

Options:
  --workflow <id>          which workflow, when the file exports several (default: the first)
  --format mermaid|json    output format (default: mermaid)
  -h, --help               show this help`

/** `stepline graph`: the plan as Mermaid or JSON. */
export async function graphCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse('graph', argv, {
    workflow: { type: 'string', short: 'w' },
    format: { type: 'string', short: 'f' },
    help: { type: 'boolean', short: 'h' },
  })
  if (values.help) {
    console.log(GRAPH_HELP)
    return EXIT.ok
  }
  const format = values.format ?? 'mermaid'
  if (format !== 'mermaid' && format !== 'json') throw new UsageError(`stepline graph: expected --format mermaid or json, got '${format}'.`)
  const [file, ...extra] = positionals
  if (file === undefined) throw new UsageError('stepline graph: expected a workflow file, e.g. stepline graph ./workflow.ts')
  if (extra.length) throw new UsageError(`stepline graph: unexpected argument '${extra[0]}'.`)
  const { found, core } = await loadWorkflows(moduleFiles(file, false))
  const wf = pickWorkflow(found, values.workflow, file).workflow
  checkUniqueIds('graph', found, wf.id)
  const plan = wf.plan()
  process.stdout.write((format === 'json' ? JSON.stringify(plan, null, 2) : core.toMermaid(plan)) + '\n')
  return EXIT.ok
}

// A process that parks a run in a long sleep and exits (mode "start"), and one that picks it up
// after a restart and waits for it to finish (mode "resume").
import { createEngine, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'

const [dbPath, mode] = process.argv.slice(2)
const napper = workflow('napper').step('before', () => Date.now()).sleep('nap', '1500ms').step('after', (ctx) => ({ before: ctx.steps.before.output, after: Date.now() }))
const store = sqliteStore({ path: dbPath })
const engine = createEngine({ store, workflows: [napper] })
if (mode === 'start') {
  const handle = await engine.start(napper)
  while ((await engine.getRun(handle.id))?.status !== 'sleeping') await new Promise((r) => setTimeout(r, 10))
  console.log(JSON.stringify({ runId: handle.id, status: 'sleeping' }))
  process.exit(0) // no close(): the process just goes away with the run parked
}
const [run] = await engine.listRuns({ workflowId: 'napper' })
const outcome = await engine.handle(run.id).outcome()
console.log(JSON.stringify({ runId: run.id, status: outcome.status, output: outcome.output }))
await engine.close()

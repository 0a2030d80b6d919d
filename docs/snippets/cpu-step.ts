import { cpu, workflow } from '@stepline/core'

interface Doc { id: string; text: string }
declare function loadDocs(): Promise<Doc[]>

const task = new URL('./score.task.js', import.meta.url) // resolved against this file, not the cwd

const docs = workflow<{ rounds: number }>('docs')
  .step('load', () => loadDocs())
  .step('first', (ctx) => ctx.last[0]!)
  // A step: cpu<Out>() types its output; the worker gets last and the run identity (payload: true adds the payload).
  .step('digest', cpu<{ id: string; digest: string }>(task, { payload: true }))
  // Parallel branches: cpu tasks and plain functions mix; the output is still a typed tuple.
  .parallel('both', [cpu<number>(task, { export: 'wordCount' }), (ctx) => ctx.last.id])
  // `steps` names earlier steps whose outputs the worker receives in input.steps.
  .step('count', cpu<number>({ module: task, export: 'wordCount' }, { steps: ['load'] }))
  // A forEach body: one pool task per chunk of 25 documents, results in input order.
  .forEach('score', (ctx) => ctx.steps.load.output, cpu<{ id: string; digest: string }>(task), { concurrency: 4, chunkSize: 25 })
  .step('report', (ctx) => ctx.last.map((r) => r.id)) // ctx.last: { id; digest }[]

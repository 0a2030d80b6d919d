import { createEngine, workflow } from '@stepline/core'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const wf = workflow('summary')
  .parallel('fetch', [() => sleep(30), () => sleep(60)])
  .step('combine', () => sleep(10))

const outcome = await (await createEngine().start(wf)).outcome()
const s = outcome.summary
console.log(s.wallMs) // ≈ 70: start to end
console.log(s.stepMs) // ≈ 100: 30 + 60 + 10, every step and branch added up
console.log(s.parallelEfficiency) // ≈ 1.4: stepMs / wallMs
console.log(s.criticalPath) // [ 'fetch[1]', 'combine' ]
console.log(s.criticalPathMs) // ≈ 70
console.log(s.steps) // 3 leaves ran

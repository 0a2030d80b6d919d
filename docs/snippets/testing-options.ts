import { inlineExecutor, memoryStore, workflow } from '@stepline/core'
import { fakeClock, testRun } from '@stepline/testing'

const report = workflow<{ month: string }>('report')
  .forEach('regions', () => ['eu', 'us', 'apac'], (region, flow) => flow.step('fetch-region', () => `${region} figures`))
  .step('render', (ctx) => ctx.last.join('\n'))

const store = memoryStore() // keep the journal to inspect it afterwards, or pass any Store
const run = await testRun(report, { month: '2026-01' }, {
  mocks: { 'fetch-region': (ctx) => `mocked ${String(ctx.item)}` }, // by step name
  strict: false, // true: reaching a step without a mock fails the test
  clock: fakeClock({ start: new Date('2026-02-01T00:00:00Z'), idleMs: 50 }), // or 'real'
  store,
  executor: inlineExecutor(), // runs the steps that are not mocked
  concurrency: 2, // steps in flight at once, as createEngine({ concurrency })
  realTimeoutMs: 5_000, // give up (reject) after 5 s of real time
})
console.log(run.output) // 'mocked eu\nmocked us\nmocked apac'
console.log((await store.getSteps(run.runId)).length) // the same entries as run.journal

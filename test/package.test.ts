import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

// The test command builds before it tests; these check the built packages as a user loads them.
const root = fileURLToPath(new URL('..', import.meta.url))
const built = existsSync(`${root}/dist/index.js`) && existsSync(`${root}/packages/core/dist/index.cjs`) && existsSync(`${root}/dist/testing.js`)

const program = (load: string): string => `
${load}
const wf = workflow('pkg').step('a', (ctx) => ctx.payload + 1).parallel('p', [(ctx) => ctx.last * 2, (ctx) => ctx.last * 3])
createEngine().run(wf, 1).then((out) => console.log(JSON.stringify(out)))
`

describe.runIf(built)('built packages', () => {
  it('the umbrella package loads as ESM and runs a workflow', () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', program(`import { workflow, createEngine } from 'stepline'`)], { cwd: root })
    expect(JSON.parse(out.toString())).toEqual([4, 6])
  })

  it('stepline/testing loads as ESM and runs a workflow on virtual time', () => {
    const code = `import { workflow } from 'stepline'
import { testRun } from 'stepline/testing'
const wf = workflow('t').sleep('week', '7d').step('a', () => 'done')
const run = await testRun(wf)
console.log(JSON.stringify([run.status, run.output, run.clock.elapsed()]))`
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', code], { cwd: root })
    expect(JSON.parse(out.toString())).toEqual(['completed', 'done', 7 * 86_400_000])
  })

  it('@stepline/core loads as CommonJS and runs a workflow', () => {
    const out = execFileSync(process.execPath, ['-e', program(`const { workflow, createEngine } = require('@stepline/core')`)], { cwd: root })
    expect(JSON.parse(out.toString())).toEqual([4, 6])
  })
})

if (!built) console.warn('built packages: skipped because dist/ is missing; run `pnpm build` first (the test command does).')

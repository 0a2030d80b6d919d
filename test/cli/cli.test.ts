import { execFile, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

// These run the built bin as a user does; the test command builds before it tests.
const root = fileURLToPath(new URL('../..', import.meta.url))
const cli = join(root, 'dist/cli.js')
const built = existsSync(cli)
const fixture = 'test/fixtures/cli/workflows.ts'
const dir = mkdtempSync(join(tmpdir(), 'stepline-cli-'))
const db = join(dir, 'runs.db')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g
const strip = (s: string) => s.replace(ANSI, '')

interface Result {
  code: number
  stdout: string
  stderr: string
}

function stepline(args: string[], env: Record<string, string> = {}, cwd = root, user: { uid?: number; gid?: number } = {}): Promise<Result> {
  return new Promise((resolve) => {
    // The timeout turns a CLI that never exits into a failed test instead of a hung one.
    execFile(process.execPath, [cli, ...args], { cwd, timeout: 15_000, env: { ...process.env, NO_COLOR: '1', FORCE_TTY: '', ...env }, ...user }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
    })
  })
}

/** A user's project in a temporary folder: its files, with `stepline` installed (linked to this repository). */
function project(files: Record<string, string>, packageJson: Record<string, unknown> = { name: 'app', type: 'module' }): string {
  const at = mkdtempSync(join(dir, 'project-'))
  writeFileSync(join(at, 'package.json'), JSON.stringify(packageJson))
  mkdirSync(join(at, 'node_modules'))
  symlinkSync(root, join(at, 'node_modules', 'stepline'), 'dir')
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(at, name, '..'), { recursive: true })
    writeFileSync(join(at, name), text)
  }
  return at
}

const demoPayload = JSON.stringify({ total: 150, items: [1, 2, 3, 4, 5, 6] })

describe.runIf(built)('stepline CLI', () => {
  it('--help and --version', async () => {
    const help = await stepline(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('stepline run <file>')
    expect(help.stdout).toContain('stepline runs show <id>')
    const version = await stepline(['--version'])
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+/)
    const helpRun = await stepline(['help', 'run'])
    expect([helpRun.code, helpRun.stdout]).toEqual([0, expect.stringMatching(/^Usage: stepline run <file> \[options\]/)])
    // No command at all is a usage error: the help goes to stderr, stdout stays empty.
    const bare = await stepline([])
    expect([bare.code, bare.stdout]).toEqual([2, ''])
    expect(bare.stderr).toContain('stepline run <file>')
  })

  it('usage errors exit 2 and say what to do', async () => {
    const unknown = await stepline(['frobnicate'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("Unknown command 'frobnicate'")
    const badJson = await stepline(['run', fixture, '--payload', '{nope', '--memory'])
    expect(badJson.code).toBe(2)
    expect(badJson.stderr).toContain('expected --payload as JSON')
    const missing = await stepline(['run', 'test/fixtures/cli/nope.ts'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('No such file or directory')
    const wrongId = await stepline(['run', fixture, '--workflow', 'nope', '--memory'])
    expect(wrongId.code).toBe(2)
    expect(wrongId.stderr).toContain('No workflow "nope"')
    expect(wrongId.stderr).toContain('"cli-broken", "cli-demo"')
    const notes = project({ 'notes.txt': 'hello\n', 'bad.ts': 'export const x = ;\n' })
    const notModule = await stepline(['graph', 'notes.txt'], {}, notes)
    expect(notModule.code).toBe(2)
    expect(notModule.stderr).toContain('notes.txt is not a module Stepline can load: expected one of .ts, .mts, .cts, .tsx, .js, .mjs, .cjs.')
    // A module that does not load is the file's fault (exit 1): the line says which file, the cause what is wrong.
    const syntax = await stepline(['run', 'bad.ts', '--memory'], {}, notes)
    expect(syntax.code).toBe(1)
    expect(syntax.stderr).toMatch(/^error: could not load \S*bad\.ts\n {2}caused by: TransformError: /)
  })

  it('run prints one plain line per event, the result and the summary when stdout is not a terminal', async () => {
    const r = await stepline(['run', fixture, '--workflow', 'cli-demo', '--payload', demoPayload, '--db', db])
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^▶ run \S+ · workflow "cli-demo"$/)
    expect(lines).toContain('· validate started')
    expect(lines).toContainEqual(expect.stringMatching(/^✓ fetch\[0\] \d+ ms$/))
    expect(lines).toContainEqual(expect.stringMatching(/^↻ charge attempt 1 failed, retrying as attempt 2 in 30 ms: card network busy$/))
    expect(lines).toContainEqual(expect.stringMatching(/^✓ charge \d+ ms \(2 attempts\)$/))
    expect(lines).toContain('– review skipped')
    expect(lines).toContainEqual(expect.stringMatching(/^✓ reserve-item\[5\] \d+ ms$/))
    expect(lines).toContainEqual(expect.stringMatching(/^▸ reserve 6\/6 · [\d.]+ items\/s$/))
    expect(r.stdout).not.toMatch(ANSI)
    const result = r.stdout.slice(r.stdout.indexOf('Result\n') + 7, r.stdout.indexOf('\n\nSummary'))
    expect(JSON.parse(result)).toEqual({ reserved: [10, 20, 30, 40, 50, 60], approval: 'approved' })
    expect(r.stdout).toMatch(/wall time +\d+ ms/)
    expect(r.stdout).toMatch(/step time \(summed\) +\d+ ms over 12 steps/)
    expect(r.stdout).toMatch(/parallel efficiency +[\d.]+×/)
    expect(r.stdout).toMatch(/critical path +validate → fetch\[0\] → charge → auto-approve → reserve-item\[\d\] → done \(\d+ ms\)/)
  })

  it('a failed run exits 1 and prints the error with its cause chain', async () => {
    const r = await stepline(['run', fixture, '--db', db])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('exports 2 workflows (cli-broken, cli-demo); running "cli-broken"')
    expect(r.stdout).toMatch(/^✗ charge failed after 1 attempt: card declined$/m)
    expect(r.stdout).toMatch(/^✗ run \S+ failed after \d+ ms$/m)
    expect(r.stdout).toContain('StepError [STEP_FAILED]: Step "charge" failed')
    expect(r.stdout).toContain('caused by: Error: card declined')
    expect(r.stdout).toContain('caused by: Error: gateway said 402')
  })

  it('run draws a live tree in a terminal', async () => {
    const args = ['run', fixture, '-w', 'cli-demo', '--payload', demoPayload, '--memory']
    // A real pseudo-terminal when util-linux `script` is there; FORCE_TTY otherwise.
    const hasScript = process.platform === 'linux' && spawnable('script')
    const r = hasScript
      ? await run('script', ['-qfec', [process.execPath, cli, ...args].map(shellQuote).join(' '), '/dev/null'])
      : await stepline(args, { FORCE_TTY: '1' })
    expect(r.code).toBe(0)
    const out = r.stdout.replace(/\r\n/g, '\n')
    expect(out).toMatch(/\x1b\[\d+A/) // cursor up over the previous frame
    expect(out).toContain('\x1b[?25l') // cursor hidden while drawing, shown after
    expect(out).toContain('\x1b[?25h')
    const finalFrame = strip(out.slice(out.lastIndexOf('\x1b[J'), out.indexOf('\x1b[?25h', out.lastIndexOf('\x1b[J'))))
    const lines = finalFrame.split('\n').map((l) => l.trimEnd())
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}✓ validate {2}· \d+ ms$/))
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}✓ fetch \(parallel\) {2}· \d+ ms$/))
    expect(lines).toContainEqual(expect.stringMatching(/^ {4}✓ fetch\[1\] {2}· \d+ ms$/))
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}✓ charge {2}· \d+ ms · 1 retry$/))
    expect(lines).toContain('    – if large')
    expect(lines).toContain('      – review')
    expect(lines).toContainEqual(expect.stringMatching(/^ {2}✓ reserve \(forEach\) {2}· \d+ ms · █{20} 6\/6 [\d.]+ items\/s$/))
    expect(lines).toContainEqual(expect.stringMatching(/^ {4}✓ reserve-item {2}· 6 done · avg \d+ ms$/))
    expect(strip(out)).toContain('"approval": "approved"')
  })

  it('graph prints Mermaid or the plan as JSON', async () => {
    const mermaid = await stepline(['graph', fixture, '-w', 'cli-demo'])
    expect(mermaid.code).toBe(0)
    expect(mermaid.stdout).toMatch(/^flowchart TD\n {2}start\(\["cli-demo"\]\)/)
    expect(mermaid.stdout).toContain('{{"parallel fetch"}}')
    const json = await stepline(['graph', fixture, '--workflow', 'cli-demo', '--format', 'json'])
    const plan = JSON.parse(json.stdout)
    expect(plan.workflowId).toBe('cli-demo')
    expect(plan.nodes.map((n: { kind: string }) => n.kind)).toEqual(['step', 'parallel', 'step', 'branch', 'forEach', 'step'])
    expect((await stepline(['graph', fixture, '--format', 'svg'])).code).toBe(2)
  })

  it('runs ls and runs show read the journal of earlier runs', async () => {
    const ls = await stepline(['runs', '--db', db])
    expect(ls.code).toBe(0)
    const rows = ls.stdout.trim().split('\n')
    expect(rows[0]).toMatch(/^ID +WORKFLOW +STATUS +CREATED +DURATION$/)
    expect(rows).toHaveLength(3) // the failed run, then the completed one (newest first)
    expect(rows[1]).toMatch(/cli-broken +✗ failed +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d +\d+ ms$/)
    expect(rows[2]).toMatch(/cli-demo +✓ completed/)
    const failed = await stepline(['runs', 'ls', '--db', db, '--status', 'failed', '--limit', '5'])
    expect(failed.stdout.trim().split('\n')).toHaveLength(2)
    const id = rows[2]!.split(/ +/)[0]!
    const show = await stepline(['runs', 'show', id, '--db', db])
    expect(show.code).toBe(0)
    expect(show.stdout).toMatch(new RegExp(`^run +${id}$`, 'm'))
    expect(show.stdout).toMatch(/^status +✓ completed$/m)
    expect(show.stdout).toMatch(/^STEP +KIND +STATUS +ATTEMPTS +DURATION +OUTPUT$/m)
    expect(show.stdout).toMatch(/^charge +step +✓ completed +2 +\d+ ms +\{"charged":true\}$/m)
    expect(show.stdout).toMatch(/^ {2}fetch\[0\] +fn +✓ completed +1 +\d+ ms +"user"$/m)
    expect(show.stdout).toMatch(/^ {2}review +step +– skipped$/m)
    expect(show.stdout).toMatch(/^ {2}reserve-item\[3\] +step +✓ completed +1 +\d+ ms +40$/m)
    const missing = await stepline(['runs', 'show', 'nope', '--db', db])
    expect(missing.code).toBe(1)
    expect(missing.stderr).toBe(`error: stepline runs show: no run "nope" in the journal ${db}. List its runs with \`stepline runs ls\`, or pass the journal that has it with --db <path>.\n`)
    // Options may come before the subcommand.
    const optionsFirst = await stepline(['runs', '--db', db, 'show', id])
    expect(optionsFirst.code, optionsFirst.stderr).toBe(0)
    expect(optionsFirst.stdout).toMatch(new RegExp(`^run +${id}$`, 'm'))
    expect((await stepline(['runs', '--db', db, 'ls'])).stdout).toBe(ls.stdout)
    expect((await stepline(['runs', '--db', join(dir, 'absent.db')])).code).toBe(2)
  })
  it.each(['SIGINT', 'SIGTERM'] as const)('%s (Ctrl-C, or a timeout stopping the CLI) cancels a run that is parked in a sleep, in the journal too, and the CLI exits 1', async (signal) => {
    const at = project({ 'nap.ts': `import { workflow } from 'stepline'\nexport const nap = workflow('nap').step('a', () => 1).sleep('nap', '1h').step('b', () => 2)\n` })
    const child = spawn(process.execPath, [cli, 'run', 'nap.ts', '--db', 'nap.db'], { cwd: at, env: { ...process.env, NO_COLOR: '1', FORCE_TTY: '' } })
    let stdout = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stdout += d))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    try {
      await until(() => stdout.includes('run parked'), () => `the run did not park: ${stdout}`)
      child.kill(signal)
      const code = await Promise.race([exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 5000))])
      expect(code, stdout).toBe(1)
      expect(stdout).toContain(`interrupted (${signal}): cancelling the run`)
      expect(stdout).toMatch(/^✗ run \S+ cancelled after/m)
      const ls = await stepline(['runs', 'ls', '--db', 'nap.db'], {}, at)
      expect(ls.stdout).toMatch(/cancelled/)
      expect(ls.stdout).not.toMatch(/running|sleeping/)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('run and graph exit when they are done even if the workflow module keeps the event loop busy', async () => {
    // Like a database pool or a client created when the module loads.
    const at = project({ 'pooled.ts': `import { workflow } from 'stepline'\nsetInterval(() => {}, 1000)\nexport const pooled = workflow('pooled').step('a', () => 'ok')\n` })
    const run = await stepline(['run', 'pooled.ts', '--memory'], {}, at)
    expect(run.code, run.stderr).toBe(0)
    expect(run.stdout).toContain('"ok"')
    const graph = await stepline(['graph', 'pooled.ts'], {}, at)
    expect(graph.code, graph.stderr).toBe(0)
    expect(graph.stdout).toMatch(/^flowchart TD/)
    const unknown = await stepline(['graph', 'pooled.ts', '-w', 'nope'], {}, at)
    expect(unknown.code).toBe(2)
  })

  it('loads TypeScript workflow files of a CommonJS package (no "type": "module")', async () => {
    const at = project(
      { 'workflows/order.ts': `import { workflow } from 'stepline'\nexport const order = workflow('order').step('charge', () => ({ charged: true }))\n` },
      { name: 'app', version: '1.0.0' },
    )
    const r = await stepline(['run', 'workflows/order.ts', '--memory'], {}, at)
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^▶ run \S+ · workflow "order"$/m)
    expect(r.stdout).toContain('"charged": true')
    const graph = await stepline(['graph', 'workflows/order.ts', '--format', 'json'], {}, at)
    expect(graph.code, graph.stderr).toBe(0)
    expect(JSON.parse(graph.stdout).workflowId).toBe('order')
  })

  it('run cancels its run and ends quietly, exit 1, when the reader of its output goes away (| head -1)', async () => {
    const at = project({
      'chatty.ts': `import { workflow } from 'stepline'
export const chatty = workflow('chatty').step('talk', async (ctx) => {
  for (let i = 0; i < 1000 && !ctx.signal.aborted; i++) {
    ctx.log.info(\`line \${i}\`)
    await new Promise((r) => setTimeout(r, 10))
  }
})
`,
    })
    const journal = join(at, 'runs.db')
    const child = spawn(process.execPath, [cli, 'run', 'chatty.ts', '--db', journal], { cwd: at, env: { ...process.env, NO_COLOR: '1', FORCE_TTY: '' } })
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    try {
      await once(child.stdout, 'data')
      child.stdout.destroy() // what `head -1` does once it has its line
      const code = await Promise.race([exited, new Promise<'alive'>((r) => setTimeout(() => r('alive'), 5000))])
      expect(stderr).toBe('')
      expect(code).toBe(1)
    } finally {
      child.kill('SIGKILL')
    }
    const runs = await stepline(['runs', '--db', journal], {}, at)
    expect(runs.stdout).toMatch(/ chatty +⊘ cancelled /)
  })

  it('NO_COLOR turns colours off only when it is not empty (no-color.org)', async () => {
    expect((await stepline(['frobnicate'], { NO_COLOR: '', FORCE_TTY: '1' })).stderr).toContain('\x1b[31merror:')
    expect((await stepline(['frobnicate'], { NO_COLOR: '1', FORCE_TTY: '1' })).stderr).not.toMatch(ANSI)
  })

  const hasScript = process.platform === 'linux' && spawnable('script')
  if (!hasScript) console.warn('stepline CLI: the stderr colour test is skipped because util-linux `script` (a pseudo-terminal) is not installed.')
  it.runIf(hasScript)('colours stderr when stderr is a terminal, whatever stdout is', async () => {
    // In a pseudo-terminal, with one of the two streams sent to a file.
    const inTerminal = (redirect: string) => run('script', ['-qfec', `env -u NO_COLOR ${shellQuote(process.execPath)} ${shellQuote(cli)} frobnicate ${redirect}`, '/dev/null'])
    const stderrOnTerminal = await inTerminal('> /dev/null')
    expect(stderrOnTerminal.code).toBe(2)
    expect(stderrOnTerminal.stdout).toContain('\x1b[31merror:')
    const file = join(dir, 'stderr.txt')
    const stdoutOnTerminal = await inTerminal(`2> ${shellQuote(file)}`)
    expect(stdoutOnTerminal.code).toBe(2)
    expect(readFileSync(file, 'utf8')).toMatch(/^error: Unknown command 'frobnicate'/)
  })

  it('serve refuses two workflows with one id and names where each comes from', async () => {
    const wf = (step: string) => `import { workflow } from 'stepline'\nexport const order = workflow('order').step('${step}', () => 1)\n`
    const at = project({ 'workflows/order.ts': wf('charge'), 'workflows/order-copy.ts': wf('charge') })
    const r = await stepline(['serve', 'workflows', '--port', '0', '--db', join(at, 'serve.db')], {}, at)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('workflow id "order" is exported twice')
    expect(r.stderr).toContain(`${join(at, 'workflows/order-copy.ts')} (export "order")`)
    expect(r.stderr).toContain(`${join(at, 'workflows/order.ts')} (export "order")`)
  })

  it('run and graph refuse two workflows with the id they would run, instead of picking one unseen', async () => {
    const wf = (step: string) => `workflow('order').step('${step}', () => '${step}')`
    const at = project({ 'orders.ts': `import { workflow } from 'stepline'\nexport const order = ${wf('old')}\nexport const orderV2 = ${wf('new')}\n` })
    for (const args of [['run', 'orders.ts', '-w', 'order', '--memory'], ['graph', 'orders.ts']]) {
      const r = await stepline(args, {}, at)
      expect(r.code, r.stdout).toBe(2)
      expect(r.stderr).toContain(`stepline ${args[0]}: workflow id "order" is exported twice, by ${join(at, 'orders.ts')} (export "order") and by ${join(at, 'orders.ts')} (export "orderV2")`)
    }
  })

  it('serve takes --port 0 to 65535, as digits, and says so', async () => {
    const serve = (port: string) => stepline(['serve', 'test/fixtures/cli/server', `--port=${port}`, '--db', join(dir, 'port.db')])
    for (const port of ['abc', '-1', '70000', '0x0']) {
      const r = await serve(port)
      expect(r.code, `--port=${port}: ${r.stdout}`).toBe(2)
      expect(r.stderr).toContain(`error: stepline serve: expected --port as a port number from 0 to 65535 (0 picks a free port), got '${port}'.`)
    }
    expect(existsSync(join(dir, 'port.db'))).toBe(false)
  })

  it('serve refuses an empty --host (every interface) and an empty --token (an open run API), as `--token "$UNSET"` passes', async () => {
    const [host, token] = await Promise.all([
      stepline(['serve', 'test/fixtures/cli/server', '--port', '0', '--host', '', '--db', join(dir, 'empty-host.db')]),
      stepline(['serve', 'test/fixtures/cli/server', '--port', '0', '--token', '', '--db', join(dir, 'empty-token.db')]),
    ])
    expect(host.code, host.stdout).toBe(2)
    expect(host.stderr).toContain('error: stepline serve: --host is empty. Pass 127.0.0.1 for this machine only, 0.0.0.0 for every interface')
    expect(token.code, token.stdout).toBe(2)
    expect(token.stderr).toContain('error: stepline serve: --token is empty. Pass the token the run API should require')
  })

  it('a --db that is a directory or empty is a usage error that says so, for run, serve and runs', async () => {
    const folder = mkdtempSync(join(dir, 'journal-dir-'))
    for (const args of [['run', fixture], ['serve', 'test/fixtures/cli/server', '--port', '0'], ['runs']]) {
      const r = await stepline([...args, '--db', folder])
      expect(r.code, r.stdout).toBe(2)
      expect(r.stderr).toContain(`error: stepline ${args[0]}: --db ${folder} is a directory; it names the journal file. Pass a file path, e.g. --db ${join(folder, 'stepline.db')}.`)
      const empty = await stepline([...args, '--db', ''])
      expect(empty.code, empty.stdout).toBe(2)
      expect(empty.stderr).toContain(`error: stepline ${args[0]}: --db is empty.`)
    }
  })

  it('run: a payload the input schema refuses is a usage error (exit 2) that names the issue, and leaves no new journal', async () => {
    const at = project({
      'typed.ts': `import { workflow } from 'stepline'\n` +
        `const named = { '~standard': { version: 1, vendor: 'test', validate: (v: any) => (typeof v?.name === 'string' ? { value: v } : { issues: [{ message: 'name is required', path: ['name'] }] }) } }\n` +
        `export const typed = workflow<{ name: string }>('typed', { input: named }).step('hi', (ctx) => ctx.payload.name)\n`,
    })
    const bad = await stepline(['run', 'typed.ts', '--payload', '{"name":1}'], {}, at)
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('error: stepline run: Workflow "typed": the payload does not match its input schema (1 issue):\n  - name: name is required\n')
    const none = await stepline(['run', 'typed.ts'], {}, at)
    expect(none.code).toBe(2)
    expect(none.stderr).toContain("Pass one with --payload '<json>' or --payload-file <file>.")
    // No run was created, so the default journal (and its folder) that the command opened is gone again.
    expect(existsSync(join(at, '.stepline'))).toBe(false)
    const good = await stepline(['run', 'typed.ts', '--payload', '{"name":"Ada"}'], {}, at)
    expect(good.code, good.stderr).toBe(0)
    expect(existsSync(join(at, '.stepline', 'stepline.db'))).toBe(true)
  })

  it('serve with an empty folder says which files it looks for', async () => {
    const r = await stepline(['serve', mkdtempSync(join(dir, 'no-files-')), '--port', '0'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('no workflow files (.ts, .mts, .cts, .tsx, .js, .mjs, .cjs) at the top of')
  })
})

describe.runIf(built && serverReady())('stepline serve', () => {
  it("its curl hint does not offer '{}' to a webhook whose payload has a schema (it would get a 422)", async () => {
    const at = project({
      'typed.ts': `import { workflow } from 'stepline'\nimport { webhook } from '@stepline/server'\n` +
        `const named = { '~standard': { version: 1, vendor: 'test', validate: (v: any) => (typeof v?.name === 'string' ? { value: v } : { issues: [{ message: 'name is required' }] }) } }\n` +
        `export const typed = workflow<{ name: string }>('typed', { input: named, triggers: [webhook({ path: 'typed' })] }).step('hi', (ctx) => ctx.payload.name)\n`,
    })
    mkdirSync(join(at, 'node_modules', '@stepline'))
    symlinkSync(join(root, 'packages/server'), join(at, 'node_modules', '@stepline', 'server'), 'dir')
    const child = spawn(process.execPath, [cli, 'serve', 'typed.ts', '--port', '0', '--db', join(at, 'serve.db')], { cwd: at, env: { ...process.env, NO_COLOR: '1', FORCE_TTY: '' } })
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d))
    child.stderr.on('data', (d: Buffer) => (out += d))
    try {
      await until(() => out.includes('try: curl'), () => `no curl hint in: ${out}`)
      expect(out).toMatch(/webhooks\/typed -H 'content-type: application\/json' -d '<JSON matching the input schema>'/)
      // Pasteable into a shell: its single quotes pair up.
      const hint = out.split('\n').find((l) => l.includes('try: curl'))!
      expect(hint.split("'").length % 2).toBe(1)
    } finally {
      child.kill('SIGKILL')
    }
  })

  it('serves health and webhooks, runs the webhook run, and stops on SIGTERM', async () => {
    const child = spawn(process.execPath, [cli, 'serve', 'test/fixtures/cli/server', '--port', '0', '--db', join(dir, 'serve.db')], {
      cwd: root,
      env: { ...process.env, NO_COLOR: '1', FORCE_TTY: '' },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d))
    child.stderr.on('data', (d: Buffer) => (stderr += d))
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    try {
      const url = await until(() => /on (http:\/\/\S+)/.exec(stdout)?.[1], () => `no URL in: ${stdout}${stderr}`)
      // The banner's lines may reach the pipe in more than one chunk.
      await until(() => stdout.includes('try: curl'), () => `no curl hint in: ${stdout}${stderr}`)
      expect(stdout).toContain(`try: curl -X POST ${url}/webhooks/cli/hello -H 'content-type: application/json' -d '{}'`)
      expect((await fetch(`${url}/health`)).status).toBe(200)
      const res = await fetch(`${url}/webhooks/cli/hello`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"Ada"}' })
      expect(res.status).toBe(202)
      const { runId } = (await res.json()) as { runId: string }
      const run = await until(async () => {
        const body = (await (await fetch(`${url}/runs/${runId}`)).json()) as { run: { status: string; output?: unknown } }
        return body.run.status === 'completed' ? body.run : undefined
      }, () => 'the webhook run did not complete')
      expect(run.output).toBe('hello Ada')
      await until(() => stdout.includes(`cli-hook ${runId} completed`), () => stdout)
      expect(stdout).toContain(`cli-hook ${runId} started`)
    } finally {
      child.kill('SIGTERM')
    }
    expect(await exited).toBe(0)
    expect(stdout).toMatch(/SIGTERM: shutting down/)
    expect(stdout).toMatch(/stopped\n$/)
  })

  it('says the port is taken and how to pick another, and exits 1', async () => {
    const taken = createServer().listen(0, '127.0.0.1')
    await once(taken, 'listening')
    const { port } = taken.address() as AddressInfo
    try {
      const r = await stepline(['serve', 'test/fixtures/cli/server', '--port', String(port), '--db', join(dir, 'taken.db')])
      expect(r.stderr).toBe(`error: stepline serve: port ${port} on 127.0.0.1 is already in use. Stop what listens there, pick another port with --port <n>, or pass --port 0 for a free one.\n`)
      expect(r.code).toBe(1)
      // Nothing ran: the journal it opened is not left behind as a new, empty file.
      expect(existsSync(join(dir, 'taken.db'))).toBe(false)
    } finally {
      taken.close()
    }
  })

  it('says a --host that is not an address of this machine, and which to pass, and exits 1', async () => {
    // 203.0.113.1 is TEST-NET-3 (RFC 5737): never an address of this machine.
    const r = await stepline(['serve', 'test/fixtures/cli/server', '--port', '0', '--host', '203.0.113.1', '--db', join(dir, 'host.db')])
    expect(r.stderr).toBe(
      'error: stepline serve: --host 203.0.113.1 is not an address of this machine, so nothing can listen on it. Pass one of its addresses: 127.0.0.1 for this machine only, 0.0.0.0 for every interface.\n',
    )
    expect(r.code).toBe(1)
  })

  // Root may listen on port 80: run the CLI as nobody then. Skipped where even that may (macOS, a container allowing low ports).
  const refused = lowPortRefused()
  if (!refused) console.warn(`stepline CLI: the EACCES test is skipped because ${unprivileged.uid === undefined ? 'the test user' : `user ${unprivileged.uid}`} cannot read the CLI here, or may listen on port 80.`)
  it.runIf(refused)('says a port needs privileges this process lacks, and which to pick, and exits 1', async () => {
    const at = mkdtempSync(join(tmpdir(), 'stepline-cli-eacces-'))
    chmodSync(at, 0o777)
    try {
      const r = await stepline(['serve', 'test/fixtures/cli/server', '--port', '80', '--db', join(at, 'low.db')], {}, root, unprivileged)
      expect(r.stderr).toBe(
        'error: stepline serve: port 80 on 127.0.0.1 needs privileges this process does not have (on most systems every port below 1024 does). Pick a port from 1024 up with --port <n>, or pass --port 0 for a free one.\n',
      )
      expect(r.code).toBe(1)
    } finally {
      rmSync(at, { recursive: true, force: true })
    }
  })
})

if (!built) console.warn('stepline CLI: skipped because dist/cli.js is missing; run `pnpm build` first (the test command does).')

const unprivileged: { uid?: number; gid?: number } = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {}

/**
 * Whether the EACCES test can run: the user it runs the CLI as can read the CLI (a checkout in a
 * directory only its owner may enter cannot be), and listening on port 80 fails with EACCES for it.
 */
function lowPortRefused(): boolean {
  const probe = "require('node:net').createServer().on('error', (e) => process.stdout.write(e.code)).listen(80, '127.0.0.1', function () { this.close() })"
  try {
    if (built) execFileSync(process.execPath, [cli, '--version'], { ...unprivileged, stdio: 'ignore' })
    return execFileSync(process.execPath, ['-e', probe], { ...unprivileged }).toString() === 'EACCES'
  } catch {
    return false
  }
}

function serverReady(): boolean {
  if (!built) return false
  try {
    const probe = "const s = await import('@stepline/server'); process.stdout.write(String(typeof s.serve === 'function' && typeof s.startSchedules === 'function'))"
    const ok = execFileSync(process.execPath, ['--input-type=module', '-e', probe], { cwd: root }).toString() === 'true'
    if (!ok) console.warn('stepline serve: skipped because @stepline/server does not export serve() and startSchedules() yet.')
    return ok
  } catch {
    return false
  }
}

async function until<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, why: () => string, ms = 10_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(why())
    await new Promise((r) => setTimeout(r, 25))
  }
}

function run(cmd: string, args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: root, env: { ...process.env, NO_COLOR: '1', FORCE_TTY: '' } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr })
    })
  })
}

function spawnable(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

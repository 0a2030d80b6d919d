/**
 * CI check of the main demo: starts `stepline serve` on workflows.ts with a fresh journal and
 * does what the README's curls do: signs up through the webhook, watches the run's live stream,
 * confirms the e-mail through the run API, reads the run and the run list, then stops the
 * server with SIGTERM. Prints what a person would see; exits 1 when any of it goes otherwise.
 * Runs the built CLI (`dist/cli.js`), as users get it: build first.
 */
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const cli = join(here, '../../dist/cli.js')
if (!existsSync(cli)) {
  console.error(`${cli} is missing: this check runs the built CLI. Run \`npx -y pnpm@12 build\` in the repository root first.`)
  process.exit(1)
}
const dir = mkdtempSync(join(tmpdir(), 'stepline-serve-'))
const server = spawn(process.execPath, [cli, 'serve', join(here, 'workflows.ts'), '--port', '0', '--db', join(dir, 'demo.db')], { stdio: ['ignore', 'pipe', 'inherit'] })

let out = ''
const url = await new Promise<string>((resolve, reject) => {
  server.stdout.on('data', (d: Buffer) => {
    out += d.toString()
    process.stdout.write(d)
    const m = /on (?:\u001b\[\d+m)?(http:\/\/[\d.:]+)/.exec(out)
    if (m) resolve(m[1]!)
  })
  server.on('exit', (code) => reject(new Error(`stepline serve exited with ${code}`)))
})

const json = async (res: Response) => ({ status: res.status, body: (await res.json()) as any })
const signup = await json(await fetch(`${url}/webhooks/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'ada@example.com', name: 'Ada', plan: 'pro' }) }))
console.log(`POST /webhooks/signup → ${signup.status}`, signup.body)
if (signup.status !== 202) throw new Error('the webhook did not accept the signup')
const runId: string = signup.body.runId

const bad = await json(await fetch(`${url}/webhooks/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'nope' }) }))
console.log(`POST /webhooks/signup (invalid) → ${bad.status}`, bad.body.error?.message?.split('\n')[0])
if (bad.status !== 422) throw new Error('an invalid signup was not refused with 422')

for (;;) {
  const { body } = await json(await fetch(`${url}/runs/${runId}`))
  if (body.run.status === 'waiting') break
  await new Promise((r) => setTimeout(r, 20))
}

// `curl -N /runs/<runId>/stream`: a snapshot first, then the run's events until it ends.
const stream = await fetch(`${url}/runs/${runId}/stream`, { signal: AbortSignal.timeout(10_000) })
if (stream.status !== 200 || stream.body === null) throw new Error(`GET /runs/${runId}/stream answered ${stream.status}`)
const streamed = (async () => {
  let text = ''
  try {
    for await (const chunk of stream.body!.pipeThrough(new TextDecoderStream())) text += chunk
  } catch {
    // Cut off after 10 s: a run that never ends; the events so far show where it stopped.
  }
  return [...text.matchAll(/^event: (.+)$/gm)].map((m) => m[1]!)
})()

const confirmed = await json(await fetch(`${url}/runs/${runId}/events/confirmed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ at: '2026-11-24T10:00:00Z' }) }))
console.log(`POST /runs/${runId}/events/confirmed → ${confirmed.status}`)

let run: any
for (let i = 0; i < 200; i++) {
  run = (await json(await fetch(`${url}/runs/${runId}`))).body
  if (run.run.status === 'completed' || run.run.status === 'failed') break
  await new Promise((r) => setTimeout(r, 20))
}
console.log(`GET /runs/${runId} → ${run.run.status}`, run.run.output)
console.log('steps:', run.steps.map((s: any) => `${s.name}=${s.status}`).join(', '))
const events = await streamed
console.log(`GET /runs/${runId}/stream → ${events.join(', ')}`)
const list = (await json(await fetch(`${url}/runs`))).body
console.log(`GET /runs → ${list.runs.length} run(s)`)
const problems = [
  JSON.stringify(run.run.output) === JSON.stringify({ email: 'ada@example.com', company: 'example.com', confirmedAt: '2026-11-24T10:00:00Z' }) ? '' : 'the run output is not the activated signup',
  events[0] === 'snapshot' && events.at(-1) === 'run:completed' ? '' : 'the stream did not go from a snapshot to run:completed',
  list.runs.some((r: any) => r.id === runId) ? '' : 'GET /runs does not list the run',
].filter(Boolean)

server.kill('SIGTERM')
const code = await new Promise<number | null>((resolve) => server.on('exit', resolve))
rmSync(dir, { recursive: true, force: true })
if (run.run.status !== 'completed' || code !== 0 || problems.length > 0) {
  console.error(`demo check failed: run ${run.run.status}, server exit ${code}${problems.map((p) => `; ${p}`).join('')}`)
  process.exit(1)
}
console.log('server stopped cleanly')

import { createServer } from 'node:http'
import { createEngine, workflow } from '@stepline/core'
import { createHandler, serve, toNodeListener, webhook, type FetchHandler, type HandlerOptions } from '@stepline/server'

const ping = workflow('ping', { triggers: [webhook({ path: 'ping' })] }).step('pong', () => 'pong')
const engine = createEngine()

const options: HandlerOptions = {
  engine,
  workflows: [ping], // registered with the engine; their webhooks are served
  token: process.env.STEPLINE_TOKEN, // the run API needs `Authorization: Bearer <token>` when set
  bodyLimit: '256kb', // default '1mb'
  basePath: '/stepline', // default: the root
  heartbeatMs: 15_000, // default: a ': heartbeat' comment on run streams this often
  onError: (error, request) => console.error(request.method, request.url, error), // 500s only
}

// A fetch handler: (Request) => Promise<Response>, usable as is by Bun, Deno or a test.
const handler: FetchHandler = createHandler(options)
const health = await handler(new Request('http://localhost/stepline/health'))
console.log(health.status, await health.json()) // 200 { ok: true, workflows: [ 'ping' ] }

// On node:http: your own server …
createServer(toNodeListener(handler)).listen(3000, '127.0.0.1')

// … or serve(), which is createHandler + node:http + listen (127.0.0.1 unless `host` says otherwise).
const served = await serve({ ...options, port: 0, host: '127.0.0.1' }) // port 0: a free port
console.log(served.url, served.port) // http://127.0.0.1:54321 54321
await served.close() // stops listening and ends open connections, streams included

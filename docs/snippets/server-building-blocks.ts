import { createServer } from 'node:http'
import { createEngine } from '@stepline/core'
import { HttpError, RunEventHub, parseBytes, streamRun, type HttpErrorCode, type StreamOptions } from '@stepline/server'
import { order } from './server-workflows'

const engine = createEngine({ workflows: [order] })
const hub = new RunEventHub(engine) // one per engine: listens on it only while a stream is open

console.log(parseBytes('512kb'), parseBytes('1mb'), parseBytes(2048)) // 524288 1048576 2048

// A run stream on a route of your own (e.g. behind your own session auth).
createServer(async (req, res) => {
  const runId = /^\/my\/runs\/([\w-]+)\/stream$/.exec(req.url ?? '')?.[1]
  if (runId === undefined || (await engine.getRun(runId)) === undefined) {
    const code: HttpErrorCode = 'RUN_NOT_FOUND'
    const error = new HttpError(404, code, `No run ${runId}.`)
    return void res.writeHead(error.status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: error.code, message: error.message } }))
  }
  const abort = new AbortController()
  res.on('close', () => abort.abort())
  const options: StreamOptions = { heartbeatMs: 10_000, signal: abort.signal }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' })
  for await (const chunk of streamRun(engine, hub, runId, options)) res.write(chunk)
  res.end()
}).listen(3001, '127.0.0.1')

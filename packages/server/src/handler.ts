import { SteplineError, type AnyWorkflow, type Engine } from '@stepline/core'
import { markAcceptsLightRequests, pathnameOf, realRequest } from './adapters/light-request'
import { requireBearer } from './auth'
import { parseBytes } from './body'
import { HttpError } from './errors'
import { errorReply, json, toResponse, type Reply } from './respond'
import { cancelRun, getRun, listRuns, sendEvent, streamRunResponse, type RunApiContext } from './run-api'
import { RunEventHub } from './sse'
import { decodeWebhookPath, handleWebhook, webhookRoutes } from './webhook'

/**
 * Options of `createHandler`.
 * @example
 * const options: HandlerOptions = { engine, workflows: [order], token: process.env.STEPLINE_TOKEN, bodyLimit: '256kb' }
 */
export interface HandlerOptions {
  /** The engine that runs the workflows (its store is the run API's source). */
  engine: Engine
  /** Registered with the engine; their `webhook(…)` triggers are served under `/webhooks/`. */
  workflows?: readonly AnyWorkflow[]
  /** When set, the run API (`/runs…`) needs `Authorization: Bearer <token>`. Webhooks and `/health` never do. */
  token?: string
  /** Largest request body: bytes, or a size like `'1mb'`, `'512kb'`. Default `'1mb'`. */
  bodyLimit?: number | string
  /** Serve everything under this prefix, e.g. `'/stepline'`. Default: the root. */
  basePath?: string
  /** Milliseconds between heartbeat comments on run streams. Default 15000. */
  heartbeatMs?: number
  /** Told about errors answered with a 500. Default `console.error`. */
  onError?: (error: unknown, request: Request) => void
}

/**
 * The server: a fetch handler. Adapters (Node, Express, Fastify, Hono) only translate to and from it.
 * @example
 * const handler: FetchHandler = createHandler({ engine })
 * const res = await handler(new Request('http://localhost/health'))
 */
export type FetchHandler = (request: Request) => Promise<Response>

type Route = { allow: string[]; auth: boolean; run: (request: Request) => Promise<Reply> }

/**
 * Builds the HTTP side of Stepline as a `(Request) => Promise<Response>` function: webhooks
 * (`POST /webhooks/<path>`), the run API (`/runs…`, with live SSE) and `GET /health`. Options
 * are checked here, not on the first request.
 * @example
 * const handler = createHandler({ engine, workflows: [order], token: process.env.STEPLINE_TOKEN })
 * Bun.serve({ fetch: handler }) // or serve({ …options }) on Node, or an Express/Fastify/Hono adapter
 */
export function createHandler(options: HandlerOptions): FetchHandler {
  if (typeof options !== 'object' || options === null) throw new SteplineError('OPTIONS_INVALID', 'createHandler: expected options like { engine }.')
  const { engine, workflows = [], token, bodyLimit = '1mb', basePath = '', heartbeatMs = 15_000, onError = (e: unknown) => console.error('stepline server:', e) } = options
  if (typeof engine !== 'object' || engine === null || typeof (engine as Partial<Engine>).start !== 'function') {
    throw new SteplineError('OPTIONS_INVALID', 'createHandler: expected `engine` made with createEngine().')
  }
  if (token !== undefined && (typeof token !== 'string' || token.length === 0)) throw new SteplineError('OPTIONS_INVALID', 'createHandler: expected `token` as a non-empty string.')
  if (typeof basePath !== 'string' || (basePath !== '' && !/^\/?[A-Za-z0-9\-._~/]*$/.test(basePath))) {
    throw new SteplineError('OPTIONS_INVALID', `createHandler: expected \`basePath\` as a URL path like '/stepline', got ${JSON.stringify(basePath)}.`)
  }
  if (!Number.isFinite(heartbeatMs) || heartbeatMs <= 0) throw new SteplineError('OPTIONS_INVALID', `createHandler: expected \`heartbeatMs\` as milliseconds > 0, got ${String(heartbeatMs)}.`)
  const limit = parseBytes(bodyLimit)
  const prefix = basePath.replace(/^\/*/, '/').replace(/\/+$/, '')
  const hooks = webhookRoutes(workflows)
  engine.register(...workflows)
  const ctx: RunApiContext = { engine, hub: new RunEventHub(engine), bodyLimit: limit, heartbeatMs }

  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s)
    } catch {
      throw new HttpError(400, 'BAD_REQUEST', `Malformed percent-encoding in "${s}".`)
    }
  }
  const route = (parts: string[]): Route | undefined => {
    const [head, id, action, name, ...rest] = parts
    if (head === 'health' && parts.length === 1) {
      return { allow: ['GET'], auth: false, run: async () => json(200, { ok: true, workflows: engine.workflows() }) }
    }
    if (head !== 'runs' || rest.length > 0) return undefined
    if (id === undefined) return { allow: ['GET'], auth: true, run: async (r) => listRuns(r, ctx) }
    const runId = decode(id)
    if (action === undefined) return { allow: ['GET'], auth: true, run: async () => getRun(runId, ctx) }
    if (action === 'cancel' && name === undefined) return { allow: ['POST'], auth: true, run: async (r) => cancelRun(runId, r, ctx) }
    if (action === 'stream' && name === undefined) return { allow: ['GET'], auth: true, run: async (r) => streamRunResponse(runId, r, ctx) }
    if (action === 'events' && name !== undefined && name !== '') return { allow: ['POST'], auth: true, run: async (r) => sendEvent(runId, decode(name), r, ctx) }
    return undefined
  }

  const fail = (request: Request) => (e: unknown): Reply => errorReply(e, (err) => onError(err, realRequest(request)))
  // The handler's work, answered as a Reply: the Node adapters write it without making a Response.
  // Not an async function: the routes' promises are handed on, one fewer hop per request.
  const reply = (request: Request): Promise<Reply> => {
    try {
      const pathname = pathnameOf(request)
      let path = pathname
      if (prefix !== '') {
        if (path !== prefix && !path.startsWith(`${prefix}/`)) throw new HttpError(404, 'NOT_FOUND', `Nothing is served at ${path}.`)
        path = path.slice(prefix.length)
      }
      path = path.replace(/^\/+|\/+$/g, '')
      if (path.startsWith('webhooks/')) {
        const byMethod = hooks.get(decodeWebhookPath(path.slice('webhooks/'.length)))
        if (byMethod === undefined) throw new HttpError(404, 'NOT_FOUND', `No webhook is registered at ${pathname}.`)
        return handleWebhook(request, byMethod, engine, limit).catch(fail(request))
      }
      const r = route(path.split('/'))
      if (r === undefined) throw new HttpError(404, 'NOT_FOUND', `Nothing is served at ${pathname}.`)
      if (r.auth) requireBearer(request, token)
      // HEAD is GET without the body: the adapter (or the runtime) drops the body.
      const method = request.method === 'HEAD' ? 'GET' : request.method
      if (!r.allow.includes(method)) {
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${pathname} answers ${r.allow.join(', ')}, not ${request.method}.`, { headers: { allow: r.allow.join(', ') } })
      }
      return r.run(request).catch(fail(request))
    } catch (e) {
      return Promise.resolve(fail(request)(e))
    }
  }
  const handler: FetchHandler = async (request) => toResponse(await reply(request))
  // It reads only method, url, headers, signal and body: Node adapters may hand it a LightRequest.
  return markAcceptsLightRequests(handler, reply)
}

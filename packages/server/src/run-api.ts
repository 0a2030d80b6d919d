import { FINISHED_STATUSES, isSteplineError, type Engine, type ListRunsQuery, type RunStatus } from '@stepline/core'
import { readJson } from './body'
import { HttpError } from './errors'
import { parsedUrlOf } from './adapters/light-request'
import { json, type Reply } from './respond'
import { streamRun, type RunEventHub } from './sse'

const STATUSES: readonly RunStatus[] = ['queued', 'running', 'sleeping', 'waiting', 'completed', 'failed', 'cancelled']
const MAX_LIMIT = 1000

/** What the run API needs from the handler. */
export interface RunApiContext {
  engine: Engine
  hub: RunEventHub
  bodyLimit: number
  heartbeatMs: number
}

const notFound = (runId: string): HttpError => new HttpError(404, 'RUN_NOT_FOUND', `No run "${runId}" exists in this engine's store.`)
const finished = (runId: string, status: RunStatus): HttpError => new HttpError(409, 'RUN_FINISHED', `Run ${runId} has already ended (${status}); there is nothing to cancel.`)

/**
 * `GET /runs?workflow=&status=&limit=&before=`: runs newest first, `{ runs, next }` where `next`
 * is the `before` cursor of the following page (null on the last one). `status` may list several,
 * comma-separated or repeated; the other parameters may appear once. `limit` defaults to 50, at most 1000.
 * @example
 * GET /runs?workflow=order&status=failed,cancelled&limit=20
 */
export async function listRuns(request: Request, { engine }: RunApiContext): Promise<Reply> {
  const q = parsedUrlOf(request).searchParams
  const query: ListRunsQuery = {}
  const workflow = once(q, 'workflow')
  if (workflow) query.workflowId = workflow
  // `?status=failed&status=cancelled` (what URLSearchParams.append and most clients write) means both, as `status=failed,cancelled`.
  const status = q.getAll('status').join(',')
  if (status) {
    const list = status.split(',').map((s) => s.trim()) as RunStatus[]
    const wrong = list.find((s) => !STATUSES.includes(s))
    if (wrong !== undefined) throw new HttpError(400, 'BAD_REQUEST', `Unknown status "${wrong}"; expected one or more of ${STATUSES.join(', ')}, comma-separated.`)
    query.status = list.length === 1 ? list[0]! : list
  }
  const limitText = once(q, 'limit')
  // Digits only: Number() would also take '1e1', '0x10' or ''.
  const limit = limitText === null ? 50 : /^\d{1,4}$/.test(limitText) ? Number(limitText) : NaN
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT) throw new HttpError(400, 'BAD_REQUEST', `Expected \`limit\` as a whole number from 1 to ${MAX_LIMIT}, got "${limitText}".`)
  const before = once(q, 'before')
  if (before) query.before = before
  // One more than asked tells whether another page exists.
  const runs = await engine.listRuns({ ...query, limit: limit + 1 }).catch((e: unknown) => {
    // The only run `listRuns` looks up is the cursor's: a client error, not a missing resource.
    if (!isSteplineError(e, 'RUN_NOT_FOUND')) throw e
    throw new HttpError(400, 'BAD_REQUEST', `\`before=${before}\` names no run in this store: it was pruned since the previous page, or never existed. Page again from the newest, without \`before\`.`)
  })
  const more = runs.length > limit
  if (more) runs.length = limit
  return json(200, { runs, next: more ? runs[limit - 1]!.id : null })
}

/** A query parameter that may appear at most once (a second value would be silently ignored otherwise). */
function once(q: URLSearchParams, name: string): string | null {
  const all = q.getAll(name)
  if (all.length > 1) throw new HttpError(400, 'BAD_REQUEST', `Expected \`${name}\` once in the query, got it ${all.length} times (${all.map((v) => JSON.stringify(v)).join(', ')}).`)
  return all[0] ?? null
}

/**
 * `GET /runs/:id`: `{ run, steps }`, every journal entry with its status, attempts, timings and output.
 * @example
 * GET /runs/mip8k2x1c4f0a9zq3k7w1
 */
export async function getRun(runId: string, { engine }: RunApiContext): Promise<Reply> {
  const run = await engine.getRun(runId)
  if (run === undefined) throw notFound(runId)
  return json(200, { run, steps: await engine.getSteps(runId) })
}

/**
 * `POST /runs/:id/cancel` (optional body `{ reason }`): 202, 404 for an unknown run, 409 when it
 * has already ended (a second cancel of one run gets 409, even when both were sent at once).
 * @example
 * POST /runs/mip8k2x1c4f0a9zq3k7w1/cancel  {"reason":"customer withdrew"}
 */
export async function cancelRun(runId: string, request: Request, { engine, hub, bodyLimit }: RunApiContext): Promise<Reply> {
  const body = await readJson(request, bodyLimit)
  const reason = typeof body === 'object' && body !== null && typeof (body as { reason?: unknown }).reason === 'string' ? (body as { reason: string }).reason : undefined
  const run = await engine.getRun(runId)
  if (run === undefined) throw notFound(runId)
  if (FINISHED_STATUSES.includes(run.status)) throw finished(runId, run.status)
  const cancelled = await engine.cancel(runId, reason)
  const after = await engine.getRun(runId)
  // It ended between the read above and the cancel (on its own, or by another cancel), which then changed nothing.
  if (!cancelled) throw finished(runId, after?.status ?? run.status)
  // A parked run is cancelled in the store, where the engine emits no event: tell its streams.
  if (after?.status === 'cancelled') hub.publish(runId, 'run:cancelled', { runId, workflowId: after.workflowId, error: after.error })
  return json(202, { runId, status: after?.status ?? 'cancelled' })
}

/**
 * `POST /runs/:id/events/:name`: the JSON body is the event's data, delivered with
 * `engine.send` to resume a `waitForEvent`. 202 `{ runIds }`; 404 unknown run; 409 when the
 * event was already delivered or the run no longer waits for it.
 * @example
 * POST /runs/mip8k2x1c4f0a9zq3k7w1/events/approval  {"approved":true}
 */
export async function sendEvent(runId: string, name: string, request: Request, { engine, bodyLimit }: RunApiContext): Promise<Reply> {
  const data = await readJson(request, bodyLimit)
  const { runIds } = await engine.send({ runId }, name, data)
  return json(202, { runIds })
}

/**
 * `GET /runs/:id/stream`: the run as Server-Sent Events (see `streamRun`). `HEAD` gets the same
 * headers and opens no stream: not every runtime cancels the body of a HEAD answer.
 * @example
 * const es = new EventSource('/runs/mip8k2x1c4f0a9zq3k7w1/stream')
 */
export async function streamRunResponse(runId: string, request: Request, { engine, hub, heartbeatMs }: RunApiContext): Promise<Reply> {
  if ((await engine.getRun(runId)) === undefined) throw notFound(runId)
  const body = request.method === 'HEAD' ? null : streamRun(engine, hub, runId, { heartbeatMs, signal: request.signal })
  return new Response(body, {
    status: 200,
    headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' },
  })
}

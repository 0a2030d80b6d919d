import { newRunId, SteplineError, type AnyWorkflow, type Engine, type TriggerSpec } from '@stepline/core'
import { parseJson, readBody } from './body'
import { HttpError, jsonIssues } from './errors'
import { JsonReply } from './respond'
import { verifySignature } from './signature'
import { isWebhookTrigger, webhook, type WebhookTrigger } from './triggers'
import { headerOf } from './adapters/light-request'

/** One webhook the handler serves: the workflow it starts and its trigger. */
export interface WebhookRoute {
  workflowId: string
  trigger: WebhookTrigger
}

/** Webhook routes by path, then by method. */
export type WebhookRoutes = Map<string, Map<string, WebhookRoute>>

/** The triggers of a workflow: `workflow(id, { triggers })` keeps them on its options. */
export function triggersOf(wf: AnyWorkflow): readonly TriggerSpec[] {
  return (wf as { options?: { triggers?: readonly TriggerSpec[] } }).options?.triggers ?? []
}

/**
 * The webhook routes of some workflows. Two webhooks on one path and method are refused: a
 * request could not say which workflow it starts.
 * @example
 * const routes = webhookRoutes([order, refund])
 */
export function webhookRoutes(workflows: readonly AnyWorkflow[]): WebhookRoutes {
  const routes: WebhookRoutes = new Map()
  for (const wf of workflows) {
    for (const spec of triggersOf(wf)) {
      if (!isWebhookTrigger(spec)) continue
      // A spec written by hand (not by webhook()) gets the same checks and defaults.
      const trigger = webhook(spec as Parameters<typeof webhook>[0])
      let byMethod = routes.get(trigger.path)
      if (byMethod === undefined) routes.set(trigger.path, (byMethod = new Map()))
      const taken = byMethod.get(trigger.method)
      if (taken !== undefined) {
        throw new SteplineError('OPTIONS_INVALID', `createHandler: workflows "${taken.workflowId}" and "${wf.id}" both have a webhook at ${trigger.method} /webhooks/${trigger.path}; give one of them another path.`)
      }
      byMethod.set(trigger.method, { workflowId: wf.id, trigger })
    }
  }
  return routes
}

const UNRESERVED = /^[A-Za-z0-9\-._~]$/

/**
 * The webhook path a request names, with percent-escapes of unreserved characters decoded: they
 * mean the same URL (RFC 3986 §6.2.2.2), and clients or proxies may write `~` as `%7E`. Other
 * escapes stay as they are, so they match no webhook (an escaped `/` is not a separator); a `%`
 * not followed by two hex digits is a 400, as in run ids. A path without `%` is returned as it is.
 * @example
 * decodeWebhookPath('a%7Eb/orders') // 'a~b/orders'
 */
export function decodeWebhookPath(path: string): string {
  if (!path.includes('%')) return path
  return path.replace(/%([0-9A-Fa-f]{2})?/g, (escape, hex: string | undefined) => {
    if (hex === undefined) throw new HttpError(400, 'BAD_REQUEST', `Malformed percent-encoding in "${path}".`)
    const char = String.fromCharCode(parseInt(hex, 16))
    return UNRESERVED.test(char) ? char : escape
  })
}

/**
 * Serves one webhook request: method (405), size (413), signature (401), JSON (400), the
 * trigger's schema then the workflow's `input` schema (422), then starts the run and answers
 * `202 { runId }` (`duplicate: true` when an `Idempotency-Key` matched an earlier run). Every
 * check happens before `engine.start`, so a refused request leaves no run behind.
 * @example
 * return handleWebhook(request, routes.get('orders')!, engine, 1024 * 1024)
 */
export async function handleWebhook(request: Request, byMethod: Map<string, WebhookRoute>, engine: Engine, bodyLimit: number): Promise<JsonReply> {
  const route = byMethod.get(request.method)
  if (route === undefined) {
    const allow = [...byMethod.keys()].join(', ')
    throw new HttpError(405, 'METHOD_NOT_ALLOWED', `This webhook answers ${allow}, not ${request.method}.`, { headers: { allow } })
  }
  const { trigger, workflowId } = route
  const key = headerOf(request, 'idempotency-key')
  if (key !== null && (key.length === 0 || key.length > 255)) throw new HttpError(400, 'BAD_REQUEST', 'The Idempotency-Key header must be 1 to 255 characters.')

  let raw = readBody(request, bodyLimit)
  if (raw instanceof Promise) raw = await raw
  if (trigger.secret !== undefined) {
    const problem = verifySignature(trigger.secret, headerOf(request, trigger.signatureHeader.toLowerCase()), raw, trigger.toleranceSec)
    if (problem !== undefined) {
      const why = {
        missing: `the ${trigger.signatureHeader} header is missing`,
        malformed: `the ${trigger.signatureHeader} header is not of the form t=<unix seconds>,v1=<hex hmac>`,
        expired: `its timestamp is more than ${trigger.toleranceSec} s away from now`,
        mismatch: 'it does not match the body',
      }[problem]
      throw new HttpError(401, 'SIGNATURE_INVALID', `The webhook signature was refused: ${why}.`)
    }
  }
  let payload = parseJson(raw)
  if (trigger.schema !== undefined) {
    let result = trigger.schema['~standard'].validate(payload)
    if (result instanceof Promise) result = await result
    if (result.issues) {
      const issues = jsonIssues(result.issues)
      throw new HttpError(422, 'VALIDATION_FAILED', `The body does not match the webhook's schema (${issues.length} issue${issues.length === 1 ? '' : 's'}).`, { issues })
    }
    payload = result.value
  }
  // With a key, the run id is chosen here: a different id coming back means the key matched an earlier run.
  const runId = key === null ? undefined : newRunId()
  const handle = await engine.start(workflowId, payload, key === null ? undefined : { idempotencyKey: key, runId })
  // Made by hand: a run id is a string, and JSON.stringify of one object costs more than the rest of the reply.
  const id = JSON.stringify(handle.id)
  return new JsonReply(202, runId !== undefined && handle.id !== runId ? `{"runId":${id},"duplicate":true}` : `{"runId":${id}}`)
}

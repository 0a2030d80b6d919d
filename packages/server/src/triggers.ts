import { Cron } from 'croner'
import { SteplineError } from '@stepline/core'

/**
 * The part of a Standard Schema (zod, valibot, arktype) the server calls; any of them fits.
 * Declared here, as the spec invites, so that this package needs no dependency for it.
 */
export interface StandardSchema<TOutput = unknown> {
  readonly '~standard': {
    readonly version: 1
    readonly vendor: string
    readonly validate: (value: unknown) => StandardResult<TOutput> | Promise<StandardResult<TOutput>>
  }
}

/** What a Standard Schema's `validate` returns. */
export type StandardResult<TOutput> =
  | { readonly value: TOutput; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<{ readonly message: string; readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined }> }

/** Methods a webhook may answer to. */
export type WebhookMethod = 'POST' | 'PUT' | 'PATCH'
const METHODS: readonly WebhookMethod[] = ['POST', 'PUT', 'PATCH']

/**
 * Options of `webhook(…)`.
 * @example
 * webhook({ path: 'orders', secret: process.env.HOOK_SECRET, toleranceSec: 60 })
 */
export interface WebhookOptions<TInput = unknown> {
  /** Served at `<basePath>/webhooks/<path>`: letters, digits and `-._~/`, e.g. `'orders/created'`. */
  path: string
  /** Default `'POST'`. */
  method?: WebhookMethod | Lowercase<WebhookMethod>
  /**
   * Shared secret: requests must carry an HMAC-SHA256 signature
   * (`<signatureHeader>: t=<unix seconds>,v1=<hex>`, see `signPayload`), else 401.
   */
  secret?: string
  /** Validates the body before the workflow's own `input` schema (any Standard Schema). */
  schema?: StandardSchema<TInput>
  /** Header carrying the signature. Default `'x-stepline-signature'`. */
  signatureHeader?: string
  /** Signatures older or newer than this many seconds are refused (replays). Default 300. */
  toleranceSec?: number
}

/** A webhook trigger as `workflow(id, { triggers })` stores it: plain data (a type alias, so it fits `TriggerSpec`). */
export type WebhookTrigger = {
  readonly kind: 'webhook'
  /** Normalised: no leading or trailing slash. */
  readonly path: string
  readonly method: WebhookMethod
  readonly secret?: string | undefined
  readonly schema?: StandardSchema | undefined
  readonly signatureHeader: string
  readonly toleranceSec: number
}

/**
 * Options of `schedule(…)`.
 * @example
 * schedule('0 * * * *', { timezone: 'UTC', payload: { source: 'cron' } })
 */
export interface ScheduleOptions {
  /** IANA time zone the pattern is read in, e.g. `'Europe/Berlin'`. Default: the process's. */
  timezone?: string
  /** Payload of every run the schedule starts. */
  payload?: unknown
}

/** A cron trigger as `workflow(id, { triggers })` stores it: plain data. */
export type ScheduleTrigger = {
  readonly kind: 'schedule'
  readonly cron: string
  readonly timezone?: string | undefined
  readonly payload?: unknown
}

const bad = (fn: string, message: string): never => {
  throw new SteplineError('OPTIONS_INVALID', `${fn}: ${message}`)
}

/**
 * A webhook trigger: `POST <basePath>/webhooks/<path>` starts a run with the JSON body as payload
 * and answers `202 { runId }`.
 * @example
 * const order = workflow('order', { triggers: [webhook({ path: 'orders', secret: process.env.HOOK_SECRET })] })
 *   .step('charge', charge)
 */
export function webhook<TInput = unknown>(options: WebhookOptions<TInput>): WebhookTrigger {
  if (typeof options !== 'object' || options === null) bad('webhook', "expected options like { path: 'orders' }.")
  const { path, method = 'POST', secret, schema, signatureHeader = 'x-stepline-signature', toleranceSec = 300 } = options
  if (typeof path !== 'string') return bad('webhook', `expected \`path\` as a string like 'orders/created', got ${typeof path}.`)
  const trimmed = path.replace(/^\/+|\/+$/g, '')
  if (trimmed === '' || !/^[A-Za-z0-9\-._~]+(\/[A-Za-z0-9\-._~]+)*$/.test(trimmed) || trimmed.split('/').some((s) => s === '.' || s === '..')) {
    bad('webhook', `expected \`path\` as URL path segments of letters, digits and -._~ joined by '/', like 'orders/created', got '${path}'.`)
  }
  const upper = typeof method === 'string' ? (method.toUpperCase() as WebhookMethod) : method
  if (!METHODS.includes(upper)) bad('webhook', `expected \`method\` as ${METHODS.map((m) => `'${m}'`).join(', ')}, got ${JSON.stringify(method)} (path '${path}').`)
  if (secret !== undefined && (typeof secret !== 'string' || secret === '')) bad('webhook', `expected \`secret\` as a non-empty string (path '${path}').`)
  if (schema !== undefined && ((typeof schema !== 'object' && typeof schema !== 'function') || schema === null || typeof (schema as Partial<StandardSchema>)['~standard']?.validate !== 'function')) {
    bad('webhook', `expected \`schema\` as a Standard Schema (zod, valibot, arktype) (path '${path}').`)
  }
  if (typeof signatureHeader !== 'string' || !/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/.test(signatureHeader)) {
    bad('webhook', `expected \`signatureHeader\` as an HTTP header name, got ${JSON.stringify(signatureHeader)} (path '${path}').`)
  }
  if (typeof toleranceSec !== 'number' || !Number.isFinite(toleranceSec) || toleranceSec <= 0) {
    bad('webhook', `expected \`toleranceSec\` as a number of seconds > 0, got ${String(toleranceSec)} (path '${path}').`)
  }
  return { kind: 'webhook', path: trimmed, method: upper, secret, schema, signatureHeader: signatureHeader.toLowerCase(), toleranceSec }
}

/**
 * A cron trigger: starts a run at every tick of `cron` (5 or 6 fields, croner syntax).
 * @example
 * const digest = workflow('digest', { triggers: [schedule('0 8 * * 1-5', { timezone: 'Europe/Berlin' })] })
 *   .step('send', sendDigest)
 */
export function schedule(cron: string, options: ScheduleOptions = {}): ScheduleTrigger {
  if (typeof cron !== 'string' || cron.trim() === '') return bad('schedule', `expected a cron pattern like '*/5 * * * *', got ${JSON.stringify(cron)}.`)
  if (typeof options !== 'object' || options === null) bad('schedule', `expected options like { timezone: 'UTC' } for '${cron}'.`)
  const { timezone, payload } = options
  if (timezone !== undefined && (typeof timezone !== 'string' || timezone === '')) bad('schedule', `expected \`timezone\` as an IANA zone like 'Europe/Berlin' for '${cron}', got ${JSON.stringify(timezone)}.`)
  try {
    const job = new Cron(cron, { paused: true, ...(timezone === undefined ? {} : { timezone }) })
    // The zone is only read when a time is computed.
    job.nextRun()
    job.stop()
  } catch (e) {
    bad('schedule', `invalid cron pattern '${cron}'${timezone === undefined ? '' : ` (timezone '${timezone}')`}: ${e instanceof Error ? e.message : String(e)}. Expected 5 or 6 fields like '*/5 * * * *'.`)
  }
  return { kind: 'schedule', cron, timezone, payload }
}

/**
 * Whether a trigger spec is a webhook.
 * @example
 * const hooks = (options.triggers ?? []).filter(isWebhookTrigger)
 */
export function isWebhookTrigger(t: { kind: string }): t is WebhookTrigger {
  return t.kind === 'webhook'
}

/**
 * Whether a trigger spec is a schedule.
 * @example
 * const crons = (options.triggers ?? []).filter(isScheduleTrigger)
 */
export function isScheduleTrigger(t: { kind: string }): t is ScheduleTrigger {
  return t.kind === 'schedule'
}

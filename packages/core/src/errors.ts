/**
 * Every error Stepline throws carries a `code` from this closed union, so callers can
 * recognise it after it crossed a worker thread, a package copy or the journal, where
 * `instanceof` no longer works.
 */
export type SteplineErrorCode =
  | 'PLAN_INVALID'
  | 'VALIDATION_FAILED'
  | 'STEP_FAILED'
  | 'STEP_TIMEOUT'
  | 'NON_RETRIABLE'
  | 'PARALLEL_FAILED'
  | 'RACE_FAILED'
  | 'RUN_CANCELLED'
  | 'RUN_TIMEOUT'
  | 'BRANCH_ABORTED'
  | 'WORKFLOW_NOT_FOUND'
  | 'RUN_NOT_FOUND'
  | 'RUN_EXISTS'
  | 'ENGINE_CLOSED'
  | 'OPTIONS_INVALID'
  | 'CPU_TASK_FAILED'
  | 'UNSTORABLE_OUTPUT'
  | 'STORE_UNAVAILABLE'
  | 'PLAN_CHANGED'
  | 'EVENT_ALREADY_DELIVERED'
  | 'EVENT_NOT_AWAITED'
  | 'WAIT_TIMEOUT'

const MARKER = '__stepline_error__'

/**
 * Base class of every error Stepline throws.
 * @example
 * if (isSteplineError(err, 'STEP_TIMEOUT')) retryLater()
 */
export class SteplineError extends Error {
  readonly code: SteplineErrorCode
  constructor(code: SteplineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = 'SteplineError'
  }

  /** Plain-data form for the journal and for crossing threads; `deserializeError` reverses it. */
  toJSON(): SerializedError {
    return serializeError(this)
  }
}

/**
 * A workflow definition is malformed: duplicate names, `.else()` without `.if()`, a bad
 * duration. Thrown while building or compiling; during a run only where the definition and
 * the run disagree (a `forEach` items function that returns no array, a body that builds
 * other steps for one item, a resumed run whose plan changed).
 * @example
 * workflow('x').else() // PlanError: `.else()` without an open `.if()`
 */
export class PlanError extends SteplineError {
  readonly workflowId: string
  readonly step: string | undefined
  constructor(workflowId: string, step: string | undefined, message: string) {
    super('PLAN_INVALID', message)
    this.name = 'PlanError'
    this.workflowId = workflowId
    this.step = step
  }
}

/** One problem with an input, in Standard Schema's shape. */
export interface ValidationIssue {
  message: string
  path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> | undefined
}

/**
 * A payload did not match the workflow's `input` schema; no run was created.
 * @example
 * try { await engine.start(wf, {}) } catch (e) { if (e instanceof ValidationError) console.log(e.issues) }
 */
export class ValidationError extends SteplineError {
  readonly issues: readonly ValidationIssue[]
  constructor(workflowId: string, issues: readonly ValidationIssue[]) {
    const lines = issues.map((i) => `  - ${formatPath(i.path)}: ${i.message}`).join('\n')
    super(
      'VALIDATION_FAILED',
      `Workflow "${workflowId}": the payload does not match its input schema (${issues.length} issue${issues.length === 1 ? '' : 's'}):\n${lines}\nNo run was created; fix the payload and start again.`,
    )
    this.name = 'ValidationError'
    this.issues = issues
  }
}

function formatPath(path: ValidationIssue['path']): string {
  if (!path || path.length === 0) return '(root)'
  return path.map((p) => String(typeof p === 'object' ? p.key : p)).join('.')
}

/**
 * A step threw after its retries were spent. `cause` is the last error the step threw.
 * @example
 * run.error instanceof StepError && run.error.step // 'charge'
 */
export class StepError extends SteplineError {
  readonly step: string
  readonly attempts: number
  constructor(step: string, cause: unknown, attempts: number, code: SteplineErrorCode = 'STEP_FAILED') {
    super(code, `Step "${step}" failed after ${attempts} attempt${attempts === 1 ? '' : 's'}: ${messageOf(cause)}`, { cause })
    this.name = 'StepError'
    this.step = step
    this.attempts = attempts
  }
}

/**
 * A step ran past its `timeout`; its `ctx.signal` was aborted with this error.
 * @example
 * .step('slow', fn, { timeout: '2s' }) // fails with StepTimeoutError after 2 s
 */
export class StepTimeoutError extends SteplineError {
  readonly step: string
  readonly timeoutMs: number
  constructor(step: string, timeoutMs: number) {
    super('STEP_TIMEOUT', `Step "${step}" timed out after ${timeoutMs} ms. Raise its \`timeout\` option or make the step faster.`)
    this.name = 'StepTimeoutError'
    this.step = step
    this.timeoutMs = timeoutMs
  }
}

/**
 * Throw from a step to fail it at once, skipping the remaining retries.
 * @example
 * if (res.status === 404) throw new NonRetriableError('order does not exist')
 */
export class NonRetriableError extends SteplineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NON_RETRIABLE', message, options)
    this.name = 'NonRetriableError'
  }
}

/**
 * A `parallel` node failed; `errors` keeps every branch failure, first failure first.
 * @example
 * if (err instanceof ParallelError) err.errors.length
 */
export class ParallelError extends SteplineError {
  readonly step: string
  readonly errors: readonly unknown[]
  constructor(step: string, errors: readonly unknown[]) {
    super('PARALLEL_FAILED', `Parallel "${step}" failed: ${errors.map(messageOf).join('; ')}`, { cause: errors[0] })
    this.name = 'ParallelError'
    this.step = step
    this.errors = errors
  }
}

/**
 * Every branch of a `race` failed. An `AggregateError` so that standard tooling reads it.
 * @example
 * if (err instanceof RaceError) err.errors // one per branch
 */
export class RaceError extends AggregateError {
  readonly code = 'RACE_FAILED' as const
  readonly step: string
  constructor(step: string, errors: readonly unknown[]) {
    super(errors, `Race "${step}": all ${errors.length} branches failed: ${errors.map(messageOf).join('; ')}`)
    this.name = 'RaceError'
    this.step = step
  }
}

/**
 * The run was cancelled; in-flight steps saw `ctx.signal` abort with this error.
 * @example
 * await handle.cancel(); await handle.result() // rejects with CancelledError
 */
export class CancelledError extends SteplineError {
  constructor(runId: string, reason?: string) {
    super('RUN_CANCELLED', `Run ${runId} was cancelled${reason ? `: ${reason}` : ''}.`)
    this.name = 'CancelledError'
  }
}

/** An error in plain-data form, as the journal stores it. */
export interface SerializedError {
  [MARKER]: true
  name: string
  message: string
  code?: string | undefined
  stack?: string | undefined
  step?: string | undefined
  cause?: SerializedError | undefined
  errors?: SerializedError[] | undefined
}

/**
 * Turns any thrown value into plain data that survives JSON and structured clone.
 * @example
 * store.save(serializeError(err))
 */
export function serializeError(err: unknown): SerializedError {
  if (isSerializedError(err)) return err
  if (!(err instanceof Error)) return { [MARKER]: true, name: 'Error', message: messageOf(err) }
  const e = err as Error & { code?: unknown; step?: unknown; errors?: unknown }
  const out: SerializedError = { [MARKER]: true, name: e.name, message: e.message, stack: e.stack }
  if (typeof e.code === 'string') out.code = e.code
  if (typeof e.step === 'string') out.step = e.step
  if (e.cause !== undefined) out.cause = serializeError(e.cause)
  if (Array.isArray(e.errors)) out.errors = e.errors.map(serializeError)
  return out
}

/**
 * Rebuilds an `Error` from `serializeError` output, keeping `name`, `code` and `cause`.
 * @example
 * const err = deserializeError(row.error)
 */
export function deserializeError(data: SerializedError): Error {
  const cause = data.cause ? deserializeError(data.cause) : undefined
  const err =
    data.code !== undefined
      ? new SteplineError(data.code as SteplineErrorCode, data.message, { cause })
      : new Error(data.message, { cause })
  err.name = data.name
  if (data.stack) err.stack = data.stack
  if (data.step) (err as { step?: string }).step = data.step
  if (data.errors) (err as { errors?: Error[] }).errors = data.errors.map(deserializeError)
  return err
}

/** Whether `v` is `serializeError` output (a journal's error, or one a cpu worker sent back). */
export function isSerializedError(v: unknown): v is SerializedError {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>)[MARKER] === true
}

/**
 * True when `err` is a Stepline error (optionally of `code`), also across threads and copies.
 * @example
 * if (isSteplineError(err, 'RUN_CANCELLED')) return
 */
export function isSteplineError(err: unknown, code?: SteplineErrorCode): err is SteplineError {
  if (typeof err !== 'object' || err === null) return false
  const c = (err as { code?: unknown }).code
  if (typeof c !== 'string') return false
  return code === undefined ? ALL_CODES.has(c) : c === code
}

const ALL_CODES: ReadonlySet<string> = new Set<SteplineErrorCode>([
  'PLAN_INVALID',
  'VALIDATION_FAILED',
  'STEP_FAILED',
  'STEP_TIMEOUT',
  'NON_RETRIABLE',
  'PARALLEL_FAILED',
  'RACE_FAILED',
  'RUN_CANCELLED',
  'RUN_TIMEOUT',
  'BRANCH_ABORTED',
  'WORKFLOW_NOT_FOUND',
  'RUN_NOT_FOUND',
  'RUN_EXISTS',
  'ENGINE_CLOSED',
  'OPTIONS_INVALID',
  'CPU_TASK_FAILED',
  'UNSTORABLE_OUTPUT',
  'STORE_UNAVAILABLE',
  'PLAN_CHANGED',
  'EVENT_ALREADY_DELIVERED',
  'EVENT_NOT_AWAITED',
  'WAIT_TIMEOUT',
])

/** A readable message for any thrown value. */
export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message
  if (typeof err === 'string') return err
  try {
    return JSON.stringify(err) ?? String(err)
  } catch {
    return String(err)
  }
}

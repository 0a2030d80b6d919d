/** What an error response says in `error.code`. */
export type HttpErrorCode =
  | 'BAD_REQUEST'
  | 'INVALID_JSON'
  | 'UNAUTHORIZED'
  | 'SIGNATURE_INVALID'
  | 'NOT_FOUND'
  | 'RUN_NOT_FOUND'
  | 'RUN_EXISTS'
  | 'METHOD_NOT_ALLOWED'
  | 'RUN_FINISHED'
  | 'EVENT_ALREADY_DELIVERED'
  | 'EVENT_NOT_AWAITED'
  | 'PAYLOAD_TOO_LARGE'
  | 'VALIDATION_FAILED'
  | 'UNAVAILABLE'
  | 'INTERNAL_ERROR'

/**
 * An error the handler answers with its own status: the body is
 * `{ error: { code, message } }` (plus `issues` for a 422).
 * @example
 * throw new HttpError(404, 'NOT_FOUND', 'No webhook at /webhooks/x.')
 */
export class HttpError extends Error {
  readonly status: number
  readonly code: HttpErrorCode
  readonly headers: Record<string, string> | undefined
  readonly issues: readonly JsonIssue[] | undefined
  constructor(status: number, code: HttpErrorCode, message: string, extra?: { headers?: Record<string, string>; issues?: readonly JsonIssue[] }) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
    this.headers = extra?.headers
    this.issues = extra?.issues
  }
}

/** One schema issue as a 422 body lists it: Standard Schema's issue with a JSON-safe path. */
export interface JsonIssue {
  message: string
  path?: (string | number)[]
}

/** Standard Schema issues (whose path items may be symbols or `{ key }`) as plain JSON. */
export function jsonIssues(issues: readonly { message: string; path?: ReadonlyArray<PropertyKey | { key: PropertyKey }> | undefined }[]): JsonIssue[] {
  return issues.map((i) => {
    const out: JsonIssue = { message: i.message }
    if (i.path && i.path.length > 0) {
      out.path = i.path.map((p) => {
        const k = typeof p === 'object' && p !== null ? p.key : p
        return typeof k === 'number' ? k : String(k)
      })
    }
    return out
  })
}

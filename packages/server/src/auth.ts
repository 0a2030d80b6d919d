import { createHash, timingSafeEqual } from 'node:crypto'
import { HttpError } from './errors'
import { headerOf } from './adapters/light-request'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/**
 * Checks `Authorization: Bearer <token>` in constant time (both sides are hashed first, so
 * neither the content nor the length of the token leaks). Throws an `HttpError` 401 with
 * `WWW-Authenticate: Bearer` when the token is missing or wrong; does nothing when `token` is unset.
 * @example
 * requireBearer(request, process.env.STEPLINE_TOKEN)
 */
export function requireBearer(request: Request, token: string | undefined): void {
  if (token === undefined) return
  const header = headerOf(request, 'authorization')
  const m = header === null ? null : /^Bearer\s+(\S+)\s*$/i.exec(header)
  if (m === null) {
    throw new HttpError(401, 'UNAUTHORIZED', 'This endpoint needs `Authorization: Bearer <token>`.', { headers: { 'www-authenticate': 'Bearer realm="stepline"' } })
  }
  if (!timingSafeEqual(digest(m[1]!), digest(token))) {
    throw new HttpError(401, 'UNAUTHORIZED', 'The bearer token is not valid.', { headers: { 'www-authenticate': 'Bearer realm="stepline", error="invalid_token"' } })
  }
}

import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Signs a webhook body the way the server verifies it: `t=<unix seconds>,v1=<hex HMAC-SHA256
 * of "<t>.<body>">` (Stripe's scheme). Put the result in the trigger's signature header.
 * @example
 * const body = JSON.stringify({ orderId: 'o1' })
 * await fetch(url, { method: 'POST', body, headers: { 'x-stepline-signature': signPayload(secret, body) } })
 */
export function signPayload(secret: string, body: string | Uint8Array, timestamp: number = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${hmacHex(secret, timestamp, body)}`
}

function hmacHex(secret: string, timestamp: number, body: string | Uint8Array): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')
}

/** Why a signature was refused; `undefined` when it is good. */
export type SignatureProblem = 'missing' | 'malformed' | 'expired' | 'mismatch'

/**
 * Checks a signature header against the raw body: the timestamp must be within `toleranceSec`
 * of `nowSec` (so a captured request cannot be replayed later), and one `v1` must equal the
 * HMAC, compared in constant time. Several `v1=` entries are allowed (secret rotation).
 * @example
 * if (verifySignature(secret, request.headers.get('x-stepline-signature'), raw, 300) !== undefined) return new Response(null, { status: 401 })
 */
export function verifySignature(secret: string, header: string | null, body: string | Uint8Array, toleranceSec: number, nowSec: number = Date.now() / 1000): SignatureProblem | undefined {
  if (header === null || header.trim() === '') return 'missing'
  let t: number | undefined
  const sigs: string[] = []
  for (const part of header.split(',')) {
    const eq = part.indexOf('=')
    if (eq < 0) continue
    const k = part.slice(0, eq).trim()
    const v = part.slice(eq + 1).trim()
    if (k === 't' && /^\d{1,12}$/.test(v)) t = Number(v)
    else if (k === 'v1' && /^[0-9a-f]{64}$/i.test(v)) sigs.push(v.toLowerCase())
  }
  if (t === undefined || sigs.length === 0) return 'malformed'
  if (Math.abs(nowSec - t) > toleranceSec) return 'expired'
  const expected = Buffer.from(hmacHex(secret, t, body), 'hex')
  let ok = false
  // Every candidate is compared, so the time taken does not tell which one matched.
  for (const s of sigs) ok = timingSafeEqual(expected, Buffer.from(s, 'hex')) || ok
  return ok ? undefined : 'mismatch'
}

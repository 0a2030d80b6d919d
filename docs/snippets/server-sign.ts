import { signPayload, verifySignature } from '@stepline/server'

const secret = 'whsec_demo'
const body = JSON.stringify({ orderId: 'o-1', amount: 42 })

// Sign as the server verifies: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">.
const header = signPayload(secret, body) // e.g. 't=1795514021,v1=5f0c…'
const fixed = signPayload(secret, body, 1_700_000_000) // a chosen timestamp, for tests

// verifySignature gives undefined when good, or why not.
console.log(verifySignature(secret, header, body, 300)) // undefined
console.log(verifySignature(secret, fixed, body, 300)) // 'expired': outside the 300 s window
console.log(verifySignature(secret, header, body.replace('42', '43'), 300)) // 'mismatch'
console.log(verifySignature(secret, null, body, 300)) // 'missing'
console.log(verifySignature(secret, 'sha256=abc', body, 300)) // 'malformed'

// Rotating a secret: send one v1 per secret; any match is enough.
const old = signPayload('whsec_old', body).split(',')[1]
console.log(verifySignature(secret, `${header},${old}`, body, 300)) // undefined

import { createHmac } from 'node:crypto'

// A sender that does not use Stepline: sign the exact bytes you send.
const secret = process.env.ORDERS_HOOK_SECRET ?? 'whsec_demo'
const body = JSON.stringify({ orderId: 'o-1', amount: 42 })
const t = Math.floor(Date.now() / 1000) // unix seconds
const v1 = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')

const res = await fetch('http://127.0.0.1:3000/webhooks/orders', {
  method: 'POST',
  body, // the same string that was signed: re-serialising it breaks the signature
  headers: {
    'content-type': 'application/json',
    'x-stepline-signature': `t=${t},v1=${v1}`,
    'idempotency-key': 'order-o-1', // a retry of this request gives the same run
  },
})
console.log(res.status, await res.json()) // 202 { runId: '…' }

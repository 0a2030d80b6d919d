import { workflow } from '@stepline/core'
import { isScheduleTrigger, isWebhookTrigger, schedule, webhook } from '@stepline/server'
import { z } from 'zod'

const triggers = [
  webhook({
    path: 'payments/refunds', // served at <basePath>/webhooks/payments/refunds
    method: 'POST', // or 'PUT' / 'PATCH' (default 'POST'); one workflow per path and method
    secret: process.env.REFUND_HOOK_SECRET, // when set: HMAC-SHA256 signature required (401)
    signatureHeader: 'x-stepline-signature', // default
    toleranceSec: 300, // default: the replay window, in seconds either side of now
    schema: z.object({ orderId: z.string() }).loose(), // checked first (422), before `input`
  }),
  schedule('*/15 * * * *', { timezone: 'Europe/Berlin', payload: { orderId: 'sweep', amount: 0 } }),
]

export const refund = workflow('refund', {
  input: z.object({ orderId: z.string(), amount: z.number() }), // checked second (422)
  triggers, // plain data: they do not change the workflow's plan hash
}).step('refund', (ctx) => ctx.payload.amount)

const hooks = triggers.filter(isWebhookTrigger)
const crons = triggers.filter(isScheduleTrigger)
console.log(hooks[0]?.path, hooks[0]?.method, crons[0]?.cron) // 'payments/refunds' 'POST' '*/15 * * * *'

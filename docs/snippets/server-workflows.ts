import { workflow } from '@stepline/core'
import { schedule, webhook } from '@stepline/server'
import { z } from 'zod'

const Order = z.object({ orderId: z.string(), amount: z.number().positive() })

// POST /webhooks/orders starts a run; the body is validated by the workflow's input schema.
export const order = workflow('order', { input: Order, triggers: [webhook({ path: 'orders' })] })
  .step('charge', (ctx) => ({ charged: ctx.payload.amount }))
  .waitForEvent<'shipped', { carrier: string }>('shipped') // resumed by POST /runs/:id/events/shipped
  .step('notify', (ctx) => `order ${ctx.payload.orderId} shipped by ${ctx.last.carrier}`)

// Every day at 03:00 UTC; the payload is { scheduledAt: '<tick ISO>' }.
export const digest = workflow<{ scheduledAt: string }>('nightly-digest', { triggers: [schedule('0 3 * * *', { timezone: 'UTC' })] })
  .step('publish', (ctx) => `digest for ${ctx.payload.scheduledAt.slice(0, 10)}`)

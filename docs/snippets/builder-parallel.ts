import { workflow } from '@stepline/core'

declare const users: { get(id: string, signal: AbortSignal): Promise<{ name: string }> }
declare const orders: { get(id: string): Promise<{ total: number }> }

// An array of branches gives a tuple …
const tuple = workflow<{ userId: string; orderId: string }>('tuple')
  .parallel('fetch', [(ctx) => users.get(ctx.payload.userId, ctx.signal), (ctx) => orders.get(ctx.payload.orderId)], {
    maxConcurrency: 2,
    timeout: '30s',
  })
  .step('combine', (ctx) => {
    const [user, order] = ctx.last // [{ name: string }, { total: number }]
    return `${user.name}: ${order.total}`
  })

// … an object of branches gives an object. Unnamed, the node is called `parallel#1`.
const object = workflow<{ userId: string; orderId: string }>('object')
  .parallel({
    user: (ctx) => users.get(ctx.payload.userId, ctx.signal),
    order: (ctx) => orders.get(ctx.payload.orderId),
  })
  .step('combine', (ctx) => `${ctx.last.user.name}: ${ctx.last.order.total}`)

import { createEngine, ValidationError, workflow } from '@stepline/core'
import { type } from 'arktype'
import * as v from 'valibot'
import { z } from 'zod'

// Any Standard Schema validates the payload: zod …
const byZod = workflow('by-zod', { input: z.object({ orderId: z.string() }) }).step('a', (ctx) => ctx.payload.orderId)
// … valibot …
const OrderId = v.object({ orderId: v.string() })
const byValibot = workflow('by-valibot', { input: OrderId }).step('a', (ctx) => ctx.payload.orderId)
// … or arktype.
const OrderIdArk = type({ orderId: 'string' })
const byArktype = workflow('by-arktype', { input: OrderIdArk }).step('a', (ctx) => ctx.payload.orderId)

const engine = createEngine({ workflows: [byZod, byValibot, byArktype] })

// The same idempotency key (per workflow) gives the same run, never two.
const first = await engine.start(byZod, { orderId: 'o-1' }, { idempotencyKey: 'order-o-1' })
const again = await engine.start(byZod, { orderId: 'o-1' }, { idempotencyKey: 'order-o-1' })
console.log(first.id === again.id) // true

// Choose the run id yourself (e.g. to match an id in your database).
const mine = await engine.start(byValibot, { orderId: 'o-2' }, { runId: 'run-o-2' })
console.log(mine.id) // 'run-o-2'

// An invalid payload is rejected before a run exists.
try {
  // @ts-expect-error orderId must be a string
  await engine.start(byArktype, { orderId: 42 })
} catch (error) {
  if (error instanceof ValidationError) console.log(error.issues.map((i) => i.message)) // [ 'orderId must be a string (was a number)' ]
}

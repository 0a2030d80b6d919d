import { createEngine, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'

const order = workflow<{ orderId: string }>('order')
  .step('reserve', (ctx) => ({ orderId: ctx.payload.orderId, reserved: true }))
  .step('ship', (ctx) => `shipped ${ctx.last.orderId}`)

const store = sqliteStore({
  path: './.stepline/orders.db', // default ./.stepline/stepline.db; the directory is created
  groupCommit: true, // default: entries written in one turn of the microtask queue share a commit
  synchronous: 'normal', // default: durable across a process crash; 'full' also across power loss
  busyTimeoutMs: 5000, // default: how long a write waits for another process's lock
})

// Unfinished runs of `order` in the file resume as soon as it is registered (recover: true).
const engine = createEngine({ store, workflows: [order] })
console.log(await engine.run(order, { orderId: 'o-1' })) // 'shipped o-1'

await engine.close() // closes the executor; a store you passed in stays yours
store.close()

import { createEngine, memoryStore, workflow } from '@stepline/core'

let charges = 0
let crashed = false
const order = workflow<{ amount: number }>('order')
  .step('charge', (ctx) => {
    charges++
    return { charged: ctx.payload.amount }
  })
  // Before the "crash" this step never finishes, like a process killed mid-step.
  .step('ship', () => (crashed ? 'shipped' : new Promise<string>(() => {})))

// Both engines share one store, as two processes share one database.
const store = memoryStore()
const before = createEngine({ store, workflows: [order] })
await before.start(order, { amount: 10 })
await new Promise((r) => setTimeout(r, 10))
crashed = true // … the process dies here …

// recover: false to call recover() yourself and get the handles (by default it runs on its own).
const after = createEngine({ store, workflows: [order], recover: false })
for (const handle of await after.recover()) {
  // `charge` is replayed from the journal; `ship`, in flight at the crash, runs again.
  console.log(await handle.result()) // 'shipped'
}
console.log({ charges }) // { charges: 1 }

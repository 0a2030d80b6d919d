import { workflow } from '@stepline/core'

declare const inventory: { reserve(sku: string, qty: number, signal: AbortSignal): Promise<{ sku: string; held: number }> }

const reserve = workflow<{ items: { sku: string; qty: number }[] }>('reserve')
  .forEach(
    'reserve-items',
    (ctx) => ctx.payload.items,
    // Called again for every item, so closures over `item` see that item. It must build the
    // same steps each time (branch with .if() inside the body, not with a JS `if`).
    (item, flow) =>
      flow
        .step('reserve', (ctx) => inventory.reserve(item.sku, item.qty, ctx.signal), { retry: 3 })
        .step('tag', (ctx) => ({ ...ctx.last, index: ctx.index })),
    { concurrency: 8, chunkSize: 4 },
  )
  .step('count', (ctx) => ctx.last.length) // ctx.last: { sku; held; index }[] in input order

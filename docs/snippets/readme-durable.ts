import { createEngine, workflow } from '@stepline/core'
import { sqliteStore } from '@stepline/store-sqlite'

const order = workflow<{ orderId: string }>('process-order').step('charge', (ctx) => ({ charged: ctx.payload.orderId }))

const engine = createEngine({ store: sqliteStore({ path: './.stepline/stepline.db' }), workflows: [order] })

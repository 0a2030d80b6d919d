/**
 * The order-processing workflow and the local stand-ins for the services it calls.
 *
 * Schema-checked input; customer and prices fetched in parallel; a branch on the order size
 * (`if`/`elseIf`/`else`); a payment gateway that answers 503 twice before it charges, retried
 * with exponential backoff; a reservation per item (`forEach`, two at a time); and a race
 * between a primary and a backup carrier, with a flat-rate fallback through `onError` when
 * both fail.
 */
import { NonRetriableError, workflow } from '@stepline/core'
import { z } from 'zod'

export const Order = z.object({
  orderId: z.string().min(1),
  customerId: z.string().min(1),
  items: z.array(z.object({ sku: z.string(), qty: z.number().int().positive(), kg: z.number().positive() })).min(1),
})
export type Order = z.infer<typeof Order>

export const processOrder = workflow('process-order', { input: Order, timeout: '30s' })
  .parallel('fetch', {
    customer: (ctx) => customers.get(ctx.payload.customerId, ctx.signal),
    prices: (ctx) => catalog.prices(ctx.payload.items.map((i) => i.sku), ctx.signal),
  })
  .step('price', (ctx) => {
    const { customer, prices } = ctx.last
    const subtotal = ctx.payload.items.reduce((sum, i) => sum + (prices[i.sku] ?? 0) * i.qty, 0)
    const discount = customer.tier === 'gold' ? Math.round(subtotal * 0.05) : 0
    return { customer: customer.name, subtotal, discount, total: subtotal - discount }
  })
  .if('large-order', (ctx) => ctx.last.total > 1000)
    .step('manual-review', async (ctx) => {
      ctx.log.info('queued for a human', { total: ctx.last.total })
      return { approved: true, by: 'risk team' }
    })
  .elseIf('medium-order', (ctx) => ctx.last.total > 200)
    .step('fraud-check', async (ctx) => {
      const score = await risk.score(ctx.payload.customerId, ctx.last.total, ctx.signal)
      return { approved: score < 0.8, by: `fraud model (score ${score})` }
    })
  .else()
    .step('auto-approve', () => ({ approved: true, by: 'rule: small order' }))
  .endIf()
  .step(
    'charge',
    (ctx) => {
      if (!ctx.last.approved) throw new NonRetriableError(`order rejected by ${ctx.last.by}`)
      // The gateway deduplicates on this key, so a retried (or resumed) charge is charged once.
      return payments.charge(ctx.steps.price.output.total, `${ctx.run.id}:charge`, ctx.signal)
    },
    { retry: { attempts: 4, backoff: 'exponential', delay: '40ms', maxDelay: '500ms', jitter: 0.5 }, timeout: '2s' },
  )
  .forEach(
    'reserve',
    (ctx) => ctx.payload.items,
    (item, flow) => flow.step('reserve-item', (ctx) => inventory.reserve(item.sku, item.qty, ctx.signal), { retry: 2 }),
    { concurrency: 2 },
  )
  .race(
    'quote',
    {
      primary: (ctx) => carriers.primary(totalKg(ctx.payload.items), ctx.signal),
      backup: (ctx) => carriers.backup(totalKg(ctx.payload.items), ctx.signal),
    },
    { timeout: '1s' },
  )
  .onError((ctx) => ({ carrier: 'flat rate (fallback)', price: 14.9, reason: ctx.error.message }))
  .step('confirm', (ctx) => ({
    orderId: ctx.payload.orderId,
    customer: ctx.steps.price.output.customer,
    approvedBy: (ctx.steps['manual-review'].output ?? ctx.steps['fraud-check'].output ?? ctx.steps['auto-approve'].output)?.by,
    charged: ctx.steps.charge.output.amount,
    chargeId: ctx.steps.charge.output.chargeId,
    reserved: ctx.steps.reserve.output.map((r) => `${r.qty}× ${r.sku} @ ${r.bin}`),
    shipping: `${ctx.last.carrier}, ${ctx.last.price.toFixed(2)}`,
  }))

function totalKg(items: { qty: number; kg: number }[]): number {
  return items.reduce((sum, i) => sum + i.qty * i.kg, 0)
}

// ---- local stand-ins ----------------------------------------------------------------------
// Each answers after a short timer and honours the AbortSignal it is given, as `fetch` does.

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export interface Customer {
  id: string
  name: string
  tier: 'gold' | 'standard'
}

export const customers = {
  async get(id: string, signal: AbortSignal): Promise<Customer> {
    await wait(60, signal)
    return { id, name: 'Ada Lovelace', tier: 'gold' }
  },
}

const PRICES: Record<string, number> = { 'SKU-KEYBOARD': 129, 'SKU-MOUSE': 49, 'SKU-MONITOR': 329, 'SKU-CABLE': 9 }

export const catalog = {
  async prices(skus: string[], signal: AbortSignal): Promise<Record<string, number>> {
    await wait(90, signal)
    return Object.fromEntries(skus.map((sku) => [sku, PRICES[sku] ?? 0]))
  },
}

export const risk = {
  /** 0 (safe) … 1 (fraud). */
  async score(customerId: string, total: number, signal: AbortSignal): Promise<number> {
    await wait(40, signal)
    return customerId.startsWith('blocked-') || total > 5000 ? 0.93 : 0.12
  },
}

/** Calls seen per idempotency key: the gateway is busy (503) for the first two of each. */
const chargeCalls = new Map<string, number>()
export const payments = {
  async charge(amount: number, idempotencyKey: string, signal: AbortSignal): Promise<{ chargeId: string; amount: number }> {
    await wait(30, signal)
    const call = (chargeCalls.get(idempotencyKey) ?? 0) + 1
    chargeCalls.set(idempotencyKey, call)
    if (call <= 2) throw new Error(`503 payment gateway busy (call ${call})`)
    return { chargeId: `ch_${Math.round(amount * 100)}`, amount }
  },
}

export const inventory = {
  async reserve(sku: string, qty: number, signal: AbortSignal): Promise<{ sku: string; qty: number; bin: string }> {
    await wait(50 + (sku.length % 4) * 15, signal)
    return { sku, qty, bin: `B-${sku.length}${qty}` }
  },
}

export interface Quote {
  carrier: string
  price: number
}

export const carriers = {
  /** Set to make both carriers fail, to see the race's `onError` fallback. */
  down: false,
  /** The contract carrier: good prices, slow API. */
  async primary(kg: number, signal: AbortSignal): Promise<Quote> {
    await wait(140, signal)
    if (carriers.down) throw new Error('primary carrier API timed out upstream')
    return { carrier: 'ParcelCo', price: 4 + kg * 0.8 }
  },
  /** The backup carrier: quick, a little dearer. */
  async backup(kg: number, signal: AbortSignal): Promise<Quote> {
    await wait(70, signal)
    if (carriers.down) throw new Error('backup carrier has no service to this region')
    return { carrier: 'QuickShip', price: 5 + kg * 0.9 }
  },
}

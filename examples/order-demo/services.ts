/**
 * Local stand-ins for the services an order touches. Each answers after a short timer, and
 * honours the AbortSignal it is given, the way a real `fetch` would.
 */

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
  async score(customerId: string, total: number): Promise<number> {
    await wait(40)
    return customerId.startsWith('blocked-') || total > 5000 ? 0.93 : 0.12
  },
}

/** Fails the first two calls with a 503, as a busy gateway does. */
let chargeCalls = 0
export const payments = {
  async charge(amount: number, signal: AbortSignal): Promise<{ chargeId: string; amount: number }> {
    await wait(30, signal)
    if (++chargeCalls <= 2) throw new Error(`503 payment gateway busy (call ${chargeCalls})`)
    return { chargeId: `ch_${Math.round(amount * 100)}`, amount }
  },
}

export const inventory = {
  async reserve(sku: string, qty: number, signal: AbortSignal): Promise<{ sku: string; qty: number; bin: string }> {
    await wait(50 + (sku.length % 4) * 15, signal)
    return { sku, qty, bin: `B-${sku.length}${qty}` }
  },
}

export const carriers = {
  /** The contract carrier: good prices, slow API, and down when `down` is set. */
  async primary(kg: number, down: boolean, signal: AbortSignal): Promise<{ carrier: string; price: number }> {
    await wait(140, signal)
    if (down) throw new Error('primary carrier API timed out upstream')
    return { carrier: 'ParcelCo', price: 4 + kg * 0.8 }
  },
  /** The backup carrier: quick, a little dearer. */
  async backup(kg: number, down: boolean, signal: AbortSignal): Promise<{ carrier: string; price: number }> {
    await wait(70, signal)
    if (down) throw new Error('backup carrier has no service to this region')
    return { carrier: 'QuickShip', price: 5 + kg * 0.9 }
  },
}

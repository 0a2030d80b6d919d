import { workflow } from '@stepline/core'

declare const primary: { quote(parcel: { kg: number }, signal: AbortSignal): Promise<{ carrier: 'primary'; price: number }> }
declare const backup: { quote(parcel: { kg: number }, signal: AbortSignal): Promise<{ carrier: 'backup'; price: number }> }

const shipping = workflow<{ kg: number }>('shipping')
  .race(
    'quote',
    [(ctx) => primary.quote(ctx.last, ctx.signal), (ctx) => backup.quote(ctx.last, ctx.signal)],
    { timeout: '3s' },
  )
  // Runs only when the race failed (every branch failed, or the timeout hit).
  .onError((ctx) => ({ carrier: 'flat-rate' as const, price: 9.99, reason: ctx.error.message }))
  .step('label', (ctx) => {
    const quote = ctx.last // { carrier: 'primary' | 'backup'; price } | { carrier: 'flat-rate'; price; reason }
    return `${quote.carrier} @ ${quote.price}`
  })

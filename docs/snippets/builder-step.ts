import { NonRetriableError, workflow } from '@stepline/core'

declare const gateway: { charge(amount: number, signal: AbortSignal): Promise<{ id: string; status: number }> }
declare const fx: { rate(currency: string): Promise<number> }

const checkout = workflow<{ amount: number; currency: string }>('checkout')
  .step('rate', (ctx) => fx.rate(ctx.payload.currency), {
    // The same key within `ttl` reuses the stored output instead of running the step.
    cache: { key: (ctx) => ctx.payload.currency, ttl: '10m' },
  })
  .step(
    'charge',
    async (ctx) => {
      const res = await gateway.charge(ctx.payload.amount * ctx.last, ctx.signal)
      if (res.status === 402) throw new NonRetriableError('card declined') // no more attempts
      return res.id
    },
    {
      retry: {
        attempts: 4, // 1 try + 3 retries
        backoff: 'exponential', // waits 200ms, 400ms, 800ms …
        delay: '200ms',
        maxDelay: '2s', // … capped at 2 s
        jitter: true, // each wait drawn uniformly from [0, wait]
        retryIf: (error) => !(error instanceof TypeError), // a bug is not worth retrying
      },
      timeout: '5s', // per attempt; ctx.signal aborts on expiry
    },
  )
  // `retry` also takes a plain number of attempts.
  .step('notify', (ctx) => `charged ${ctx.steps.charge.output}`, { retry: 3 })

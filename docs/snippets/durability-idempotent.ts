import { workflow } from '@stepline/core'

declare const payments: {
  charge(input: { amount: number; idempotencyKey: string }, signal: AbortSignal): Promise<{ chargeId: string }>
}

const checkout = workflow<{ amount: number }>('checkout')
  .step('charge', (ctx) =>
    // If the process dies after the gateway charged but before the journal entry was written,
    // this step runs again after recovery. The same key makes the gateway answer with the
    // first charge instead of making a second one.
    payments.charge({ amount: ctx.payload.amount, idempotencyKey: `${ctx.run.id}:charge` }, ctx.signal),
  )
  .step('receipt', (ctx) => `receipt for ${ctx.last.chargeId}`) // replayed, never re-run, once journaled

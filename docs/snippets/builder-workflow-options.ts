import { workflow } from '@stepline/core'
import { z } from 'zod'

const Signup = z.object({ email: z.email(), plan: z.enum(['free', 'pro']) })

const signup = workflow('signup', {
  input: Signup, // any Standard Schema; ctx.payload is its output type
  concurrency: 20, // runs of this workflow at once per engine; more wait as `queued`
  timeout: '5m', // the whole run
  description: 'Creates an account and sends the welcome mail',
  onError: async ({ error, payload, run }) => {
    // after node-level handlers; the run stays failed
    console.error(`signup ${run.id} for ${String(payload.email)} failed: ${error.message}`)
  },
})
  .step('create-account', (ctx) => ({ id: `acct_${ctx.payload.email}`, plan: ctx.payload.plan }))
  .step('welcome', (ctx) => `welcome mail sent to account ${ctx.last.id}`)

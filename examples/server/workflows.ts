/**
 * The workflows `stepline serve examples/server/workflows.ts` serves (the README's main command):
 * a webhook-triggered signup that waits for an e-mail confirmation, and a nightly cron report.
 */
import { workflow } from '@stepline/core'
import { schedule, webhook } from '@stepline/server'
import { z } from 'zod'

const Signup = z.object({ email: z.email(), name: z.string().min(1), plan: z.enum(['free', 'pro']).default('free') })

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export const signup = workflow('signup', { input: Signup, triggers: [webhook({ path: 'signup' })] })
  .parallel('enrich', {
    company: async (ctx) => (await pause(40), ctx.payload.email.split('@')[1]),
    score: async (ctx) => (await pause(25), ctx.payload.plan === 'pro' ? 0.9 : 0.4),
  })
  .step('welcome-mail', async (ctx) => (await pause(15), { to: ctx.payload.email, template: `welcome-${ctx.payload.plan}` }), {
    retry: { attempts: 3, delay: '50ms' },
  })
  .waitForEvent<'confirmed', { at: string }>('confirmed', { timeout: '1d', match: (ctx) => ctx.payload.email })
  .onError(() => ({ at: 'never (confirmation timed out)' }))
  .step('activate', (ctx) => ({ email: ctx.payload.email, company: ctx.steps.enrich.output.company, confirmedAt: ctx.last.at }))

export const nightlyReport = workflow('nightly-report', { triggers: [schedule('0 3 * * *', { timezone: 'UTC' })] })
  .step('count', () => ({ signups: 0 }))
  .step('publish', (ctx) => `report: ${ctx.last.signups} signups`)

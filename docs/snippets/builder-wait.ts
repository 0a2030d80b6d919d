import { workflow } from '@stepline/core'

const publish = workflow<{ postId: string; publishAt: string }>('publish')
  .step('draft', (ctx) => ({ postId: ctx.payload.postId }))
  // Until a point in time: a Date, an ISO string, ms since the epoch, or a function of ctx.
  .sleepUntil('embargo', (ctx) => ctx.payload.publishAt)
  // Until `engine.send(runId | { match }, 'review', data)`; the data is the output.
  .waitForEvent<'review', { ok: boolean }>('review', { timeout: '1d', match: (ctx) => ctx.payload.postId })
  .onError((ctx) => ({ ok: false, reason: ctx.error.message })) // the wait timed out (WAIT_TIMEOUT)
  .step('go-live', (ctx) => (ctx.last.ok ? `live: ${ctx.steps.draft.output.postId}` : 'held back'))

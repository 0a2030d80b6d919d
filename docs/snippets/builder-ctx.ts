import { workflow } from '@stepline/core'

const wf = workflow<{ userId: string }>('ctx-tour')
  .step('first', (ctx) => {
    ctx.payload.userId // the validated input
    ctx.last // the payload too: the first node's `last` is the payload
    ctx.run // { id, workflowId, attempt }: attempt grows each time the run is resumed
    ctx.attempt // 1-based attempt of this step (grows with retries)
    ctx.signal // AbortSignal: timeout, cancel, a failed parallel sibling, a lost race
    ctx.log.info('starting', { user: ctx.payload.userId }) // a `log` event (and the engine's logger)
    return 1
  })
  .step('second', (ctx) => {
    const s = ctx.steps.first // { output: number, status, attempts, durationMs, error? }
    return s.output + ctx.last
  })

import { workflow } from '@stepline/core'

const reminder = workflow<{ email: string }>('reminder')
  .step('send', (ctx) => ({ sentTo: ctx.payload.email }))
  .sleep('cool-down', '10m') // or a number of milliseconds: .sleep('cool-down', 600_000)
  .step('follow-up', (ctx) => `following up with ${ctx.last.sentTo}`) // ctx.last passes through

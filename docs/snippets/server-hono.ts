import { createEngine } from '@stepline/core'
import { createHandler, mountHono, toHono } from '@stepline/server'
import { order } from './server-workflows'

// import { Hono } from 'hono'; const app = new Hono()
declare const app: Parameters<typeof mountHono>[0]

const engine = createEngine({ workflows: [order] })
const handler = createHandler({ engine, workflows: [order], basePath: '/stepline' }) // = the mount path

mountHono(app, handler, '/stepline') // every method on /stepline and everything below it
// or one route at a time: app.all('/stepline/*', toHono(handler))
app.post('/stepline/webhooks/orders', toHono(handler))

// import { serve } from '@hono/node-server'; serve({ fetch: app.fetch, port: 3000 })
// (or `export default app` on Bun, Deno, Cloudflare Workers)

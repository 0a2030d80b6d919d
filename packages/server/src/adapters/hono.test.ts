import { serve } from '@hono/node-server'
import { once } from 'node:events'
import type { Server } from 'node:http'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { adapterSuite, webhookSuite, stubHandler, urlOf, type Served } from '../../test/adapter-suite'
import { mountHono, toHono } from './hono'
import type { FetchHandler } from '../handler'
import { createEngine, workflow } from '@stepline/core'
import { createHandler } from '../handler'
import { signPayload } from '../signature'
import { webhook } from '../triggers'

async function listen(app: Hono): Promise<Served> {
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server
  if (!server.listening) await once(server, 'listening')
  return {
    url: urlOf(server),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

function start(handler: FetchHandler): Promise<Served> {
  const app = new Hono()
  mountHono(app, handler, '/api')
  app.get('/own', (c) => c.text('own route'))
  return listen(app)
}

describe('toHono / mountHono', () => {
  adapterSuite(start)
  webhookSuite(start)

  it('toHono works as a plain route handler, and mountHono serves the base path itself', async () => {
    const stub = stubHandler()
    const app = new Hono()
    app.post('/api/accept', toHono(stub.handler))
    const res = await app.request('/api/accept', { method: 'POST', body: '{"x":1}' })
    expect([res.status, await res.json()]).toEqual([202, { runId: 'run-1', got: { x: 1 } }])

    const mounted = mountHono(new Hono(), stub.handler, '/api/')
    expect((await mounted.request('/api')).status).toBe(404)
    expect(await (await mounted.request('/api')).json()).toEqual({ error: 'not found' })
    expect((await mounted.request('/api/echo')).status).toBe(200)
    expect((await mounted.request('/elsewhere')).status).toBe(404)
    expect(await (await mounted.request('/elsewhere')).text()).toBe('404 Not Found') // Hono's own
  })

  it('serves a webhook whose body a Hono middleware already read (c.req.text(), c.req.json()), signed ones included', async () => {
    const engine = createEngine()
    const echo = workflow('echo', { triggers: [webhook({ path: 'echo' }), webhook({ path: 'signed', secret: 's3cret' })] }).step('echo', (ctx) => ctx.payload)
    const app = new Hono()
    app.use('/api/webhooks/echo', async (c, next) => {
      await c.req.json()
      await next()
    })
    app.use('/api/webhooks/signed', async (c, next) => {
      await c.req.text()
      await next()
    })
    mountHono(app, createHandler({ engine, workflows: [echo], basePath: '/api' }), '/api')
    try {
      const body = '{ "orderId" : "o-1" }'
      for (const [path, headers] of [['echo', {}], ['signed', { 'x-stepline-signature': signPayload('s3cret', body) }]] as const) {
        const res = await app.request(`/api/webhooks/${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body })
        expect([path, res.status]).toEqual([path, 202])
        const { runId } = (await res.json()) as { runId: string }
        expect(await engine.handle(runId).result()).toEqual({ orderId: 'o-1' })
      }
    } finally {
      await engine.close()
    }
  })
})

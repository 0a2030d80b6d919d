import { serve } from '@hono/node-server'
import { once } from 'node:events'
import type { Server } from 'node:http'
import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { adapterSuite, webhookSuite, stubHandler, urlOf, type Served } from '../../test/adapter-suite'
import { mountHono, toHono } from './hono'
import type { FetchHandler } from '../handler'

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
})

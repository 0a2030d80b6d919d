import Fastify from 'fastify'
import { describe, expect, it } from 'vitest'
import { adapterSuite, leaveMidBody, webhookSuite, stubHandler, type Served } from '../../test/adapter-suite'
import { fastifyStepline, toFastify } from './fastify'
import type { FetchHandler } from '../handler'

async function start(handler: FetchHandler, plugin: 'options' | 'bound' = 'options'): Promise<Served> {
  // Undici may leave a spare connection that never sent a request; 'idle' closing would wait on it.
  const app = Fastify({ forceCloseConnections: true })
  if (plugin === 'options') await app.register(fastifyStepline, { handler, prefix: '/api' })
  else await app.register(toFastify(handler), { prefix: '/api' })
  app.get('/own', async () => 'own route')
  app.post('/own/json', async (request) => ({ parsed: request.body }))
  const url = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url, close: () => app.close() }
}

describe('fastifyStepline', () => {
  adapterSuite((handler) => start(handler), { ownNodeTranslation: true })
  webhookSuite((handler) => start(handler))

  it('toFastify(handler) registers the same plugin', async () => {
    const served = await start(stubHandler().handler, 'bound')
    try {
      const echo = await (await fetch(`${served.url}/api/echo/b`, { method: 'POST', body: 'x' })).json()
      expect(echo).toMatchObject({ method: 'POST', url: '/api/echo/b', body: 'x' })
    } finally {
      await served.close()
    }
  })

  it("leaves the app's own body parsing alone, and streams bodies of any or no content type", async () => {
    const served = await start(stubHandler().handler)
    try {
      const own = await fetch(`${served.url}/own/json`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' })
      expect(await own.json()).toEqual({ parsed: { a: 1 } })
      const odd = await (await fetch(`${served.url}/api/echo`, { method: 'POST', headers: { 'content-type': 'application/x-weird' }, body: 'w' })).json()
      expect(odd).toMatchObject({ body: 'w' })
      const none = await (await fetch(`${served.url}/api/echo`, { method: 'POST', body: new Uint8Array([104, 105]) })).json()
      expect(none).toMatchObject({ body: 'hi' })
      const root = await fetch(`${served.url}/api`)
      expect(root.status).toBe(404) // reached the handler, which has no route there
      expect(await root.json()).toEqual({ error: 'not found' })
    } finally {
      await served.close()
    }
  })

  it('serves every path when registered without a prefix, next to the app routes', async () => {
    const app = Fastify({ forceCloseConnections: true })
    await app.register(fastifyStepline, { handler: stubHandler().handler })
    app.get('/own', async () => 'own route')
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      expect(await (await fetch(`${url}/own`)).text()).toBe('own route')
      expect(((await (await fetch(`${url}/echo/deep/path`, { method: 'DELETE' })).json()) as { method: string; url: string })).toMatchObject({ method: 'DELETE', url: '/echo/deep/path' })
      expect((await fetch(`${url}/`)).status).toBe(404)
    } finally {
      await app.close()
    }
  })

  it('answers 500 when the handler throws', async () => {
    const served = await start(async () => {
      throw new Error('boom')
    })
    try {
      expect((await fetch(`${served.url}/api/x`)).status).toBe(500)
    } finally {
      await served.close()
    }
  })

  it("answers a throwing handler's 500 with the same body as the handler's own (INTERNAL_ERROR)", async () => {
    const served = await start(async () => {
      throw new Error('boom')
    })
    try {
      const res = await fetch(`${served.url}/api/x`)
      expect(res.status).toBe(500)
      expect(await res.json()).toEqual({ error: { code: 'INTERNAL_ERROR', message: 'The server failed to handle this request.' } })
    } finally {
      await served.close()
    }
  })

  it('does not log a client that leaves in the middle of a small body as an error', async () => {
    const logged: string[] = []
    const app = Fastify({ forceCloseConnections: true, logger: { level: 'error', stream: { write: (line: string) => void logged.push(line) } } })
    await app.register(fastifyStepline, { handler: stubHandler().handler, prefix: '/api' })
    const url = await app.listen({ port: 0, host: '127.0.0.1' })
    try {
      await leaveMidBody(url, '/api/echo')
      expect(logged).toEqual([])
    } finally {
      await app.close()
    }
  })
})

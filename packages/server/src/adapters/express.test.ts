import type { Server } from 'node:http'
import { once } from 'node:events'
import express from 'express'
import { describe, expect, it } from 'vitest'
import { adapterSuite, leaveMidBody, webhookSuite, stubHandler, urlOf, type Echo, type Served } from '../../test/adapter-suite'
import { toExpress, type ExpressAdapterOptions } from './express'
import type { FetchHandler } from '../handler'
import { createEngine, workflow } from '@stepline/core'
import { createHandler } from '../handler'
import { webhook } from '../triggers'

async function listen(app: express.Express): Promise<Served> {
  const server: Server = app.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: urlOf(server),
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    }),
  }
}

function start(handler: FetchHandler, options?: ExpressAdapterOptions, before?: (app: express.Express) => void): Promise<Served> {
  const app = express()
  before?.(app)
  app.use('/api', toExpress(handler, options))
  app.get('/own', (_req, res) => {
    res.send('own route')
  })
  return listen(app)
}

describe('toExpress', () => {
  adapterSuite((handler) => start(handler), { ownNodeTranslation: true })
  webhookSuite((handler) => start(handler))

  it('re-serialises a body a parser already read (JSON, raw)', async () => {
    const stub = stubHandler()
    const served = await start(stub.handler, {}, (app) => {
      app.use(express.json())
      app.use('/api/echo/raw', express.raw({ type: '*/*' }))
    })
    try {
      const json = (await (await fetch(`${served.url}/api/echo/j`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{ "a" : 1 }' })).json()) as Echo
      expect(json).toMatchObject({ body: '{"a":1}', length: 7 })
      expect(json.headers['content-length']).toBe(undefined)
      const raw = await (await fetch(`${served.url}/api/echo/raw`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'exact bytes' })).json()
      expect(raw).toMatchObject({ body: 'exact bytes', length: 11 })
    } finally {
      await served.close()
    }
  })

  it('streams the body a parser skipped, even when it left `req.body = {}` (Express 4 body-parser); a parsed JSON `null` stays null', async () => {
    const engine = createEngine()
    const echo = workflow('echo', { triggers: [webhook({ path: 'echo' })] }).step('echo', (ctx) => ctx.payload)
    const served = await start(createHandler({ engine, workflows: [echo], basePath: '/api' }), {}, (app) => {
      // body-parser 1.x sets `req.body = req.body || {}` before it looks at the content type, then skips a text/plain body unread.
      app.use((req, _res, next) => {
        if (req.headers['content-type'] === 'text/plain') req.body ??= {}
        next()
      })
      app.use(express.json({ strict: false }))
    })
    try {
      const payloadOf = async (type: string, body: string): Promise<unknown> => {
        const res = await fetch(`${served.url}/api/webhooks/echo`, { method: 'POST', headers: { 'content-type': type }, body })
        expect(res.status).toBe(202)
        const { runId } = (await res.json()) as { runId: string }
        await engine.handle(runId).result()
        return (await engine.getRun(runId))?.payload
      }
      expect(await payloadOf('text/plain', '{"orderId":"o-1"}')).toEqual({ orderId: 'o-1' })
      expect(await payloadOf('application/json', 'null')).toBe(null)
      expect(await payloadOf('application/json', '[1,2]')).toEqual([1, 2])
    } finally {
      await served.close()
      await engine.close()
    }
  })

  it('falls through on 404 only with { fallthrough: true }', async () => {
    const stub = stubHandler()
    const late = (app: express.Express) => app.get('/api/later', (_req, res) => void res.send('express route'))
    const app = express()
    app.use('/api', toExpress(stub.handler, { fallthrough: true }))
    late(app)
    const served = await listen(app)
    try {
      expect(await (await fetch(`${served.url}/api/later`)).text()).toBe('express route')
      expect((await fetch(`${served.url}/api/echo`)).status).toBe(200)
    } finally {
      await served.close()
    }
    const strict = express()
    strict.use('/api', toExpress(stub.handler))
    late(strict)
    const served2 = await listen(strict)
    try {
      expect((await fetch(`${served2.url}/api/later`)).status).toBe(404)
    } finally {
      await served2.close()
    }
  })

  it('passes a handler error to next()', async () => {
    const app = express()
    app.use(toExpress(async () => {
      throw new Error('boom')
    }))
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).send(`caught ${err.message}`)
    })
    const served = await listen(app)
    try {
      const res = await fetch(`${served.url}/x`)
      expect([res.status, await res.text()]).toEqual([500, 'caught boom'])
    } finally {
      await served.close()
    }
  })

  it('does not pass a client that leaves in the middle of a small body to next()', async () => {
    const errors: unknown[] = []
    const app = express()
    app.use('/api', toExpress(stubHandler().handler))
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      errors.push(err)
      res.status(500).end()
    })
    const served = await listen(app)
    try {
      await leaveMidBody(served.url, '/api/echo')
      expect(errors).toEqual([])
    } finally {
      await served.close()
    }
  })

  it('passes a failure to write the answer to next() instead of rejecting (Express 4 ignores the promise)', async () => {
    const broken = new ReadableStream<Uint8Array>({
      pull(controller) {
        controller.error(new Error('body broke'))
      },
    })
    const middleware = toExpress(async () => new Response(broken, { headers: { 'content-length': '10' } }))
    const written: Promise<void>[] = []
    const app = express()
    app.use((req, res, next) => void written.push(middleware(req, res, next)))
    app.use((err: Error, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
      res.status(500).send(`caught ${err.message}`)
    })
    const served = await listen(app)
    try {
      const res = await fetch(`${served.url}/x`)
      expect([res.status, await res.text()]).toEqual([500, 'caught body broke'])
      await expect(written[0]).resolves.toBeUndefined()
    } finally {
      await served.close()
    }
  })
})

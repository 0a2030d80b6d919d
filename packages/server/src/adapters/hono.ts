import type { Context, Hono } from 'hono'
import type { FetchHandler } from '../handler'

/**
 * A Hono handler over a fetch handler: Hono already speaks `Request`/`Response`, so this only
 * hands the raw request over (full URL, so give the handler the same `basePath` as the route).
 * When a middleware already read the body (`c.req.json()`), the bytes Hono kept are handed over
 * instead: exact after `c.req.text()`, re-serialised (signatures then fail) after `c.req.json()`.
 * @example
 * const app = new Hono()
 * app.all('/stepline/*', toHono(createHandler({ engine, basePath: '/stepline' })))
 */
export function toHono(handler: FetchHandler): (c: Context) => Promise<Response> {
  return async (c) => {
    const raw = c.req.raw
    if (!raw.bodyUsed) return handler(raw)
    // A middleware read the body (`c.req.json()`, a validator): Hono keeps what it read, so the handler
    // gets those bytes (exact after `c.req.text()`/`arrayBuffer()`, re-serialised after `c.req.json()`).
    const headers = new Headers(raw.headers)
    headers.delete('content-length')
    return handler(new Request(raw.url, { method: raw.method, headers, body: await c.req.arrayBuffer(), signal: raw.signal }))
  }
}

/**
 * Routes every method under `basePath` (the path itself and everything below it) to the fetch
 * handler. Returns `app`.
 * @example
 * const app = new Hono()
 * mountHono(app, createHandler({ engine, basePath: '/stepline' }), '/stepline')
 * serve({ fetch: app.fetch, port: 3000 }) // @hono/node-server, or export app for Bun/Deno/Workers
 */
export function mountHono<A extends Hono<any, any, any>>(app: A, handler: FetchHandler, basePath = ''): A {
  const base = basePath.replace(/\/+$/, '')
  const h = toHono(handler)
  if (base !== '') app.all(base, h)
  app.all(`${base}/*`, h)
  return app
}

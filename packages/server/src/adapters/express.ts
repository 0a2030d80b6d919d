import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FetchHandler } from '../handler'
import type { Reply } from '../respond'
import { nodeCallOf } from './light-request'
import { toRequest, writeReply, type RequestBodyOverride, type Translated } from './node-http'

/** The part of an Express request the adapter reads (Express 4 and 5 requests fit). */
export interface ExpressRequestLike extends IncomingMessage {
  /** `'http'` or `'https'`; honours Express's `trust proxy` setting. */
  protocol: string
  /** The URL as the client sent it, mount path included. */
  originalUrl: string
  /** Set by a body parser (`express.json()`, `express.raw()`, …) that already read the stream. */
  body?: unknown
}

/** An Express `next` function. */
export type NextLike = (error?: unknown) => void

/** Options of `toExpress`. */
export interface ExpressAdapterOptions {
  /**
   * Pass requests the handler answers with 404 on to the next Express handler instead of
   * sending the 404. Default false: the handler's answer is final.
   */
  fallthrough?: boolean
}

/**
 * Express middleware over a fetch handler: translates the request, writes the `Response`
 * back as it streams (SSE included). The handler sees the full original URL, mount path
 * included, so mount it at the `basePath` the handler was made with.
 *
 * The body is streamed from the request itself. When a body parser ran first
 * (`app.use(express.json())` before it), the stream is gone: the adapter re-serialises
 * `req.body` (a Buffer or string as is, an object as JSON, or as a form for urlencoded
 * requests), which changes the bytes, so **webhook signatures will not verify**. Mount the
 * adapter before any body parser, or use `express.raw({ type: '*\/*' })` for its routes.
 * @example
 * const app = express()
 * app.use('/stepline', toExpress(createHandler({ engine, basePath: '/stepline' })))
 * app.use(express.json()) // parsers after the adapter
 * app.listen(3000)
 */
export function toExpress(handler: FetchHandler, options: ExpressAdapterOptions = {}): (req: ExpressRequestLike, res: ServerResponse, next: NextLike) => Promise<void> {
  const { light, answer } = nodeCallOf(handler)
  const fallthrough = options.fallthrough === true
  return async (req, res, next) => {
    let reply: Reply
    let translated: Translated
    try {
      const url = `${req.protocol}://${req.headers.host ?? 'localhost'}${req.originalUrl}`
      translated = await toRequest(req, res, url, { body: parsedBody(req), light })
      reply = await answer(translated.request)
    } catch (error) {
      // The client went away while its body was read: nobody to answer, and nothing failed here.
      if (!res.destroyed) next(error)
      return
    }
    if (fallthrough && reply.status === 404) {
      if (reply instanceof Response) await reply.body?.cancel().catch(() => undefined)
      next()
      return
    }
    try {
      await writeReply(res, reply, req.method, translated.bodyCancelled())
    } catch (error) {
      // Express 4 ignores the promise a middleware returns: rejected, it would go unhandled.
      next(error)
    }
  }
}

/** The body a parser left in `req.body`, back in bytes; undefined when the stream is still unread. */
function parsedBody(req: ExpressRequestLike): RequestBodyOverride | undefined {
  // Whether the stream was read decides, not `req.body`: body-parser 1.x (Express 4) sets `req.body = {}`
  // before it looks at the content type, and leaves a body it does not parse unread.
  if (!req.readableEnded) return undefined
  const body = req.body
  if (body === undefined) return { body: null }
  // A JSON parser that allows primitives (`express.json({ strict: false })`) read `null`.
  if (body === null) return { body: 'null' }
  if (typeof body === 'string' || body instanceof Uint8Array) return { body }
  const type = String(req.headers['content-type'] ?? '')
  if (type.startsWith('application/x-www-form-urlencoded') && typeof body === 'object') {
    const form = new URLSearchParams()
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      for (const v of Array.isArray(value) ? value : [value]) form.append(key, typeof v === 'string' ? v : JSON.stringify(v))
    }
    return { body: form.toString() }
  }
  return { body: JSON.stringify(body) }
}

import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify'
import type { FetchHandler } from '../handler'
import { errorReply, type Reply } from '../respond'
import { nodeCallOf } from './light-request'
import { toRequest, writeReply, type Translated } from './node-http'

/** Options of the `fastifyStepline` plugin. */
export interface FastifySteplineOptions {
  /** The fetch handler to serve, as `createHandler(…)` returns. */
  handler: FetchHandler
  /**
   * Serve under this path. Fastify applies it itself (it is `register`'s own option). The handler
   * sees full URLs, prefix included: make it with the same `basePath`.
   */
  prefix?: string
}

/**
 * A Fastify plugin serving a fetch handler: one catch-all route (every method) whose body
 * Fastify does not parse — the raw request streams into the handler, so webhook signatures
 * are checked over the exact bytes — and whose reply is written raw (`reply.hijack()`), chunk by
 * chunk (SSE included). Encapsulated: the plugin's body handling does not affect your routes.
 * @example
 * const app = Fastify()
 * await app.register(fastifyStepline, { handler: createHandler({ engine, basePath: '/stepline' }), prefix: '/stepline' })
 * await app.listen({ port: 3000 })
 */
export const fastifyStepline: FastifyPluginAsync<FastifySteplineOptions> = async (fastify, options) => {
  if (typeof options?.handler !== 'function') {
    throw new TypeError('fastifyStepline: expected `handler` as a fetch handler `(request: Request) => Promise<Response>`, e.g. createHandler({ engine }).')
  }
  const { handler } = options
  const { light, answer } = nodeCallOf(handler)
  const routes = async (scope: FastifyInstance): Promise<void> => {
    // Leave the body unread: the handler reads (and limits) it from the raw stream.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null))
    const serve = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
      reply.hijack()
      const raw = request.raw
      const url = `${request.protocol}://${request.host}${raw.url ?? '/'}`
      let translated: Translated
      let answered: Reply
      try {
        translated = await toRequest(raw, reply.raw, url, { light })
        answered = await answer(translated.request)
      } catch (error) {
        // The client went away while its body was read: nobody to answer, and nothing failed here.
        if (reply.raw.destroyed) return
        // The same answer as the handler's own: an HttpError as it says, anything else a 500 INTERNAL_ERROR.
        writeReply(reply.raw, errorReply(error, (err) => request.log.error({ err }, 'stepline handler failed')), raw.method)
        return
      }
      await writeReply(reply.raw, answered, raw.method, translated.bodyCancelled())
    }
    scope.all('/', serve)
    scope.all('/*', serve)
  }
  // A child context even when called directly on the root instance: the parser change stays inside it.
  await fastify.register(routes)
}

/**
 * The same plugin bound to one handler, for `app.register(toFastify(handler), { prefix })`.
 * @example
 * await app.register(toFastify(createHandler({ engine })))
 */
export function toFastify(handler: FetchHandler): FastifyPluginAsync<{ prefix?: string }> {
  return (fastify, options) => fastifyStepline(fastify, { ...options, handler })
}

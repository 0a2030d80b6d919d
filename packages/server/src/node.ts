import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { nodeCallOf } from './adapters/light-request'
import { requestUrl, toRequest, writeReply, type Translated } from './adapters/node-http'
import { createHandler, type FetchHandler, type HandlerOptions } from './handler'
import { errorReply, JsonReply, type Reply } from './respond'
import { writeReplySoon } from './adapters/reply-batch'

/**
 * Options of `serve`: the handler's options plus where to listen.
 * @example
 * await serve({ engine, workflows: [order], port: 3000, host: '0.0.0.0' })
 */
export interface ServeOptions extends HandlerOptions {
  /** Default 0: a free port, read it from the result. */
  port?: number
  /** Default `'127.0.0.1'`: only this machine. Pass `'0.0.0.0'` to listen on every interface. */
  host?: string
}

/**
 * A listening server.
 * @example
 * const { url, close } = await serve({ engine }); await fetch(`${url}/health`); await close()
 */
export interface Served {
  /** `http://<host>:<port>` */
  url: string
  port: number
  /** Stops listening and ends open connections (run streams included). */
  close(): Promise<void>
}

const logError = (e: unknown): void => console.error('stepline server:', e)

/**
 * A `node:http` request listener that serves a fetch handler, for your own server. The
 * translation is the one the Express and Fastify adapters use (`adapters/node-http`).
 * @example
 * import { createServer } from 'node:http'
 * createServer(toNodeListener(createHandler({ engine, workflows: [order] }))).listen(3000, '127.0.0.1')
 */
export function toNodeListener(handler: FetchHandler): (req: IncomingMessage, res: ServerResponse) => void {
  // createHandler's handler takes LightRequests and also answers without a Response (see JsonReply).
  const { light, answer } = nodeCallOf(handler)
  const options = { light }
  // Never rejects: whatever goes wrong after the answer started is logged and the connection cut.
  const listen = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    try {
      let reply: Reply
      let translated: Translated | undefined
      try {
        translated = await toRequest(req, res, requestUrl(req), options)
        reply = await answer(translated.request)
      } catch (e) {
        // The client went away while its body was read: nobody to answer.
        if (res.destroyed) return
        // A malformed request (an HttpError) answers as it says; anything else is a 500 that tells nothing.
        reply = errorReply(e, logError)
      }
      const closeAfter = translated?.bodyCancelled() ?? false
      if (reply instanceof JsonReply) return writeReplySoon(res, reply, req.method, closeAfter, logError)
      const writing = writeReply(res, reply, req.method, closeAfter)
      if (writing !== undefined) await writing
    } catch (e) {
      logError(e)
      res.destroy()
    }
  }
  return (req, res) => void listen(req, res)
}

/**
 * Serves Stepline on `node:http`: webhooks, the run API and health (see `createHandler`).
 * Listens on 127.0.0.1 unless `host` says otherwise; `port: 0` (the default) picks a free port.
 * @example
 * const server = await serve({ engine, workflows: [order], port: 3000, token: process.env.STEPLINE_TOKEN })
 * console.log(`listening on ${server.url}`)
 * process.on('SIGTERM', () => server.close())
 */
export async function serve(options: ServeOptions): Promise<Served> {
  const { port = 0, host = '127.0.0.1', ...handlerOptions } = options
  const server = createServer(toNodeListener(createHandler(handlerOptions)))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const address = server.address() as AddressInfo
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address
  return {
    url: `http://${shown}:${address.port}`,
    port: address.port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((e) => (e ? reject(e) : resolve()))
        server.closeAllConnections()
      }),
  }
}

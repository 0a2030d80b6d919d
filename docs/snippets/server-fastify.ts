import { createEngine } from '@stepline/core'
import { createHandler, fastifyStepline, toFastify, type FastifySteplineOptions } from '@stepline/server'
import { order } from './server-workflows'

// import Fastify from 'fastify'; const app = Fastify()
declare const app: Parameters<typeof fastifyStepline>[0]

const engine = createEngine({ workflows: [order] })
const handler = createHandler({ engine, workflows: [order], basePath: '/stepline' }) // = the prefix

const options: FastifySteplineOptions = { handler, prefix: '/stepline' }
await app.register(fastifyStepline, options)
// or, the same plugin bound to the handler: await app.register(toFastify(handler), { prefix: '/stepline' })
void toFastify
await app.listen({ port: 3000, host: '127.0.0.1' })

import { createEngine } from '@stepline/core'
import { createHandler, toExpress, type ExpressAdapterOptions } from '@stepline/server'
import { order } from './server-workflows'

// import express from 'express'; const app = express()
declare const app: { use(path: string, ...handlers: unknown[]): unknown; listen(port: number): unknown }
declare const json: () => unknown // express.json

const engine = createEngine({ workflows: [order] })
const handler = createHandler({ engine, workflows: [order], basePath: '/stepline' }) // = the mount path
const options: ExpressAdapterOptions = { fallthrough: false } // true: a 404 goes on to the next Express handler

app.use('/stepline', toExpress(handler, options)) // BEFORE any body parser: webhooks need the raw bytes
app.use('/api', json()) // your own routes' parsers come after (or are scoped to other paths)
app.listen(3000)

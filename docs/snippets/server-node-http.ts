import { createServer } from 'node:http'
import { createEngine } from '@stepline/core'
import { createHandler, toNodeListener } from '@stepline/server'
import { order } from './server-workflows'

const engine = createEngine({ workflows: [order] })
const stepline = toNodeListener(createHandler({ engine, workflows: [order], basePath: '/stepline' }))

// Stepline under /stepline next to your own routes, on one server.
const server = createServer((req, res) => {
  if (req.url === '/stepline' || req.url?.startsWith('/stepline/')) return stepline(req, res)
  res.writeHead(200, { 'content-type': 'text/plain' }).end('my app')
})
server.listen(3000, '127.0.0.1')

import { createEngine } from '@stepline/core'
import { serve, startSchedules } from '@stepline/server'
import { sqliteStore } from '@stepline/store-sqlite'
import { digest, order } from './server-workflows'

const workflows = [order, digest]
const store = sqliteStore({ path: './.stepline/stepline.db' })
const engine = createEngine({ store, workflows }) // resumes unfinished runs from the file

const server = await serve({ engine, workflows, port: 3000, token: process.env.STEPLINE_TOKEN })
const schedules = startSchedules(engine, workflows) // the cron triggers: one timer per schedule
console.log(`listening on ${server.url}`) // http://127.0.0.1:3000

process.once('SIGTERM', async () => {
  await server.close() // stop accepting; open run streams end
  schedules.stop() // no tick starts a run after this
  await engine.close() // waits for the runs in flight
  store.close()
})

const base = 'http://127.0.0.1:3000'
const runId = process.argv[2] ?? 'mip8k2x1c4f0a9zq3k7w1'
const token = process.env.STEPLINE_TOKEN

// With fetch: headers (the bearer token) are allowed; parse the frames yourself.
const res = await fetch(`${base}/runs/${runId}/stream`, { headers: token ? { authorization: `Bearer ${token}` } : {} })
if (!res.ok || res.body === null) throw new Error(`stream refused: ${res.status}`)
let buffer = ''
for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
  buffer += chunk
  let end: number
  while ((end = buffer.indexOf('\n\n')) >= 0) {
    const frame = buffer.slice(0, end)
    buffer = buffer.slice(end + 2)
    if (frame.startsWith(':')) continue // ': heartbeat'
    const name = /^event: (.*)$/m.exec(frame)?.[1]
    const data = JSON.parse(/^data: (.*)$/m.exec(frame)?.[1] ?? 'null') as { step?: string; run?: { status: string } }
    console.log(name, name === 'snapshot' ? data.run?.status : data.step ?? '')
  }
}
console.log('stream ended') // after run:completed / run:failed / run:cancelled

// With EventSource (browsers, Node 22+): no custom headers, so only without a token, or
// behind a proxy that adds it. Listen by event name; close() it, or it reconnects at the end.
const es = new EventSource(`${base}/runs/${runId}/stream`)
const data = (e: Event) => JSON.parse((e as MessageEvent).data as string)
es.addEventListener('snapshot', (e) => console.log('now', data(e).run.status))
es.addEventListener('step:completed', (e) => console.log('done', data(e).step))
for (const end of ['run:completed', 'run:failed', 'run:cancelled']) es.addEventListener(end, () => es.close())

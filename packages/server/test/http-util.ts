// Helpers of this package's tests (not exported from the package).
import type { Engine } from '@stepline/core'

/** Reads a text/event-stream body until it ends, returning the event names and their data. */
export async function readEvents(res: Response, until?: (name: string) => boolean): Promise<{ name: string; data: unknown }[]> {
  const reader = res.body!.getReader()
  const decoder = new TextDecoder()
  const events: { name: string; data: unknown }[] = []
  let buffer = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    buffer += decoder.decode(value, { stream: true })
    let at: number
    while ((at = buffer.indexOf('\n\n')) >= 0) {
      const block = buffer.slice(0, at)
      buffer = buffer.slice(at + 2)
      if (block.startsWith(':')) continue
      const name = /^event: (.*)$/m.exec(block)?.[1] ?? 'message'
      const data = /^data: (.*)$/m.exec(block)?.[1]
      events.push({ name, data: data === undefined ? undefined : JSON.parse(data) })
      if (until?.(name)) {
        await reader.cancel()
        return events
      }
    }
  }
  return events
}

/** Resolves once the run has this status in the store. */
export async function waitForStatus(engine: Engine, runId: string, status: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  for (;;) {
    const run = await engine.getRun(runId)
    if (run?.status === status) return
    if (Date.now() > end) throw new Error(`run ${runId} is ${run?.status}, not ${status}, after ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 10))
  }
}

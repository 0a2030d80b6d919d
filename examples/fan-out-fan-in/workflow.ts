/**
 * A fan-out / fan-in job and the local stand-ins for the services it calls.
 *
 *   init ─┬─ process[batch1] ─┬─ merge ─┬─ report ─┬─ cleanup
 *         ├─ process[batch2] ─┤         └─ notify ─┘
 *         ├─ process[batch3] ─┤
 *         └─ process[metadata]┘
 *
 * `init` splits the job into three batches; the batches and a metadata lookup run in parallel
 * (if one fails, the others are aborted and the run fails with a `ParallelError`); `merge`
 * combines them; the report and the notification go out at the same time; `cleanup` ends it.
 */
import { workflow } from '@stepline/core'

export interface Job {
  jobId: string
  /** Records in the job; `init` splits them into three batches. */
  records: number
}

export interface Batch {
  name: string
  /** Record ids `from` (inclusive) to `to` (exclusive). */
  from: number
  to: number
}

export interface BatchResult {
  batch: string
  processed: number
  /** Sum of the processed record ids, to check the merge. */
  checksum: number
}

export const fanOutFanIn = workflow<Job>('fan-out-fan-in')
  .step('init', (ctx) => storage.stage(ctx.payload.jobId, ctx.payload.records, ctx.signal))
  .parallel('process', {
    batch1: (ctx) => workers.process(ctx.last.batches[0]!, ctx.signal),
    batch2: (ctx) => workers.process(ctx.last.batches[1]!, ctx.signal),
    batch3: (ctx) => workers.process(ctx.last.batches[2]!, ctx.signal),
    metadata: (ctx) => catalog.describe(ctx.payload.jobId, ctx.signal),
  })
  .step('merge', (ctx) => {
    const { batch1, batch2, batch3, metadata } = ctx.last
    const batches = [batch1, batch2, batch3]
    return {
      jobId: ctx.payload.jobId,
      dataset: metadata.dataset,
      owner: metadata.owner,
      processed: batches.reduce((n, b) => n + b.processed, 0),
      checksum: batches.reduce((n, b) => n + b.checksum, 0),
    }
  })
  // The report and the notification go out at the same time. They are two items of a
  // `forEach` rather than two `parallel` branches because a branch of `parallel` takes no step
  // options, and `notify` needs `retry`: the chat API rate-limits.
  .forEach(
    'publish',
    (): ('report' | 'notify')[] => ['report', 'notify'],
    (_task, flow) =>
      flow
        .if('is-report', (ctx) => ctx.item === 'report')
          .step('report', (ctx) => reports.write(ctx.steps.merge.output, ctx.signal))
        .else()
          .step(
            'notify',
            (ctx) => {
              const m = ctx.steps.merge.output
              return chat.post('#data-jobs', `job ${m.jobId}: ${m.processed} records of ${m.dataset} processed`, `${ctx.run.id}:notify`, ctx.signal)
            },
            { retry: { attempts: 3, backoff: 'fixed', delay: '30ms' } },
          )
        .endIf(),
    { concurrency: 2 },
  )
  .step('cleanup', async (ctx) => {
    const { removed } = await storage.cleanup(ctx.payload.jobId, ctx.signal)
    const report = ctx.last.find((p) => 'url' in p)
    const message = ctx.last.find((p) => 'messageId' in p)
    return { ...ctx.steps.merge.output, report: report?.url, notified: message?.messageId, tempFilesRemoved: removed }
  })

// ---- local stand-ins ----------------------------------------------------------------------
// Each answers after a short timer and honours the AbortSignal it is given, as `fetch` does.

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
export function wait(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const onAbort = (): void => {
      clearTimeout(timer)
      reject(signal!.reason)
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

export const storage = {
  /** Stages the job's input and splits it into three batches. */
  async stage(jobId: string, records: number, signal: AbortSignal): Promise<{ jobId: string; batches: Batch[] }> {
    await wait(15, signal)
    const size = Math.ceil(records / 3)
    const batches = [0, 1, 2].map((i) => ({ name: `batch${i + 1}`, from: i * size, to: Math.min(records, (i + 1) * size) }))
    return { jobId, batches }
  },
  async cleanup(_jobId: string, signal: AbortSignal): Promise<{ removed: number }> {
    await wait(10, signal)
    return { removed: 3 }
  },
}

export const workers = {
  /** Processes one batch: roughly 50–80 ms, depending on the batch. */
  async process(batch: Batch, signal: AbortSignal): Promise<BatchResult> {
    await wait(50 + (Number(batch.name.at(-1)) % 3) * 15, signal)
    const n = batch.to - batch.from
    return { batch: batch.name, processed: n, checksum: ((batch.from + batch.to - 1) * n) / 2 }
  },
}

export const catalog = {
  async describe(jobId: string, signal: AbortSignal): Promise<{ dataset: string; owner: string }> {
    await wait(30, signal)
    return { dataset: `events-${jobId}`, owner: 'data-platform' }
  },
}

export const reports = {
  async write(summary: { jobId: string; processed: number }, signal: AbortSignal): Promise<{ url: string }> {
    await wait(40, signal)
    return { url: `https://reports.example.test/${summary.jobId}?records=${summary.processed}` }
  },
}

/** Posts seen per idempotency key: the chat API rate-limits (429) the first post of each. */
const posts = new Map<string, number>()
export const chat = {
  async post(channel: string, _text: string, idempotencyKey: string, signal: AbortSignal): Promise<{ channel: string; messageId: string }> {
    await wait(10, signal)
    const call = (posts.get(idempotencyKey) ?? 0) + 1
    posts.set(idempotencyKey, call)
    if (call === 1) throw new Error('429 rate limited, retry later')
    return { channel, messageId: `msg-${posts.size}` }
  },
}

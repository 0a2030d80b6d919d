/**
 * Source aggregator: fetch many feeds, at most 10 at a time, each fetch retried with
 * exponential backoff; a feed that still fails is recorded as failed instead of failing the
 * run. The items are then merged, de-duplicated by id and sorted newest first.
 */
import { workflow } from '@stepline/core'

export interface FeedItem {
  id: string
  title: string
  /** ISO 8601. */
  publishedAt: string
  source: string
}

export type SourceResult =
  | { source: string; ok: true; items: FeedItem[] }
  | { source: string; ok: false; reason: string; items: [] }

export interface Aggregate {
  ok: string[]
  failed: { source: string; reason: string }[]
  /** Items fetched, duplicates included. */
  fetched: number
  /** De-duplicated by id (the first source in input order wins), newest first. */
  items: FeedItem[]
}

/** Merges the sources' items: de-duplicates by id, first source wins, then sorts newest first. */
export function mergeItems(results: readonly SourceResult[]): Aggregate {
  const byId = new Map<string, FeedItem>()
  let fetched = 0
  for (const r of results) {
    fetched += r.items.length
    for (const item of r.items) if (!byId.has(item.id)) byId.set(item.id, item)
  }
  const items = [...byId.values()].sort((a, b) => b.publishedAt.localeCompare(a.publishedAt) || a.id.localeCompare(b.id))
  return {
    ok: results.filter((r) => r.ok).map((r) => r.source),
    failed: results.flatMap((r) => (r.ok ? [] : [{ source: r.source, reason: r.reason }])),
    fetched,
    items,
  }
}

// ---- local stand-in for the feeds ---------------------------------------------------------

const wait = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const onAbort = (): void => (clearTimeout(t), reject(signal.reason))
    const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })

/** How a stand-in feed behaves, from its number: a few are flaky, slow, or down. */
export function behaviourOf(source: string): { kind: 'ok' | 'flaky' | 'slow' | 'down'; latencyMs: number } {
  const n = Number(source.replace(/\D/g, ''))
  if (n === 13 || n === 37) return { kind: 'down', latencyMs: 15 }
  if (n % 9 === 4) return { kind: 'flaky', latencyMs: 30 }
  if (n % 11 === 7) return { kind: 'slow', latencyMs: 350 }
  return { kind: 'ok', latencyMs: 20 + ((n * 17) % 40) }
}

/**
 * Feed `n` carries stories 4n … 4n+7: each story is also in the neighbouring feed, so half of
 * what is fetched is a duplicate.
 */
export function storiesOf(source: string): FeedItem[] {
  const n = Number(source.replace(/\D/g, ''))
  return Array.from({ length: 8 }, (_, i) => {
    const story = 4 * n + i
    // Publication times are not in story order: 2026-03-01 plus a scrambled number of minutes.
    const minutes = (story * 7919) % 10_000
    return { id: `story-${story}`, title: `Story ${story}`, publishedAt: new Date(Date.UTC(2026, 2, 1) + minutes * 60_000).toISOString(), source }
  })
}

/** The feeds: a flaky one answers 503 twice, then works; a down one never answers. */
export const feeds = {
  calls: new Map<string, number>(),
  inFlight: 0,
  maxInFlight: 0,
  async fetch(source: string, signal: AbortSignal): Promise<FeedItem[]> {
    const call = (this.calls.get(source) ?? 0) + 1
    this.calls.set(source, call)
    const { kind, latencyMs } = behaviourOf(source)
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight)
    try {
      await wait(latencyMs, signal)
    } finally {
      this.inFlight--
    }
    if (kind === 'down') throw new Error(`GET https://${source}.example/feed: connect ECONNREFUSED`)
    if (kind === 'flaky' && call <= 2) throw new Error(`GET https://${source}.example/feed: 503 Service Unavailable`)
    return storiesOf(source)
  },
}

// ---- the workflow ------------------------------------------------------------------------

export const sourceAggregator = workflow<{ sources: string[] }>('source-aggregator')
  .forEach(
    'fetch-all',
    (ctx) => ctx.payload.sources,
    (source, flow) =>
      flow
        .step('fetch-source', (ctx) => feeds.fetch(source, ctx.signal), {
          // 1 try + 3 retries after 100, 200 and 400 ms; each attempt may take 2 s at most.
          retry: { attempts: 4, backoff: 'exponential', delay: '100ms', maxDelay: '1s' },
          timeout: '2s',
        })
        // A source that still fails is a result, not the end of the run.
        .onError((ctx) => ({ failed: ctx.error.message }))
        .step('settle', (ctx): SourceResult =>
          Array.isArray(ctx.last) ? { source, ok: true, items: ctx.last } : { source, ok: false, reason: ctx.last.failed, items: [] },
        ),
    { concurrency: 10 },
  )
  .step('merge', (ctx) => mergeItems(ctx.last))

import { describe, expect, it } from 'vitest'
import { fail, fakeClock, sequence, testRun } from '@stepline/testing'
import { sourceAggregator, storiesOf, type FeedItem } from './workflow'

const fifty = Array.from({ length: 50 }, (_, i) => `feed-${String(i + 1).padStart(2, '0')}`)
/** The forEach item a mock was called for (mock functions see `ctx.item` typed as `undefined`). */
const itemOf = <T>(ctx: { item: unknown }): T => ctx.item as T
const realDelay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const item = (id: string, publishedAt: string, source: string): FeedItem => ({ id, title: id, publishedAt, source })

describe('source-aggregator', () => {
  it('flaky sources succeed after two retries, with the backoff on virtual time', async () => {
    const clock = fakeClock()
    const t0 = performance.now()
    const run = await testRun(sourceAggregator, { sources: fifty }, {
      clock,
      mocks: { 'fetch-source': sequence<FeedItem[]>(fail('503 Service Unavailable'), fail('503 Service Unavailable'), (ctx) => storiesOf(itemOf<string>(ctx))) },
    })
    run.expectStatus('completed')
    expect(run.output!.ok).toEqual(fifty)
    expect(run.output!.failed).toEqual([])
    expect(run.records('fetch-source').map((r) => r.attempts)).toEqual(Array(50).fill(3))
    expect(run.calls('fetch-source')).toBe(150)
    const retrying = run.events.filter((e) => e.type === 'step:retrying')
    expect(retrying).toHaveLength(100)
    expect(new Set(retrying.map((e) => e.delayMs))).toEqual(new Set([100, 200]))
    // 5 waves of 10 sources, each waiting 100 ms + 200 ms of backoff, took no real time to speak of.
    expect(clock.elapsed()).toBe(1500)
    expect(run.summary.wallMs).toBe(1500)
    expect(performance.now() - t0).toBeLessThan(1000)
  })

  it('merges, de-duplicates by id (first source wins) and sorts newest first', async () => {
    const pages: Record<string, FeedItem[]> = {
      a: [item('s1', '2026-03-01T10:00:00Z', 'a'), item('s2', '2026-03-01T12:00:00Z', 'a')],
      b: [item('s2', '2026-03-01T12:00:00Z', 'b'), item('s3', '2026-03-01T08:00:00Z', 'b'), item('s4', '2026-03-01T12:00:00Z', 'b')],
      c: [item('s3', '2026-03-01T08:00:00Z', 'c'), item('s5', '2026-03-02T00:00:00Z', 'c')],
    }
    const run = await testRun(sourceAggregator, { sources: ['a', 'b', 'c'] }, { mocks: { 'fetch-source': (ctx) => pages[itemOf<string>(ctx)]! } })
    run.expectStatus('completed')
    expect(run.output!.fetched).toBe(7)
    // Same time: ordered by id. s2 and s3 come from the first source that had them.
    expect(run.output!.items.map((i) => `${i.id}@${i.source}`)).toEqual(['s5@c', 's2@a', 's4@b', 's1@a', 's3@b'])
  })

  it('reports a source that keeps failing and keeps the others', async () => {
    const run = await testRun(sourceAggregator, { sources: ['feed-01', 'feed-02', 'feed-03'] }, {
      mocks: {
        'fetch-source': (ctx) => {
          if (itemOf<string>(ctx) === 'feed-02') throw new Error('connect ECONNREFUSED')
          return storiesOf(itemOf<string>(ctx))
        },
      },
    })
    run.expectStatus('completed')
    expect(run.output!.ok).toEqual(['feed-01', 'feed-03'])
    expect(run.output!.failed).toEqual([{ source: 'feed-02', reason: 'connect ECONNREFUSED' }])
    expect(run.output!.fetched).toBe(16)
    // All 4 attempts were made (3 retries after 100, 200 and 400 ms) before giving up.
    const retries = run.events.filter((e) => e.type === 'step:retrying' && e.item?.[0] === 1)
    expect(retries.map((e) => e.delayMs)).toEqual([100, 200, 400])
    expect(run.calls('fetch-source')).toBe(2 + 4)
    const entry = run.records('fetch-source').find((r) => r.item?.[0] === 1)!
    expect(entry.recovered).toBe(true)
    expect(entry.error?.message).toBe('connect ECONNREFUSED')
    expect(run.clock!.elapsed()).toBe(700)
  })

  it('never has more than 10 fetches in flight', async () => {
    let inFlight = 0
    let most = 0
    const run = await testRun(sourceAggregator, { sources: fifty }, {
      mocks: {
        'fetch-source': async (ctx) => {
          most = Math.max(most, ++inFlight)
          await realDelay(1 + (ctx.index! % 4))
          inFlight--
          return storiesOf(itemOf<string>(ctx))
        },
      },
    })
    run.expectStatus('completed')
    expect(most).toBe(10)
    expect(run.output!.ok).toHaveLength(50)
    // Feed n carries stories 4n … 4n+7: 400 fetched, stories 4 … 207 once each.
    expect(run.output!.fetched).toBe(400)
    expect(run.output!.items).toHaveLength(204)
    const times = run.output!.items.map((i) => i.publishedAt)
    expect(times).toEqual([...times].sort().reverse())
  })
})

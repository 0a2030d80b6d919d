import { cpu, workflow } from '@stepline/core'

/** One synthetic document. */
export interface Doc {
  id: string
  title: string
  text: string
}

/** What the scoring needs besides the document: the query and document frequencies. */
export interface Corpus {
  query: string[]
  documents: number
  /** In how many documents each query term occurs. */
  df: Record<string, number>
}

/** A scored document. */
export interface Scored {
  id: string
  title: string
  score: number
  fingerprint: string
}

export interface ScoringInput {
  count: number
  query: string[]
  seed?: number
}

const VOCABULARY = (
  'workflow engine durable step retry timeout journal worker thread pool queue event webhook cron schedule ' +
  'payload output branch parallel race chunk item progress summary store sqlite postgres lease heartbeat ' +
  'cancel signal abort clone transfer buffer module export hash plan compile runtime executor piscina ' +
  'latency throughput batch stream replay mock clock test assert trace span metric log alert deploy ' +
  'server client request response header token secret schema validate error cause fallback recover'
).split(' ')

/** A small deterministic PRNG (mulberry32), so that the same seed gives the same documents. */
function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** `count` synthetic documents of 200–600 words; each leans on a few favourite words. */
export function generateDocuments(count: number, seed = 42): Doc[] {
  const rand = prng(seed)
  const pick = (): string => VOCABULARY[Math.floor(rand() * VOCABULARY.length)]!
  return Array.from({ length: count }, (_, i) => {
    const favourites = [pick(), pick(), pick()]
    const length = 200 + Math.floor(rand() * 400)
    const words = Array.from({ length }, () => (rand() < 0.15 ? favourites[Math.floor(rand() * 3)]! : pick()))
    return { id: `doc-${String(i).padStart(4, '0')}`, title: `${favourites.join(' / ')}`, text: words.join(' ') }
  })
}

/** Document frequencies of the query terms. */
export function corpusOf(docs: readonly Doc[], query: readonly string[]): Corpus {
  const df: Record<string, number> = {}
  for (const term of query) df[term] = docs.filter((d) => d.text.split(' ').includes(term)).length
  return { query: [...query], documents: docs.length, df }
}

/** The ten best, by score then id. */
export function topTen(scored: readonly Scored[]): Scored[] {
  return [...scored].sort((a, b) => b.score - a.score || a.id.localeCompare(b.id)).slice(0, 10)
}

export const documentScoring = workflow<ScoringInput>('document-scoring')
  .step('generate', (ctx) => generateDocuments(ctx.payload.count, ctx.payload.seed))
  .step('corpus', (ctx) => corpusOf(ctx.last, ctx.payload.query))
  // One pool task per chunk of 10 documents; every document is journaled on its own as "score:task".
  .forEach(
    'score',
    (ctx) => ctx.steps.generate.output,
    cpu<Scored>(new URL('./score.task.ts', import.meta.url), { steps: ['corpus'] }),
    { concurrency: 8, chunkSize: 10 },
  )
  .step('rank', (ctx) => topTen(ctx.last))

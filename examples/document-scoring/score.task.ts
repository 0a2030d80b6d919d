/**
 * The cpu() task of the document-scoring example: runs in a worker thread of the engine's pool,
 * once per document (a chunk of documents is one pool task, handled one document at a time).
 * Pure CPU: tf-idf relevance to the query, and a content fingerprint by chained sha256 (the
 * deliberately expensive part, a few milliseconds per document).
 */
import { createHash } from 'node:crypto'
import type { CpuInput } from '@stepline/core'
import type { Corpus, Doc, Scored } from './workflow'

/** sha256 rounds per document: about 5–10 ms of one core. */
export const FINGERPRINT_ROUNDS = 6000

/** Scores one document against the query, given the corpus statistics. Also used by the tests. */
export function scoreDocument(doc: Doc, corpus: Corpus): Scored {
  const words = doc.text.split(' ')
  const tf = new Map<string, number>()
  for (const w of words) tf.set(w, (tf.get(w) ?? 0) + 1)
  let score = 0
  for (const term of corpus.query) {
    const f = tf.get(term) ?? 0
    if (f === 0) continue
    const idf = Math.log(corpus.documents / (1 + (corpus.df[term] ?? 0)))
    score += (f / words.length) * idf
  }
  let digest = createHash('sha256').update(doc.text).digest()
  for (let i = 0; i < FINGERPRINT_ROUNDS; i++) digest = createHash('sha256').update(digest).digest()
  return { id: doc.id, title: doc.title, score: Math.round(score * 1e6) / 1e6, fingerprint: digest.toString('hex').slice(0, 12) }
}

/** The handler: `input.last` is the forEach item, `input.steps.corpus` the named step's output. */
export default function score(input: CpuInput<Doc>): Scored {
  return scoreDocument(input.last, input.steps.corpus as Corpus)
}

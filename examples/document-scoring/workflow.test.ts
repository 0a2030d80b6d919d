import { afterEach, describe, expect, it } from 'vitest'
import { createEngine, type Engine } from '@stepline/core'
import { testRun } from '@stepline/testing'
import { scoreDocument } from './score.task'
import { corpusOf, documentScoring, generateDocuments, topTen, type Doc, type Scored } from './workflow'

const query = ['durable', 'worker', 'retry', 'journal']

let engine: Engine | undefined
afterEach(async () => {
  await engine?.close()
  engine = undefined
})

describe('document-scoring', () => {
  it('ranks by the mocked cpu step: "score:task" is mocked per document like any step', async () => {
    // A cpu() forEach body is one step per item named "<forEach>:task"; under testRun it runs
    // item by item through the test executor, so a mock by that name answers every document.
    const run = await testRun(documentScoring, { count: 30, query }, {
      mocks: {
        'score:task': (ctx) => {
          const doc = ctx.item as Doc
          return { id: doc.id, title: doc.title, score: (ctx.index! * 7) % 30, fingerprint: 'mock' } satisfies Scored
        },
      },
    })
    run.expectStatus('completed').expectOrder('generate', 'corpus', 'score', 'rank')
    expect(run.calls('score:task')).toBe(30)
    // Scores 29, 28, … land on the indexes i with 7i ≡ s (mod 30).
    expect(run.output!.map((d) => d.score)).toEqual([29, 28, 27, 26, 25, 24, 23, 22, 21, 20])
    expect(run.output![0]!.id).toBe('doc-0017') // 7 × 17 = 119 ≡ 29
    const keys = run.records('score:task').map((r) => r.key)
    expect(keys).toHaveLength(30)
    expect(keys).toContain('n2.body.n0@0')
  })

  it('a failing document fails the forEach, naming the item', async () => {
    const run = await testRun(documentScoring, { count: 5, query }, {
      mocks: {
        'score:task': (ctx) => {
          if (ctx.index === 3) throw new Error('document too large')
          return { id: 'x', title: 'x', score: 0, fingerprint: 'x' }
        },
      },
    })
    run.expectStatus('failed')
    expect(run.error?.message).toMatch(/score\[3\]/)
  })

  it('scores 60 documents on a real pool of 2 threads, in input order, with the real task module', async () => {
    engine = createEngine({ workers: { max: 2 } })
    const input = { count: 60, query, seed: 7 }
    const handle = await engine.start(documentScoring, input)
    const top = await handle.result()
    const docs = generateDocuments(60, 7)
    const expected = topTen(docs.map((d) => scoreDocument(d, corpusOf(docs, query))))
    expect(top).toEqual(expected)
    expect(top[0]!.score).toBeGreaterThan(top[9]!.score)
    const scored = (await engine.getSteps(handle.id)).filter((s) => s.name === 'score:task')
    expect(scored).toHaveLength(60)
    expect(scored.find((s) => s.key === 'n2.body.n0@41')?.output).toEqual(scoreDocument(docs[41]!, corpusOf(docs, query)))
  })
})

import { expect, it } from 'vitest'
import { cpu, workflow } from '@stepline/core'
import { testRun } from '@stepline/testing'

interface Doc { id: string; text: string }

const scoring = workflow<Doc[]>('scoring')
  .step('digest', cpu<string>(new URL('./digest.task.js', import.meta.url)))
  .forEach('score', (ctx) => ctx.payload, cpu<number>(new URL('./score.task.js', import.meta.url)), { chunkSize: 10 })

it('mocks cpu steps by name; a forEach body is "<forEach>:task", answered per item', async () => {
  const run = await testRun(scoring, [{ id: 'a', text: 'x y' }, { id: 'b', text: 'z' }], {
    mocks: { digest: 'abc', 'score:task': (ctx) => (ctx.item as Doc).text.length },
  })
  run.expectStatus('completed')
  expect(run.output).toEqual([3, 1])
  expect(run.calls('score:task')).toBe(2)
})

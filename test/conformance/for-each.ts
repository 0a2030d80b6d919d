import { describe, expect, it } from 'vitest'
import { cpu, createEngine, workflow, type EngineEventPayload, type Executor } from '@stepline/core'
import { cancelDuringWrite, holdingWrites, inFlight, rejectionOf, rootCause, sleep, uid, type SuiteContext } from './helpers'

export function forEachTests(s: SuiteContext): void {
  describe('forEach', () => {
    it('outputs an array in input order and respects `concurrency`', async () => {
      const engine = await s.engine()
      const gauge = inFlight()
      const delays = [8, 1, 5, 2, 6, 1, 3]
      const wf = workflow<{ items: number[] }>(uid())
        .forEach(
          'each',
          (ctx) => ctx.payload.items,
          (item, flow) =>
            flow.step('double', () =>
              gauge.run(async () => {
                await sleep(delays[item]!)
                return item * 2
              }),
            ),
          { concurrency: 3 },
        )
        .step('after', (ctx) => ({ last: ctx.last, fromSteps: ctx.steps.each.output }))
      const items = [0, 1, 2, 3, 4, 5, 6]
      const out = await engine.run(wf, { items })
      expect(out.last).toEqual([0, 2, 4, 6, 8, 10, 12])
      expect(out.fromSteps).toEqual(out.last)
      expect(gauge.max).toBe(3)
    })

    it('runs one item at a time by default', async () => {
      const engine = await s.engine()
      const gauge = inFlight()
      const wf = workflow(uid()).forEach(
        () => [1, 2, 3],
        (item, flow) => flow.step('one', () => gauge.run(async () => (await sleep(1), item))),
      )
      expect(await engine.run(wf)).toEqual([1, 2, 3])
      expect(gauge.max).toBe(1)
    })

    it('emits run:progress per item with done/total', async () => {
      const engine = await s.engine()
      const progress: EngineEventPayload<'run:progress'>[] = []
      engine.on('run:progress', (e) => progress.push(e))
      const wf = workflow(uid()).forEach(
        'each',
        () => ['a', 'b', 'c', 'd'],
        (item, flow) => flow.step('one', async () => (await sleep(1), item)),
        { concurrency: 2 },
      )
      const handle = await engine.start(wf)
      await handle.result()
      expect(progress.map((e) => [e.step, e.done, e.total])).toEqual([
        ['each', 1, 4],
        ['each', 2, 4],
        ['each', 3, 4],
        ['each', 4, 4],
      ])
      expect(progress.every((e) => e.runId === handle.id && typeof e.itemsPerSecond === 'number')).toBe(true)
    })

    it('chunkSize: a chunk cut short by another item’s failure is not counted in run:progress', async () => {
      const engine = await s.engine()
      const progress: number[] = []
      engine.on('run:progress', (e) => progress.push(e.done))
      const ran: number[] = []
      const wf = workflow(uid()).forEach(
        'each',
        () => [0, 1, 2, 3],
        (item, flow) => {
          // Fails as the item starts, while item 0 (of the other chunk) has just finished.
          if (item === 2) throw new Error('cannot build item 2')
          return flow.step('x', () => (ran.push(item), item))
        },
        { concurrency: 2, chunkSize: 2 },
      )
      const handle = await engine.start(wf)
      expect(rootCause(await rejectionOf(handle.result()))).toMatchObject({ message: 'cannot build item 2' })
      expect(ran).toEqual([0])
      expect(progress).toEqual([])
    })

    for (const body of ['plain', 'cpu chunks'] as const) {
      it(`an item (${body}) whose journal write is pending when the run is cancelled reports nothing after run:cancelled`, async () => {
        const held = holdingWrites(await s.store(), (rec) => rec.key.endsWith('@0'))
        // The cpu chunk path needs an executor with executeChunk: one that squares on this thread.
        const chunks: Executor = {
          name: 'chunks',
          execute: (_node, fn, ctx) => fn(ctx),
          executeChunk: async (_node, inputs) => inputs.map((input) => (input.last as number) ** 2),
        }
        const engine = body === 'plain' ? await s.engine({ store: held.store }) : createEngine({ store: held.store, executor: chunks })
        const events: string[] = []
        engine.on('step:completed', (e) => events.push(`step:completed ${e.step}`))
        engine.on('run:progress', (e) => events.push(`run:progress ${e.done}`))
        engine.on('run:cancelled', () => events.push('run:cancelled'))
        const wf =
          body === 'plain'
            ? workflow(uid()).forEach('each', () => [0, 1], (n, flow) => flow.step('square', () => n * n))
            : workflow(uid()).forEach('each', () => [0, 1], cpu<number>(new URL('../fixtures/cpu/tasks.mjs', import.meta.url), { export: 'square' }), { chunkSize: 2 })
        const handle = await engine.start(wf)
        await cancelDuringWrite(handle, held)
        expect(events).toEqual(['run:cancelled'])
      })
    }

    it('chunkSize groups items: one progress event per chunk, output still ordered and complete', async () => {
      const engine = await s.engine()
      const progress: number[] = []
      engine.on('run:progress', (e) => progress.push(e.done))
      const gauge = inFlight()
      const wf = workflow(uid()).forEach(
        'chunked',
        () => [1, 2, 3, 4, 5, 6, 7],
        (item, flow) => flow.step('one', () => gauge.run(async () => (await sleep(1), item * 10))),
        { chunkSize: 3, concurrency: 2 },
      )
      expect(await engine.run(wf)).toEqual([10, 20, 30, 40, 50, 60, 70])
      expect(progress.sort((a, b) => a - b)).toHaveLength(3)
      expect(progress[progress.length - 1]).toBe(7)
      expect(gauge.max).toBeLessThanOrEqual(2 * 3)
    })

    it('gives each item’s body ctx.item, ctx.index, ctx.last and the closure `item`', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).forEach(
        'each',
        () => [{ id: 'x' }, { id: 'y' }, { id: 'z' }],
        (item, flow) =>
          flow
            .step('look', (ctx) => ({ closure: item.id, ctxItem: (ctx.item as { id: string }).id, index: ctx.index, last: ctx.last }))
            .step('second', (ctx) => ({ ...ctx.last, stillItem: (ctx.item as { id: string }).id, look: ctx.steps.look.output.index })),
        { concurrency: 3 },
      )
      expect(await engine.run(wf)).toEqual([
        { closure: 'x', ctxItem: 'x', index: 0, last: { id: 'x' }, stillItem: 'x', look: 0 },
        { closure: 'y', ctxItem: 'y', index: 1, last: { id: 'y' }, stillItem: 'y', look: 1 },
        { closure: 'z', ctxItem: 'z', index: 2, last: { id: 'z' }, stillItem: 'z', look: 2 },
      ])
    })

    it('journals the body’s steps per item as <nodeId>@<i>', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .step('first', () => ['a', 'b', 'c'])
        .forEach('each', (ctx) => ctx.last, (item, flow) => flow.step('upper', () => item.toUpperCase()), { concurrency: 2 })
      const handle = await engine.start(wf)
      expect(await handle.result()).toEqual(['A', 'B', 'C'])
      const node = wf.plan().nodes[1]!
      if (node.kind !== 'forEach') throw new Error('expected a forEach node')
      const bodyId = node.body[0]!.id
      const steps = await engine.getSteps(handle.id)
      const perItem = steps.filter((r) => r.name === 'upper').sort((x, y) => x.key.localeCompare(y.key))
      expect(perItem.map((r) => ({ key: r.key, nodeId: r.nodeId, status: r.status, output: r.output, item: r.item }))).toEqual([
        { key: `${bodyId}@0`, nodeId: bodyId, status: 'completed', output: 'A', item: [0] },
        { key: `${bodyId}@1`, nodeId: bodyId, status: 'completed', output: 'B', item: [1] },
        { key: `${bodyId}@2`, nodeId: bodyId, status: 'completed', output: 'C', item: [2] },
      ])
      expect(steps.find((r) => r.name === 'each')).toMatchObject({ key: node.id, kind: 'forEach', status: 'completed', output: ['A', 'B', 'C'] })
    })

    it('supports branches inside the body', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).forEach(
        'each',
        () => [1, 2, 3, 4],
        (item, flow) =>
          flow
            .if('even', () => item % 2 === 0)
            .step('half', () => item / 2)
            .else()
            .step('triple', async () => (await sleep(1), item * 3))
            .endIf(),
        { concurrency: 2 },
      )
      const handle = await engine.start(wf)
      expect(await handle.result()).toEqual([3, 1, 9, 2])
      const steps = await engine.getSteps(handle.id)
      const halves = steps.filter((r) => r.name === 'half').sort((x, y) => x.item![0]! - y.item![0]!)
      expect(halves.map((r) => r.status)).toEqual(['skipped', 'completed', 'skipped', 'completed'])
    })

    it('supports a forEach inside a forEach, journaling both item indices', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).forEach(
        'rows',
        () => [[1, 2], [3], []] as number[][],
        (row, flow) =>
          flow.forEach('cells', () => row, (cell, inner) => inner.step('double', (ctx) => ({ cell: cell * 2, index: ctx.index, item: ctx.item })), {
            concurrency: 2,
          }),
        { concurrency: 2 },
      )
      const handle = await engine.start(wf)
      expect(await handle.result()).toEqual([
        [
          { cell: 2, index: 0, item: 1 },
          { cell: 4, index: 1, item: 2 },
        ],
        [{ cell: 6, index: 0, item: 3 }],
        [],
      ])
      const doubles = (await engine.getSteps(handle.id)).filter((r) => r.name === 'double')
      expect(doubles.map((r) => r.item).sort()).toEqual([[0, 0], [0, 1], [1, 0]])
      expect(doubles.every((r) => /@\d+@\d+$/.test(r.key))).toBe(true)
    })

    it('an item failure fails the node with an error naming the item, and no later item starts', async () => {
      const engine = await s.engine()
      const bad = new Error('cannot reserve 2')
      let afterRan = false
      const started: number[] = []
      const wf = workflow(uid())
        .forEach('reserve', () => [1, 2, 3, 4], (item, flow) =>
          flow.step('one', () => {
            started.push(item)
            if (item === 2) throw bad
            return item
          }),
        )
        .step('after', () => (afterRan = true))
      const handle = await engine.start(wf)
      const err = await rejectionOf(handle.result())
      expect(err.message).toContain('reserve[1]')
      expect(rootCause(err)).toBe(bad)
      expect(afterRan).toBe(false)
      expect(started).toEqual([1, 2])
      const steps = await engine.getSteps(handle.id)
      expect(steps.find((r) => r.name === 'reserve')?.status).toBe('failed')
      expect(steps.find((r) => r.name === 'one' && r.item?.[0] === 1)?.status).toBe('failed')
      expect((await engine.getRun(handle.id))?.status).toBe('failed')
    })

    it('.onError() inside the body isolates one item’s failure', async () => {
      const engine = await s.engine()
      const wf = workflow(uid()).forEach(
        'each',
        () => [1, 2, 3],
        (item, flow) =>
          flow
            .step('one', () => {
              if (item === 2) throw new Error(`bad ${item}`)
              return item
            })
            .onError((ctx) => `recovered: ${ctx.error.message}`),
        { concurrency: 3 },
      )
      expect(await engine.run(wf)).toEqual([1, 'recovered: bad 2', 3])
    })

    it('accepts async items, sees outer steps in ctx.steps, and runs parallel/race inside the body', async () => {
      const engine = await s.engine()
      const wf = workflow(uid())
        .step('factor', () => 10)
        .forEach(
          'each',
          async () => (await sleep(1), [1, 2]),
          (item, flow) =>
            flow
              .parallel('both', [(ctx) => item * ctx.steps.factor.output, async () => (await sleep(1), -item)])
              .race('first', [async (ctx) => (await sleep(20, ctx.signal), 'slow'), (ctx) => `fast ${ctx.last[0]}/${ctx.last[1]}`]),
          { concurrency: 2 },
        )
      const handle = await engine.start(wf)
      expect(await handle.result()).toEqual(['fast 10/-1', 'fast 20/-2'])
      const steps = await engine.getSteps(handle.id)
      const branches = steps.filter((r) => r.name === 'both[0]').map((r) => [r.item, r.output])
      expect(branches.sort()).toEqual([[[0], 10], [[1], 20]])
    })

    it('an items function that throws fails the node: journaled failed, step:failed follows step:started', async () => {
      const engine = await s.engine()
      const events: string[] = []
      engine.on('step:started', (e) => events.push(`started ${e.step}`))
      engine.on('step:failed', (e) => events.push(`failed ${e.step}`))
      const bad = new Error('cannot list items')
      const wf = workflow(uid()).forEach(
        'each',
        async (): Promise<number[]> => {
          throw bad
        },
        (item, flow) => flow.step('one', () => item),
      )
      const handle = await engine.start(wf)
      expect(rootCause(await rejectionOf(handle.result()))).toBe(bad)
      expect(events).toEqual(['started each', 'failed each'])
      expect((await engine.getSteps(handle.id)).map((r) => [r.name, r.status])).toEqual([['each', 'failed']])
    })

    it('an empty items array gives []', async () => {
      const engine = await s.engine()
      let bodyRan = false
      const wf = workflow(uid())
        .forEach('each', () => [] as number[], (item, flow) => flow.step('one', () => ((bodyRan = true), item)))
        .step('after', (ctx) => ctx.last)
      expect(await engine.run(wf)).toEqual([])
      expect(bodyRan).toBe(false)
    })
  })
}

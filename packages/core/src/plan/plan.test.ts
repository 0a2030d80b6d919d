import { describe, expect, test } from 'vitest'
import { z } from 'zod'
import { toMermaid, workflow, type AnyWorkflow, type BranchNode, type ForEachNode, type ParallelNode, type Plan, type PlanNode, type RaceNode } from '@stepline/core'

/** A workflow with every node kind: step, parallel (tuple and object), race, branch with elseIf/else, forEach, onError, sleep. */
function everyKind(factor = 2, extra?: (wf: ReturnType<typeof base>) => AnyWorkflow): AnyWorkflow {
  const wf = base(factor)
  return extra ? extra(wf) : wf
}

function base(factor: number) {
  return workflow('every-kind', { input: z.object({ n: z.number() }), timeout: '5m', concurrency: 4 })
    .step('double', (ctx) => ctx.payload.n * factor, { retry: { attempts: 3, backoff: 'fixed', delay: '200ms', retryIf: () => true }, timeout: '2s' })
    .parallel([(ctx) => ctx.last + 1, async (ctx) => ctx.last + 2], { maxConcurrency: 2 })
    .parallel('fetch', { user: () => 'ada', count: () => 3 }, { timeout: '30s' })
    .if('large', (ctx) => ctx.last.count > 2)
    .step('review', () => 'reviewed')
    .elseIf('medium', (ctx) => ctx.last.count > 1)
    .step('light-review', () => 'light')
    .else()
    .step('auto-approve', () => 'auto')
    .endIf()
    .forEach('reserve', () => [1, 2, 3], (_item, flow) => flow.step('reserve-one', (ctx) => ctx.item * 2), { concurrency: 2, chunkSize: 2 })
    .race([async () => 'primary', async () => 'backup'], { timeout: '1s' })
    .onError(() => 'fallback')
    .sleep('cool-down', '10m')
    .step('ship', (ctx) => ctx.steps.fetch.output.user)
}

const kinds = (nodes: PlanNode[]): string[] => nodes.map((n) => n.kind)
const names = (nodes: PlanNode[]): string[] => nodes.map((n) => n.name)

describe('JSON round trip', () => {
  test('a plan using every node kind equals its JSON round trip', () => {
    const plan = everyKind().plan()
    expect(new Set(kinds(plan.nodes))).toEqual(new Set(['step', 'parallel', 'branch', 'forEach', 'race', 'sleep']))
    const copy = JSON.parse(JSON.stringify(plan)) as Plan
    expect(copy).toStrictEqual(plan)
  })

  test('plans hold no functions, undefined values or class instances', () => {
    const walk = (v: unknown): void => {
      expect(typeof v).not.toBe('function')
      expect(v).not.toBeUndefined()
      if (Array.isArray(v)) v.forEach(walk)
      else if (v !== null && typeof v === 'object') {
        expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
        Object.values(v).forEach(walk)
      }
    }
    walk(everyKind().plan())
  })
})

describe('stable ids and hash', () => {
  test('two builds of the same definition give the same ids and hash', () => {
    const a = everyKind().plan()
    const b = everyKind().plan()
    expect(b).toStrictEqual(a)
    expect(b.hash).toBe(a.hash)
    expect(a.hash).toMatch(/^[0-9a-f]{16}$/)
  })

  test('ids are paths in the tree', () => {
    const plan = everyKind().plan()
    expect(plan.nodes.map((n) => n.id)).toEqual(['n0', 'n1', 'n2', 'n3', 'n4', 'n5', 'n6', 'n7'])
    const branch = plan.nodes[3] as BranchNode
    expect(branch.cases.map((c) => c.id)).toEqual(['n3.c0', 'n3.c1'])
    expect(branch.cases[0]!.nodes[0]!.id).toBe('n3.c0.n0')
    expect(branch.cases[1]!.nodes[0]!.id).toBe('n3.c1.n0')
    expect(branch.otherwise!.id).toBe('n3.else')
    expect(branch.otherwise!.nodes[0]!.id).toBe('n3.else.n0')
    const each = plan.nodes[4] as ForEachNode
    expect(each.body[0]!.id).toBe('n4.body.n0')
    const par = plan.nodes[1] as ParallelNode
    expect(par.branches.map((b) => b.id)).toEqual(['n1.b0', 'n1.b1'])
  })

  test('the hash changes when a step is added', () => {
    const before = everyKind().plan().hash
    const after = everyKind(2, (wf) => wf.step('notify', () => null)).plan().hash
    expect(after).not.toBe(before)
  })

  test('the hash changes when a step is renamed', () => {
    const a = workflow('w').step('a', () => 1).step('b', () => 2).plan()
    const b = workflow('w').step('a', () => 1).step('c', () => 2).plan()
    expect(b.hash).not.toBe(a.hash)
  })

  test('the hash changes when an option changes', () => {
    const hash = (options: object) => workflow('w').step('a', () => 1, options).plan().hash
    const plain = hash({})
    expect(hash({ timeout: '2s' })).not.toBe(plain)
    expect(hash({ timeout: '3s' })).not.toBe(hash({ timeout: '2s' }))
    expect(hash({ retry: 3 })).not.toBe(plain)
    expect(hash({ retry: { attempts: 3, backoff: 'fixed' } })).not.toBe(hash({ retry: 3 }))
    expect(workflow('w', { timeout: '1m' }).step('a', () => 1).plan().hash).not.toBe(plain)
    expect(workflow('other').step('a', () => 1).plan().hash).not.toBe(plain)
  })

  test('equal durations written differently give the same hash', () => {
    const a = workflow('w').step('a', () => 1, { timeout: '2s' }).plan()
    const b = workflow('w').step('a', () => 1, { timeout: 2000 }).plan()
    expect(b.hash).toBe(a.hash)
  })

  test('the hash does NOT change when only a step function body changes (functions are not part of the plan)', () => {
    // Deliberate: the plan is the shape of the workflow, not its code. Editing a step's code
    // keeps the version, so runs in flight resume under the new code.
    const a = everyKind(2).plan()
    const b = everyKind(3).plan()
    expect(b.hash).toBe(a.hash)
    expect(b).toStrictEqual(a)
    const c = workflow('w').step('a', () => 1).plan()
    const d = workflow('w').step('a', async () => ({ something: 'else' })).plan()
    expect(d.hash).toBe(c.hash)
  })
})

describe('generated names', () => {
  test('parallel#1, race#1, forEach#1 are stable and count per kind', () => {
    const build = () =>
      workflow('w')
        .parallel([() => 1])
        .race([() => 1])
        .forEach(() => [1], (_i, flow) => flow.step('one', () => 1))
        .parallel([() => 2])
        .race({ a: () => 1 })
        .forEach(() => [1], (_i, flow) => flow.step('two', () => 1))
        .plan()
    const plan = build()
    expect(names(plan.nodes)).toEqual(['parallel#1', 'race#1', 'forEach#1', 'parallel#2', 'race#2', 'forEach#2'])
    expect(names(build().nodes)).toEqual(names(plan.nodes))
    expect(build().hash).toBe(plan.hash)
  })

  test('named nodes do not use up a number', () => {
    const plan = workflow('w')
      .parallel('named', [() => 1])
      .parallel([() => 1])
      .plan()
    expect(names(plan.nodes)).toEqual(['named', 'parallel#1'])
  })

  test('branches are named after their node and key', () => {
    const plan = workflow('w')
      .parallel([() => 1, () => 2])
      .race('quote', { primary: () => 1, backup: () => 2 })
      .plan()
    const [par, race] = plan.nodes as [ParallelNode, RaceNode]
    expect(par.branches.map((b) => [b.name, b.key])).toEqual([
      ['parallel#1[0]', 0],
      ['parallel#1[1]', 1],
    ])
    expect(race.branches.map((b) => [b.name, b.key])).toEqual([
      ['quote[primary]', 'primary'],
      ['quote[backup]', 'backup'],
    ])
  })
})

describe('plan structure', () => {
  const plan = everyKind().plan()

  test('top level kinds and names', () => {
    expect(plan.workflowId).toBe('every-kind')
    expect(plan.options).toEqual({ hasInputSchema: true, concurrency: 4, timeoutMs: 300_000 })
    expect(kinds(plan.nodes)).toEqual(['step', 'parallel', 'parallel', 'branch', 'forEach', 'race', 'sleep', 'step'])
    expect(names(plan.nodes)).toEqual(['double', 'parallel#1', 'fetch', 'large', 'reserve', 'race#1', 'cool-down', 'ship'])
  })

  test('step options are normalised to milliseconds', () => {
    expect(plan.nodes[0]).toMatchObject({
      kind: 'step',
      retry: { attempts: 3, backoff: 'fixed', delayMs: 200, jitter: 0 },
      timeoutMs: 2000,
    })
    expect(plan.nodes[0]).toHaveProperty('retry.retryIf', expect.any(Number))
    expect(plan.nodes[6]).toMatchObject({ kind: 'sleep', durationMs: 600_000 })
  })

  test('parallel: shape, branches, options', () => {
    const [, tuple, object] = plan.nodes as [PlanNode, ParallelNode, ParallelNode]
    expect(tuple).toMatchObject({ kind: 'parallel', shape: 'tuple', maxConcurrency: 2 })
    expect(tuple.branches).toHaveLength(2)
    expect(object).toMatchObject({ kind: 'parallel', shape: 'object', timeoutMs: 30_000 })
    expect(object.branches.map((b) => b.key)).toEqual(['user', 'count'])
  })

  test('branch: cases in order, then otherwise', () => {
    const branch = plan.nodes[3] as BranchNode
    expect(branch.cases.map((c) => c.name)).toEqual(['large', 'medium'])
    expect(branch.cases.map((c) => names(c.nodes))).toEqual([['review'], ['light-review']])
    expect(names(branch.otherwise!.nodes)).toEqual(['auto-approve'])
    expect(branch.onError).toBeUndefined()
  })

  test('a branch without else has no otherwise', () => {
    const p = workflow('w').if('c', () => true).step('a', () => 1).endIf().plan()
    expect((p.nodes[0] as BranchNode).otherwise).toBeUndefined()
    expect(JSON.parse(JSON.stringify(p))).toStrictEqual(p)
  })

  test('forEach: body, concurrency, chunkSize', () => {
    const each = plan.nodes[4] as ForEachNode
    expect(each).toMatchObject({ kind: 'forEach', name: 'reserve', concurrency: 2, chunkSize: 2 })
    expect(kinds(each.body)).toEqual(['step'])
    expect(names(each.body)).toEqual(['reserve-one'])
    expect(each.bodySlots).toBeGreaterThan(0)
  })

  test('onError attaches to the node before it', () => {
    const race = plan.nodes[5] as RaceNode
    expect(race).toMatchObject({ kind: 'race', name: 'race#1', timeoutMs: 1000 })
    expect(race.onError).toEqual(expect.any(Number))
    expect(plan.nodes.filter((n) => n.onError !== undefined)).toHaveLength(1)
  })

  test('nested ifs nest in the tree', () => {
    const p = workflow('w')
      .if('outer', () => true)
      .step('a', () => 1)
      .if('inner', () => true)
      .step('b', () => 1)
      .endIf()
      .step('c', () => 1)
      .endIf()
      .plan()
    const outer = p.nodes[0] as BranchNode
    expect(names(outer.cases[0]!.nodes)).toEqual(['a', 'inner', 'c'])
    expect(names((outer.cases[0]!.nodes[1] as BranchNode).cases[0]!.nodes)).toEqual(['b'])
  })

  test('an empty workflow has no nodes', () => {
    expect(workflow('empty').plan().nodes).toEqual([])
  })
})

describe('toMermaid', () => {
  test('is a flowchart TD holding every node', () => {
    const wf = everyKind()
    const chart = wf.toMermaid()
    expect(chart).toBe(toMermaid(wf.plan()))
    const lines = chart.split('\n')
    expect(lines[0]).toBe('flowchart TD')
    expect(lines).toContain('  start(["every-kind"])')
    expect(lines).toContain('  n_n0["double"]')
    expect(lines).toContain('  start --> n_n0')
    expect(lines).toContain('  n_n1_fork{{"parallel parallel#1"}}')
    expect(lines).toContain('  n_n2_fork{{"parallel fetch"}}')
    expect(lines).toContain('  n_n2_b0["fetch[user]"]')
    expect(lines).toContain('  n_n3{"large?"}')
    expect(chart).toContain('review')
    expect(chart).toContain('light-review')
    expect(chart).toContain('auto-approve')
    expect(chart).toMatch(/subgraph n_n4\["forEach reserve \(concurrency 2\)"\]/)
    expect(chart).toContain('reserve-one')
    expect(lines).toContain('  n_n5_fork{{"race race#1"}}')
    expect(lines).toContain('  n_n5_join{{"first wins ⟲ onError"}}')
    expect(lines).toContain('  n_n6["sleep cool-down (600000 ms)"]')
    expect(lines).toContain('  n_n6 --> n_n7')
    expect(lines).toContain('  n_n7 --> done')
    expect(lines.at(-1)).toBe('  n_n7 --> done')
  })

  test('escapes double quotes in names', () => {
    const chart = workflow('w').step('say "hi"', () => 1).toMermaid()
    expect(chart).toContain('n_n0["say #quot;hi#quot;"]')
  })

  test('escapes newlines, angle brackets and entity-like text in names', () => {
    const chart = workflow('w').step('a<b>\n"c" #quot;', () => 1).parallel('p\r\nq', { 'k<1>': () => 1 }).toMermaid()
    const lines = chart.split('\n')
    expect(lines).toContain('  n_n0["a#lt;b#gt;<br>#quot;c#quot; #35;quot;"]')
    expect(lines).toContain('  n_n1_fork{{"parallel p<br>q"}}')
    expect(lines).toContain('  n_n1_b0["p<br>q[k#lt;1#gt;]"]')
    // Generated names keep their `#`: only an entity-like `#name;` is escaped.
    expect(workflow('w').parallel([() => 1]).toMermaid()).toContain('{{"parallel parallel#1"}}')
  })

  test('a small workflow', () => {
    const chart = workflow('small')
      .step('a', () => 1)
      .parallel('p', [() => 1, () => 2])
      .if('big', () => true)
      .step('b', () => 2)
      .endIf()
      .toMermaid()
    expect(chart).toMatchInlineSnapshot(`
      "flowchart TD
        start(["small"])
        n_n0["a"]
        start --> n_n0
        n_n1_fork{{"parallel p"}}
        n_n0 --> n_n1_fork
        n_n1_join{{"all done"}}
        n_n1_b0["p[0]"]
        n_n1_fork --> n_n1_b0
        n_n1_b0 --> n_n1_join
        n_n1_b1["p[1]"]
        n_n1_fork --> n_n1_b1
        n_n1_b1 --> n_n1_join
        n_n2{"big?"}
        n_n1_join --> n_n2
        n_n2_c0_when(["big"])
        n_n2 --> n_n2_c0_when
        n_n2_c0_n0["b"]
        n_n2_c0_when --> n_n2_c0_n0
        done(["end"])
        n_n2_c0_n0 --> done
        n_n2 --> done"
    `)
  })
})

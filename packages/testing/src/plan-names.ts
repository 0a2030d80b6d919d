import type { PlanNode } from '@stepline/core'

/** What `testRun` can address by name in a plan: mocks for leaves, answers for waits. */
export interface PlanNames {
  /** Steps and `parallel`/`race` branches (`fetch[user]`), at any depth, in plan order. */
  readonly mockable: string[]
  /** Nodes a mock cannot replace, with what to do instead. */
  readonly notMockable: Map<string, string>
  /** Event names the workflow's `waitForEvent` nodes wait for, by node id. */
  readonly events: Map<string, string>
  /** Every node name, at any depth, with whether it is a top-level node. */
  readonly nodes: Map<string, { topLevel: boolean }>
  /** Body steps of `forEach` nodes whose `cpu()` body goes to the executor in chunks (`chunkSize`). */
  readonly chunked: string[]
}

/** Walks a plan once for the names `testRun` checks its options and results against. */
export function planNames(nodes: readonly PlanNode[]): PlanNames {
  const names: PlanNames = { mockable: [], notMockable: new Map(), events: new Map(), nodes: new Map(), chunked: [] }
  walk(nodes, names, true)
  return names
}

function walk(nodes: readonly PlanNode[], names: PlanNames, topLevel: boolean): void {
  for (const n of nodes) {
    names.nodes.set(n.name, { topLevel })
    switch (n.kind) {
      case 'step':
        names.mockable.push(n.name)
        break
      case 'parallel':
      case 'race': {
        const branches = n.branches.map((b) => b.name)
        for (const b of branches) names.nodes.set(b, { topLevel: false })
        names.mockable.push(...branches)
        names.notMockable.set(n.name, `is a ${n.kind} and cannot be mocked itself; mock its branches instead: ${quoteAll(branches)}`)
        break
      }
      case 'forEach': {
        const before = names.mockable.length
        walk(n.body, names, false)
        const body = names.mockable.slice(before)
        if (n.cpu !== undefined && n.chunkSize !== undefined) names.chunked.push(...body)
        names.notMockable.set(n.name, `is a forEach and cannot be mocked itself; mock the steps of its body instead: ${quoteAll(body)}`)
        break
      }
      case 'branch':
        for (const c of n.cases) walk(c.nodes, names, topLevel)
        if (n.otherwise) walk(n.otherwise.nodes, names, topLevel)
        names.notMockable.set(n.name, 'is an .if() and cannot be mocked; mock the steps of its cases instead')
        break
      case 'sleep':
        names.notMockable.set(n.name, 'is a sleep and cannot be mocked; on the fake clock it takes no real time anyway')
        break
      case 'waitForEvent':
        names.events.set(n.id, n.event)
        names.notMockable.set(n.name, `is a waitForEvent and cannot be mocked; answer it with events: { '${n.event}': … }`)
        break
    }
  }
}

/** `"a", "b"`, or `(none)`. */
export function quoteAll(names: readonly string[]): string {
  return names.length ? names.map((n) => `"${n}"`).join(', ') : '(none)'
}

import type { PlanNode } from '../plan/types'
import type { StepRecord } from '../store/types'
import type { PoolStats } from '../executors/pool'

/** How a run spent its time. */
export interface RunSummary {
  /** From the run's first start to its end: time parked (or down, before a recovery) included. */
  wallMs: number
  /** Time of every step and branch added up (can exceed `wallMs` when work overlapped). */
  stepMs: number
  /** `stepMs / wallMs`: 1 for a purely sequential run, N when N steps always overlapped. */
  parallelEfficiency: number
  /** Steps that decided the wall time, first to last (`name[i]` for a `forEach` item's step). */
  criticalPath: string[]
  criticalPathMs: number
  /** Journal entries of leaves that ran (not replayed, skipped or cached counted as run). */
  steps: number
  /** Present when the run had `cpu()` steps: how many ran in the pool, and the pool's state when the run ended. */
  pool?: { cpuSteps: number; threads: number; utilization: number }
}

interface Path {
  names: string[]
  ms: number
  end: number
}

/**
 * Computes the summary from the plan and the run's journal. Called lazily: a run pays for it
 * only when its summary is read.
 */
export function summarize(
  nodes: readonly PlanNode[],
  journal: readonly StepRecord[],
  startedAt: number,
  endedAt: number,
  pool?: PoolStats | undefined,
): RunSummary {
  // Later entries replace earlier ones with the same key (a failure then its recovery).
  const records = new Map<string, StepRecord>()
  for (const r of journal) records.set(r.key, r)
  let stepMs = 0
  let steps = 0
  for (const r of records.values()) {
    if ((r.kind === 'step' || r.kind === 'fn') && r.status !== 'skipped') {
      stepMs += r.durationMs
      steps++
    }
  }
  const wallMs = Math.max(0, endedAt - startedAt)
  const path = sequencePath(nodes, records, '', '')
  const summary: RunSummary = {
    wallMs,
    stepMs,
    parallelEfficiency: wallMs > 0 ? stepMs / wallMs : steps > 0 ? 1 : 0,
    criticalPath: path.names,
    criticalPathMs: path.ms,
    steps,
  }
  const cpuNodes = cpuNodeIds(nodes)
  if (cpuNodes.size > 0) {
    let cpuSteps = 0
    for (const r of records.values()) if (cpuNodes.has(r.nodeId) && r.status === 'completed') cpuSteps++
    summary.pool = { cpuSteps, threads: pool?.threads ?? 0, utilization: pool?.utilization ?? 0 }
  }
  return summary
}

function cpuNodeIds(nodes: readonly PlanNode[], out = new Set<string>()): Set<string> {
  for (const n of nodes) {
    if (n.kind === 'step') {
      if (n.cpu) out.add(n.id)
    } else if (n.kind === 'parallel' || n.kind === 'race') {
      for (const b of n.branches) if (b.cpu) out.add(b.id)
    } else if (n.kind === 'branch') {
      for (const c of n.cases) cpuNodeIds(c.nodes, out)
      if (n.otherwise) cpuNodeIds(n.otherwise.nodes, out)
    } else if (n.kind === 'forEach') {
      cpuNodeIds(n.body, out)
    }
  }
  return out
}

function sequencePath(nodes: readonly PlanNode[], records: ReadonlyMap<string, StepRecord>, itemKey: string, label: string): Path {
  const out: Path = { names: [], ms: 0, end: 0 }
  for (const node of nodes) {
    const p = nodePath(node, records, itemKey, label)
    out.names.push(...p.names)
    out.ms += p.ms
    out.end = Math.max(out.end, p.end)
  }
  return out
}

function nodePath(node: PlanNode, records: ReadonlyMap<string, StepRecord>, itemKey: string, label: string): Path {
  const rec = records.get(node.id + itemKey)
  const none: Path = { names: [], ms: 0, end: 0 }
  if (rec === undefined || rec.status === 'skipped') return none
  // `.onError` answered for the node: its branches, items or case did not make its output, and its
  // own entry spans the time it took (a race whose every branch failed has no branch to name).
  if (rec.recovered === true) return { names: [node.name + label], ms: rec.durationMs, end: rec.endedAt }
  switch (node.kind) {
    case 'step':
    case 'sleep':
    case 'waitForEvent':
      return { names: [node.name + label], ms: rec.durationMs, end: rec.endedAt }
    case 'parallel':
    case 'race': {
      let best: StepRecord | undefined
      for (const b of node.branches) {
        const r = records.get(b.id + itemKey)
        if (r === undefined || r.status !== 'completed') continue
        const better = node.kind === 'parallel' ? !best || r.endedAt > best.endedAt : !best || r.endedAt < best.endedAt
        if (better) best = r
      }
      return best ? { names: [best.name + label], ms: best.durationMs, end: best.endedAt } : none
    }
    case 'branch': {
      const taken = records.get(`${node.id + itemKey}:when`)?.output as number | undefined
      const seq = taken === undefined || taken < 0 ? undefined : taken === node.cases.length ? node.otherwise?.nodes : node.cases[taken]?.nodes
      return seq ? sequencePath(seq, records, itemKey, label) : none
    }
    case 'forEach': {
      const n = Array.isArray(rec.output) ? rec.output.length : 0
      let best = none
      for (let i = 0; i < n; i++) {
        const p = sequencePath(node.body, records, `${itemKey}@${i}`, `${label}[${i}]`)
        if (p.end > best.end) best = p
      }
      return best
    }
  }
}

import type { EngineEventPayload, Plan, PlanNode } from '@stepline/core'
import { c, formatMs } from '../output'

type Status = 'pending' | 'running' | 'retrying' | 'done' | 'failed' | 'skipped'

/** One line of the tree: a plan node (or a branch case), aggregated over `forEach` items. */
interface Row {
  id: string
  label: string
  depth: number
  kind: PlanNode['kind'] | 'fn' | 'case'
  maxAttempts: number
  children: Row[]
  status: Status
  startedAt: number | undefined
  durationMs: number | undefined
  attempt: number
  retries: number
  retryAt: number
  /** Per-item counts for nodes inside a `forEach` body. */
  items: { running: number; done: number; failed: number; skipped: number; totalMs: number } | undefined
  progress: { done: number; total: number; itemsPerSecond: number } | undefined
  note: string
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

/**
 * The state of one run's nodes, fed by engine events, rendered as a tree (live in a terminal)
 * or as one plain line per event (CI logs).
 */
export class RunProgress {
  readonly rows: Row[] = []
  readonly #byId = new Map<string, Row>()
  readonly #forEachByName = new Map<string, Row>()
  #tick = 0

  constructor(plan: Plan) {
    this.#add(plan.nodes, 0, false)
  }

  #row(id: string, label: string, depth: number, kind: Row['kind'], inItem: boolean, maxAttempts = 1): Row {
    const row: Row = {
      id, label, depth, kind, maxAttempts, children: [], status: 'pending', startedAt: undefined, durationMs: undefined,
      attempt: 1, retries: 0, retryAt: 0, items: inItem ? { running: 0, done: 0, failed: 0, skipped: 0, totalMs: 0 } : undefined,
      progress: undefined, note: '',
    }
    this.rows.push(row)
    this.#byId.set(id, row)
    return row
  }

  #add(nodes: readonly PlanNode[], depth: number, inItem: boolean): Row[] {
    const out: Row[] = []
    for (const node of nodes) {
      switch (node.kind) {
        case 'step':
          out.push(this.#row(node.id, node.cpu ? `${node.name} (cpu)` : node.name, depth, 'step', inItem, node.retry?.attempts ?? 1))
          break
        case 'sleep':
          out.push(this.#row(node.id, `sleep ${node.name}`, depth, 'sleep', inItem))
          break
        case 'waitForEvent':
          out.push(this.#row(node.id, `wait ${node.name} for "${node.event}"`, depth, 'waitForEvent', inItem))
          break
        case 'parallel':
        case 'race': {
          const row = this.#row(node.id, `${node.name} (${node.kind})`, depth, node.kind, inItem)
          for (const b of node.branches) row.children.push(this.#row(b.id, b.name, depth + 1, 'fn', inItem))
          out.push(row)
          break
        }
        case 'branch': {
          const row = this.#row(node.id, `${node.name}?`, depth, 'branch', inItem)
          node.cases.forEach((cs, i) => {
            const caseRow = this.#row(cs.id, `${i === 0 ? 'if' : 'else if'} ${cs.name}`, depth + 1, 'case', inItem)
            caseRow.children = this.#add(cs.nodes, depth + 2, inItem)
            row.children.push(caseRow)
          })
          if (node.otherwise) {
            const caseRow = this.#row(node.otherwise.id, 'else', depth + 1, 'case', inItem)
            caseRow.children = this.#add(node.otherwise.nodes, depth + 2, inItem)
            row.children.push(caseRow)
          }
          out.push(row)
          break
        }
        case 'forEach': {
          const row = this.#row(node.id, `${node.name} (forEach${node.cpu ? ', cpu' : ''})`, depth, 'forEach', inItem)
          row.children = this.#add(node.body, depth + 1, true)
          this.#forEachByName.set(node.name, row)
          out.push(row)
          break
        }
      }
    }
    return out
  }

  // ── events ────────────────────────────────────────────────────────────────────────────────

  started(e: EngineEventPayload<'step:started'>, now: number): void {
    const row = this.#byId.get(e.nodeId)
    if (!row) return
    if (row.items && e.item !== undefined) row.items.running++
    if (row.status === 'pending' || row.items) row.status = 'running'
    row.startedAt ??= now
  }

  completed(e: EngineEventPayload<'step:completed'>, now: number): void {
    const row = this.#byId.get(e.nodeId)
    if (!row) return
    if (row.items && e.item !== undefined) {
      row.items.running = Math.max(0, row.items.running - 1)
      row.items.done++
      row.items.totalMs += e.durationMs
      row.status = row.items.failed > 0 ? 'failed' : row.items.running > 0 ? 'running' : 'done'
      row.durationMs = now - (row.startedAt ?? now)
    } else {
      row.status = 'done'
      row.durationMs = e.durationMs
    }
    row.attempt = Math.max(row.attempt, e.attempt)
    row.note = e.cached ? 'cached' : e.recovered ? 'recovered by onError' : ''
    if (row.kind === 'forEach' && Array.isArray(e.output) && row.progress === undefined) {
      row.progress = { done: e.output.length, total: e.output.length, itemsPerSecond: 0 }
    }
  }

  failed(e: EngineEventPayload<'step:failed'>, now: number): void {
    const row = this.#byId.get(e.nodeId)
    if (!row) return
    if (row.items && e.item !== undefined) {
      row.items.running = Math.max(0, row.items.running - 1)
      row.items.failed++
      row.durationMs = now - (row.startedAt ?? now)
    } else {
      row.durationMs = e.durationMs
    }
    row.status = 'failed'
    row.attempt = Math.max(row.attempt, e.attempt)
    row.note = firstLine(e.error)
  }

  retrying(e: EngineEventPayload<'step:retrying'>, now: number): void {
    const row = this.#byId.get(e.nodeId)
    if (!row) return
    row.status = 'retrying'
    row.retries++
    row.attempt = Math.max(row.attempt, e.nextAttempt)
    row.retryAt = now + e.delayMs
    row.note = firstLine(e.error)
  }

  skipped(e: EngineEventPayload<'step:skipped'>): void {
    const row = this.#byId.get(e.nodeId)
    if (!row) return
    if (row.items && e.item !== undefined) {
      row.items.skipped++
      if (row.items.done + row.items.running + row.items.failed === 0) row.status = 'skipped'
    } else row.status = 'skipped'
    // Nodes of a skipped branch case are skipped with it.
    for (const child of row.children) if (child.status === 'pending') child.status = 'skipped'
  }

  progress(e: EngineEventPayload<'run:progress'>): void {
    const row = this.#forEachByName.get(e.step)
    if (row) row.progress = { done: e.done, total: e.total, itemsPerSecond: e.itemsPerSecond }
  }

  /** At the run's end nothing is running any more: a node left running was cut off. */
  finish(): void {
    for (const row of this.rows) {
      if (row.items && row.status === 'running' && row.items.running === 0) row.status = row.items.failed ? 'failed' : 'done'
    }
  }

  // ── rendering ─────────────────────────────────────────────────────────────────────────────

  /** The tree, one string per line, for the live view. */
  lines(now: number): string[] {
    this.#tick++
    const out: string[] = []
    const visit = (rows: Row[]) => {
      for (const row of rows) {
        out.push(this.#line(row, now))
        visit(row.children)
      }
    }
    visit(this.rows.filter((r) => r.depth === 0))
    return out
  }

  #line(row: Row, now: number): string {
    const status = row.kind === 'case' ? caseStatus(row) : row.status
    const waiting = status === 'retrying' && now >= row.retryAt
    const symbol =
      status === 'pending' ? c.dim('·')
      : status === 'running' || waiting ? c.cyan(SPINNER[this.#tick % SPINNER.length]!)
      : status === 'retrying' ? c.yellow('↻')
      : status === 'done' ? c.green('✓')
      : status === 'failed' ? c.red('✗')
      : c.dim('–')
    const label = status === 'skipped' || status === 'pending' ? c.dim(row.label) : row.label
    const parts: string[] = []
    if (row.kind !== 'case') {
      if (row.items) {
        const { running, done, failed, totalMs } = row.items
        if (done + failed + running > 0) {
          parts.push(`${done} done${running ? `, ${running} running` : ''}${failed ? `, ${c.red(`${failed} failed`)}` : ''}`)
          if (done > 0) parts.push(`avg ${formatMs(totalMs / done)}`)
        }
      } else if (status === 'running' || waiting) {
        if (row.startedAt !== undefined) parts.push(formatMs(now - row.startedAt))
      } else if (row.durationMs !== undefined && status !== 'skipped') {
        parts.push(formatMs(row.durationMs))
      }
      if (status === 'retrying' && !waiting) parts.push(c.yellow(`attempt ${row.attempt}/${row.maxAttempts} in ${formatMs(row.retryAt - now)}`))
      else if ((status === 'running' || waiting) && row.attempt > 1) parts.push(c.yellow(`attempt ${row.attempt}/${row.maxAttempts}`))
      if (row.retries > 0 && status !== 'retrying' && !waiting) parts.push(c.yellow(`${row.retries} ${row.retries === 1 ? 'retry' : 'retries'}`))
      if (row.progress) parts.push(bar(row.progress.done, row.progress.total) + ` ${row.progress.done}/${row.progress.total}` + (row.progress.itemsPerSecond > 0 ? c.dim(` ${row.progress.itemsPerSecond.toFixed(1)} items/s`) : ''))
      if (row.note && status !== 'pending') parts.push(status === 'failed' ? c.red(row.note) : c.dim(row.note))
    }
    return `${'  '.repeat(row.depth + 1)}${symbol} ${label}${parts.length ? '  ' + c.dim('·') + ' ' + parts.join(c.dim(' · ')) : ''}`
  }
}

function caseStatus(row: Row): Status {
  const leaves: Status[] = []
  const collect = (r: Row) => {
    if (r.kind === 'case') r.children.forEach(collect)
    else leaves.push(r.status)
  }
  collect(row)
  if (leaves.length === 0) return 'pending'
  if (leaves.every((s) => s === 'skipped')) return 'skipped'
  if (leaves.some((s) => s === 'failed')) return 'failed'
  if (leaves.every((s) => s === 'done' || s === 'skipped')) return 'done'
  if (leaves.some((s) => s !== 'pending')) return 'running'
  return 'pending'
}

function bar(done: number, total: number, width = 20): string {
  const filled = total > 0 ? Math.round((done / total) * width) : 0
  return c.cyan('█'.repeat(filled)) + c.dim('░'.repeat(width - filled))
}

function firstLine(error: unknown): string {
  // A StepError wraps the step's own error; its message says more about what went wrong.
  const e = error instanceof Error && (error as { code?: unknown }).code === 'STEP_FAILED' && error.cause instanceof Error ? error.cause : error
  const line = (e instanceof Error ? e.message : String(e)).split('\n')[0] ?? ''
  return line.length > 80 ? `${line.slice(0, 79)}…` : line
}

import { createHash } from 'node:crypto'
import { PlanError } from '../errors'
import { opFns, type AnyFn, type Op } from '../builder/ops'
import { WorkflowBuilder } from '../builder/workflow'
import type { WorkflowOptions } from '../builder/options'
import type { Plan, PlanNode, BranchNode, BranchFn, PlanOptions } from './types'
import { isCpuTask } from '../executors/cpu'
import { toMs } from '../duration'

/** A plan plus its side table of functions: what the runtime needs to run a workflow. */
export interface CompiledWorkflow {
  plan: Plan
  /** The side table of the workflow scope; plan nodes refer to it by index. */
  fns: (AnyFn | undefined)[]
  options: WorkflowOptions<any>
  /** Whether any node runs in the worker pool (the summary then reports pool utilisation). */
  hasCpu: boolean
}

interface CompileState {
  workflowId: string
  /** name → id of the node that holds it, to report duplicates with both places. */
  names: Map<string, string>
  counters: Record<'parallel' | 'race' | 'forEach', number>
}

const compiled = new WeakMap<WorkflowBuilder, CompiledWorkflow>()

/**
 * Compiles a builder into its plan and side table, validating what only the whole chain
 * shows (duplicate names, an unclosed `.if()`). Cached per builder: builders are immutable.
 */
export function compileWorkflow(builder: WorkflowBuilder): CompiledWorkflow {
  const hit = compiled.get(builder)
  if (hit) return hit
  const state: CompileState = { workflowId: builder.id, names: new Map(), counters: { parallel: 0, race: 0, forEach: 0 } }
  const fns: (AnyFn | undefined)[] = []
  const nodes = compileScope(state, builder.ops(), '', fns)
  const open = builder.hasOpenIf()
  if (open !== undefined) throw unclosedIf(state.workflowId, open)
  const o = builder.options
  const options: PlanOptions = { hasInputSchema: o.input !== undefined }
  // Infinity is "no limit", the same as leaving it out (and JSON would turn it into null).
  if (o.concurrency !== undefined && o.concurrency !== Infinity) options.concurrency = o.concurrency
  if (o.timeout !== undefined) options.timeoutMs = toMs(o.timeout)!
  if (o.onError !== undefined) {
    options.onError = fns.length
    fns.push(o.onError)
  }
  const body = { workflowId: builder.id, options, nodes }
  const plan: Plan = { workflowId: builder.id, hash: hashOf(body), options, nodes }
  const result: CompiledWorkflow = { plan, fns, options: o, hasCpu: JSON.stringify(nodes).includes('"cpu":') }
  compiled.set(builder, result)
  return result
}

function unclosedIf(workflowId: string, name: string): PlanError {
  return new PlanError(workflowId, name, `Workflow "${workflowId}": .if('${name}') is never closed. Add .endIf() after the last step of its branches.`)
}

/** A stable content hash: the same definition gives the same hash in every process. */
export function hashOf(value: unknown): string {
  return createHash('sha256').update(stableJson(value)).digest('hex').slice(0, 16)
}

function stableJson(value: unknown, key?: string): string {
  if (Array.isArray(value)) return `[${value.map((v) => stableJson(v)).join(',')}]`
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort()
    return `{${keys.map((k) => `${JSON.stringify(k)}:${stableJson((value as Record<string, unknown>)[k], k)}`).join(',')}}`
  }
  // A cpu module's directory depends on where the code is installed; its file name does not.
  if (key === 'module' && typeof value === 'string') return JSON.stringify(value.slice(value.lastIndexOf('/') + 1))
  return JSON.stringify(value) ?? 'null'
}

interface OpenBranch {
  node: BranchNode
  outer: PlanNode[]
  outerPrefix: string
}

function compileScope(state: CompileState, ops: Op[], prefix: string, fns: (AnyFn | undefined)[]): PlanNode[] {
  const root: PlanNode[] = []
  let current = root
  let currentPrefix = prefix
  const open: OpenBranch[] = []

  const claim = (name: string, id: string): void => {
    const other = state.names.get(name)
    if (other !== undefined) {
      throw new PlanError(
        state.workflowId,
        name,
        `Workflow "${state.workflowId}": the name "${name}" is used twice (nodes ${other} and ${id}). Names must be unique within a workflow, branches and forEach bodies included; rename one.`,
      )
    }
    state.names.set(name, id)
  }

  for (const op of ops) {
    const base = fns.length
    fns.push(...opFns(op))
    const id = `${currentPrefix}n${current.length}`
    switch (op.t) {
      case 'step': {
        claim(op.name, id)
        const o = op.options!
        const node: PlanNode = { kind: 'step', id, name: op.name, fn: base }
        if (isCpuTask(op.fn)) node.cpu = { ...op.fn.ref }
        if (o.retry) node.retry = fns[base + 2] ? { ...o.retry, retryIf: base + 2 } : { ...o.retry }
        if (o.timeoutMs !== undefined) node.timeoutMs = o.timeoutMs
        if (o.cache) node.cache = o.cache.ttlMs === undefined ? { key: base + 1 } : { key: base + 1, ttlMs: o.cache.ttlMs }
        current.push(node)
        break
      }
      case 'parallel':
      case 'race': {
        const name = op.name ?? `${op.t}#${++state.counters[op.t]}`
        claim(name, id)
        const branches = op.keys.map((key, i): BranchFn => {
          const b: BranchFn = { id: `${id}.b${i}`, name: `${name}[${key}]`, key, fn: base + i }
          const f = op.branches[i]
          if (isCpuTask(f)) b.cpu = { ...f.ref }
          return b
        })
        const node: PlanNode =
          op.t === 'parallel'
            ? { kind: 'parallel', id, name, shape: op.shape, branches }
            : { kind: 'race', id, name, shape: op.shape, branches }
        if (op.options.timeoutMs !== undefined) node.timeoutMs = op.options.timeoutMs
        if (node.kind === 'parallel' && op.options.maxConcurrency !== undefined) node.maxConcurrency = op.options.maxConcurrency
        current.push(node)
        break
      }
      case 'if': {
        claim(op.name, id)
        const node: BranchNode = { kind: 'branch', id, name: op.name, cases: [{ id: `${id}.c0`, name: op.name, when: base, nodes: [] }] }
        current.push(node)
        open.push({ node, outer: current, outerPrefix: currentPrefix })
        current = node.cases[0]!.nodes
        currentPrefix = `${id}.c0.`
        break
      }
      case 'elseIf': {
        const top = open[open.length - 1]!
        const caseId = `${top.node.id}.c${top.node.cases.length}`
        claim(op.name, caseId)
        const c = { id: caseId, name: op.name, when: base, nodes: [] as PlanNode[] }
        top.node.cases.push(c)
        current = c.nodes
        currentPrefix = `${caseId}.`
        break
      }
      case 'else': {
        const top = open[open.length - 1]!
        top.node.otherwise = { id: `${top.node.id}.else`, nodes: [] }
        current = top.node.otherwise.nodes
        currentPrefix = `${top.node.id}.else.`
        break
      }
      case 'endIf': {
        const top = open.pop()!
        current = top.outer
        currentPrefix = top.outerPrefix
        break
      }
      case 'forEach': {
        const name = op.name ?? `forEach#${++state.counters.forEach}`
        claim(name, id)
        const bodyFns: (AnyFn | undefined)[] = []
        // A cpu() body is one step per item (or per chunk), named after the forEach.
        const body = isCpuTask(op.body)
          ? [{ kind: 'step' as const, id: `${id}.body.n0`, name: `${name}:task`, fn: 0, cpu: { ...op.body.ref } }]
          : compileScope(state, bodyOps(state.workflowId, name, op.body), `${id}.body.`, bodyFns)
        if (isCpuTask(op.body)) bodyFns.push(undefined)
        const node: PlanNode = {
          kind: 'forEach',
          id,
          name,
          items: base,
          bodyFn: base + 1,
          body,
          bodySlots: bodyFns.length,
          concurrency: op.options.concurrency,
        }
        if (op.options.chunkSize !== undefined) node.chunkSize = op.options.chunkSize
        if (isCpuTask(op.body)) node.cpu = { ...op.body.ref }
        current.push(node)
        break
      }
      case 'onError': {
        const target = current[current.length - 1]
        if (!target) {
          throw new PlanError(state.workflowId, undefined, `Workflow "${state.workflowId}": .onError() must follow the node it recovers, but nothing comes before it here. Move it after a step, or use the workflow option \`onError\` for run failures.`)
        }
        if (target.onError !== undefined) {
          throw new PlanError(state.workflowId, target.name, `Workflow "${state.workflowId}": "${target.name}" has two .onError() handlers. Keep one.`)
        }
        target.onError = base
        break
      }
      case 'sleep': {
        claim(op.name, id)
        const node: PlanNode = { kind: 'sleep', id, name: op.name }
        if (op.durationMs !== undefined) node.durationMs = op.durationMs
        if (op.untilMs !== undefined) node.untilMs = op.untilMs
        if (op.until !== undefined) node.until = base
        current.push(node)
        break
      }
      case 'waitForEvent': {
        claim(op.name, id)
        if (prefix.includes('.body.')) {
          throw new PlanError(state.workflowId, op.name, `Workflow "${state.workflowId}": .waitForEvent('${op.name}') is inside a forEach body. A run waits for events as a whole; wait before or after the forEach, or start one run per item.`)
        }
        const node: PlanNode = { kind: 'waitForEvent', id, name: op.name, event: op.event }
        if (op.timeoutMs !== undefined) node.timeoutMs = op.timeoutMs
        if (op.match !== undefined) node.match = base
        current.push(node)
        break
      }
    }
  }
  return root
}

/** A `forEach` body's ops, built once with a placeholder item that refuses to be read. */
function bodyOps(workflowId: string, name: string, body: AnyFn): Op[] {
  const flow = new WorkflowBuilder(workflowId, {}, 'body')
  const result = body(placeholderItem(workflowId, name), flow)
  return checkBody(workflowId, name, result).ops()
}

export function checkBody(workflowId: string, name: string, result: unknown): WorkflowBuilder {
  if (!(result instanceof WorkflowBuilder)) {
    throw new PlanError(workflowId, name, `Workflow "${workflowId}": the body of forEach "${name}" must return the flow it was given, e.g. (item, flow) => flow.step('one', …). It returned ${result === undefined ? 'undefined' : typeof result}.`)
  }
  const open = result.hasOpenIf()
  if (open !== undefined) throw unclosedIf(workflowId, open)
  return result
}

function placeholderItem(workflowId: string, name: string): object {
  const refuse = (): never => {
    throw new PlanError(workflowId, name, `Workflow "${workflowId}": the body of forEach "${name}" read its item while the plan was being built. Read the item only inside step functions (or use ctx.item), so that every item has the same steps.`)
  }
  return new Proxy({}, { get: refuse, has: refuse, ownKeys: refuse, getOwnPropertyDescriptor: refuse, getPrototypeOf: refuse })
}

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
  /** name → what holds it, to report a duplicate with both places and what to rename. */
  names: Map<string, Holder>
  counters: Record<'parallel' | 'race' | 'forEach', number>
}

/**
 * What holds a name in the plan: a node the user named, or something the compiler named for
 * them (an unnamed node, a `parallel`/`race` branch, the step of a `cpu()` `forEach` body).
 * Generated names share the namespace of user names: `ctx.steps`, events, summaries, mocks and
 * journal readers all address entries by name, so a user step named `fetch[0]` next to a
 * `.parallel('fetch', …)` would be mistaken for its first branch.
 */
interface Holder {
  id: string
  /** For the message: `the step "charge"`, `branch 0 of the parallel "fetch"`. */
  what: string
  /** The user-named node to rename to free the name, or undefined when that node has no name. */
  owner: { label: string; name: string | undefined }
  /** How a generated name is made (`<parallel>[<key>]`); undefined for a name the user gave. */
  pattern?: string
}

/** How a message names a node kind: `step`, `parallel`, `.if()`, … */
const LABELS: Record<string, string> = {
  step: 'step',
  parallel: 'parallel',
  race: 'race',
  if: '.if()',
  elseIf: '.elseIf()',
  forEach: 'forEach',
  sleep: 'sleep',
  waitForEvent: 'waitForEvent',
}

/** A holder of a name the user gave to a node of kind `t`. */
function named(t: string, name: string, id: string): Holder {
  const label = LABELS[t] ?? t
  return { id, what: `the ${label} "${name}"`, owner: { label, name } }
}

function duplicateName(workflowId: string, name: string, first: Holder, second: Holder): PlanError {
  if (first.pattern === undefined && second.pattern === undefined) {
    return new PlanError(
      workflowId,
      name,
      `Workflow "${workflowId}": the name "${name}" is used twice (nodes ${first.id} and ${second.id}). Names must be unique within a workflow, branches and forEach bodies included; rename one.`,
    )
  }
  const place = (h: Holder): string => `${h.what} (node ${h.id})${h.pattern === undefined ? '' : `, whose name is generated as "${h.pattern}"`}`
  const renames: string[] = []
  const unnamed: string[] = []
  for (const h of [first, second]) {
    const o = h.owner
    if (o.name !== undefined) {
      const target = `the ${o.label} "${o.name}"`
      if (!renames.includes(target)) renames.push(target)
    } else {
      const give = `give the ${o.label} a name: .${o.label}('name', …)`
      if (!unnamed.includes(give)) unnamed.push(give)
    }
  }
  const fix = [renames.length > 0 ? `Rename ${renames.join(' or ')}` : '', ...unnamed].filter((s) => s !== '').join(', or ')
  return new PlanError(
    workflowId,
    name,
    `Workflow "${workflowId}": the name "${name}" is used twice: by ${place(first)}, and by ${place(second)}. Names must be unique within a workflow, generated names included. ${fix.charAt(0).toUpperCase()}${fix.slice(1)}.`,
  )
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

  const claim = (name: string, holder: Holder): void => {
    const other = state.names.get(name)
    if (other !== undefined) throw duplicateName(state.workflowId, name, other, holder)
    state.names.set(name, holder)
  }

  for (const op of ops) {
    const base = fns.length
    fns.push(...opFns(op))
    const id = `${currentPrefix}n${current.length}`
    switch (op.t) {
      case 'step': {
        claim(op.name, named('step', op.name, id))
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
        const holder: Holder = op.name === undefined
          ? { id, what: `the unnamed ${op.t}`, owner: { label: op.t, name: undefined }, pattern: `${op.t}#<n>` }
          : named(op.t, op.name, id)
        claim(name, holder)
        const branches = op.keys.map((key, i): BranchFn => {
          const b: BranchFn = { id: `${id}.b${i}`, name: `${name}[${key}]`, key, fn: base + i }
          claim(b.name, { id: b.id, what: `branch ${String(key)} of ${holder.what}`, owner: holder.owner, pattern: `<${op.t}>[<key>]` })
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
        claim(op.name, named('if', op.name, id))
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
        claim(op.name, named('elseIf', op.name, caseId))
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
        const holder: Holder = op.name === undefined
          ? { id, what: 'the unnamed forEach', owner: { label: 'forEach', name: undefined }, pattern: 'forEach#<n>' }
          : named('forEach', op.name, id)
        claim(name, holder)
        const bodyFns: (AnyFn | undefined)[] = []
        let body: PlanNode[]
        if (isCpuTask(op.body)) {
          // A cpu() body is one step per item (or per chunk), named after the forEach.
          const task: PlanNode = { kind: 'step', id: `${id}.body.n0`, name: `${name}:task`, fn: 0, cpu: { ...op.body.ref } }
          claim(task.name, { id: task.id, what: `the cpu() body of ${holder.what}`, owner: holder.owner, pattern: '<forEach>:task' })
          body = [task]
          bodyFns.push(undefined)
        } else {
          body = compileScope(state, bodyOps(state.workflowId, name, op.body), `${id}.body.`, bodyFns)
        }
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
        claim(op.name, named('sleep', op.name, id))
        const node: PlanNode = { kind: 'sleep', id, name: op.name }
        if (op.durationMs !== undefined) node.durationMs = op.durationMs
        if (op.untilMs !== undefined) node.untilMs = op.untilMs
        if (op.until !== undefined) node.until = base
        current.push(node)
        break
      }
      case 'waitForEvent': {
        claim(op.name, named('waitForEvent', op.name, id))
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

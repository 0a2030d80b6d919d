import { PlanError } from '../errors'
import type { StandardSchemaV1 } from '@standard-schema/spec'
import { compileWorkflow } from '../plan/compile'
import { toMermaid } from '../plan/mermaid'
import type { Plan } from '../plan/types'
import type { WorkflowOptions } from './options'
import {
  checkBody,
  checkFn,
  durationOption,
  normalizeForEachOptions,
  normalizeParallelOptions,
  normalizeStepOptions,
  positiveInt,
  timeoutOption,
  type AnyFn,
  type Op,
  type Where,
} from './ops'
import type { Workflow } from './types'
import type { CpuTask } from '../executors/cpu'

interface OpenIf {
  name: string
  hasElse: boolean
  parent: OpenIf | undefined
}

/**
 * `root`: a workflow. `body`: a `forEach` body being compiled. `collect`: a body re-built at
 * run time for one item only to pick up its closures; options were checked at compile time.
 */
export type BuilderMode = 'root' | 'body' | 'collect'

/**
 * The builder's implementation. Immutable: each call returns a new builder that points at
 * its predecessor and adds one op, so a call costs one small allocation and no copying.
 */
export class WorkflowBuilder {
  readonly id: string
  readonly options: WorkflowOptions<any>
  readonly prev: WorkflowBuilder | undefined
  readonly op: Op | undefined
  readonly mode: BuilderMode
  readonly #open: OpenIf | undefined

  constructor(
    id: string,
    options: WorkflowOptions<any>,
    mode: BuilderMode,
    prev?: WorkflowBuilder,
    op?: Op,
    open?: OpenIf,
  ) {
    this.id = id
    this.options = options
    this.mode = mode
    this.prev = prev
    this.op = op
    this.#open = open
  }

  #with(op: Op): WorkflowBuilder {
    return new WorkflowBuilder(this.id, this.options, this.mode, this, op, this.#open)
  }

  #withOpen(op: Op, open: OpenIf | undefined): WorkflowBuilder {
    return new WorkflowBuilder(this.id, this.options, this.mode, this, op, open)
  }

  #where(step: string): Where {
    return { workflowId: this.id, step }
  }

  #checks(): boolean {
    return this.mode !== 'collect'
  }

  /** The ops from first to last. */
  ops(): Op[] {
    const out: Op[] = []
    for (let b: WorkflowBuilder | undefined = this; b?.op; b = b.prev) out.push(b.op)
    return out.reverse()
  }

  /** A generated name for an unnamed node: `parallel#1`, `race#2`, … */
  #autoName(kind: 'parallel' | 'race' | 'forEach'): string {
    if (!this.#checks()) return kind
    let n = 1
    for (let b: WorkflowBuilder | undefined = this; b?.op; b = b.prev) {
      if (b.op.t === kind && b.op.name === undefined) n++
    }
    return `${kind}#${n}`
  }

  #checkName(kind: string, name: unknown): asserts name is string {
    if (!this.#checks()) return
    if (typeof name !== 'string' || name.trim() === '') {
      throw new PlanError(
        this.id,
        undefined,
        `Workflow "${this.id}": expected the name of a ${kind} as a non-empty string, got ${typeof name === 'string' ? `'${name}'` : typeof name}. Give every ${kind} a name: .${kind}('name', …).`,
      )
    }
  }

  step(name: string, fn: AnyFn | CpuTask, options?: any): WorkflowBuilder {
    this.#checkName('step', name)
    if (this.#checks()) checkBody(this.#where(name), 'the step body', fn)
    const normalized = this.#checks() ? normalizeStepOptions(this.#where(name), options) : undefined
    return this.#with({ t: 'step', name, fn, raw: options, options: normalized })
  }

  parallel(a: unknown, b?: unknown, c?: unknown): WorkflowBuilder {
    return this.#fanOut('parallel', a, b, c)
  }

  race(a: unknown, b?: unknown, c?: unknown): WorkflowBuilder {
    return this.#fanOut('race', a, b, c)
  }

  #fanOut(t: 'parallel' | 'race', a: unknown, b: unknown, c: unknown): WorkflowBuilder {
    const named = typeof a === 'string'
    const name = named ? a : undefined
    if (named) this.#checkName(t, name)
    const branches = (named ? b : a) as unknown
    const rawOptions = (named ? c : b) as any
    const where = this.#where(name ?? this.#autoName(t))
    let fns: (AnyFn | CpuTask)[]
    let keys: (string | number)[]
    let shape: 'tuple' | 'object'
    if (Array.isArray(branches)) {
      fns = branches
      keys = branches.map((_, i) => i)
      shape = 'tuple'
    } else if (typeof branches === 'object' && branches !== null) {
      keys = Object.keys(branches)
      fns = keys.map((k) => (branches as Record<string, AnyFn | CpuTask>)[k as string]!)
      shape = 'object'
    } else {
      throw new PlanError(this.id, where.step, `Step "${where.step}" in workflow "${this.id}": expected the branches of .${t}() as an array or an object of functions, got ${typeof branches}.`)
    }
    if (this.#checks()) {
      if (fns.length === 0) {
        throw new PlanError(this.id, where.step, `Step "${where.step}" in workflow "${this.id}": .${t}() has no branches. Give it at least one function, or remove it.`)
      }
      // An index loop, not forEach: a hole in the array (`[f, , g]`) must fail here too.
      for (let i = 0; i < fns.length; i++) checkBody(where, `branch ${String(keys[i] ?? i)}`, fns[i])
    }
    const options = this.#checks() ? normalizeParallelOptions(where, rawOptions, t) : {}
    return this.#with({ t, name, branches: fns, keys, shape, options })
  }

  if(name: string, cond: AnyFn): WorkflowBuilder {
    this.#checkName('if', name)
    if (this.#checks()) checkFn(this.#where(name), 'the condition of .if()', cond)
    return this.#withOpen({ t: 'if', name, cond }, { name, hasElse: false, parent: this.#open })
  }

  elseIf(name: string, cond: AnyFn): WorkflowBuilder {
    this.#checkName('elseIf', name)
    const open = this.#requireOpen('elseIf')
    if (open.hasElse && this.#checks()) {
      throw new PlanError(this.id, name, `Workflow "${this.id}": .elseIf('${name}') comes after .else() of .if('${open.name}'). Move it before .else(), or close the branch with .endIf().`)
    }
    if (this.#checks()) checkFn(this.#where(name), 'the condition of .elseIf()', cond)
    return this.#with({ t: 'elseIf', name, cond })
  }

  else(): WorkflowBuilder {
    const open = this.#requireOpen('else')
    if (open.hasElse && this.#checks()) {
      throw new PlanError(this.id, open.name, `Workflow "${this.id}": .if('${open.name}') already has an .else(). Remove the second one, or close the first branch with .endIf().`)
    }
    return this.#withOpen({ t: 'else' }, { ...open, hasElse: true })
  }

  endIf(): WorkflowBuilder {
    const open = this.#requireOpen('endIf')
    return this.#withOpen({ t: 'endIf' }, open.parent)
  }

  #requireOpen(method: string): OpenIf {
    if (this.#open) return this.#open
    const after = this.#lastName()
    throw new PlanError(
      this.id,
      after,
      `Workflow "${this.id}": .${method}()${after === undefined ? ' at the start' : ` after "${after}"`} has no open .if(). Start the branch with .if('name', condition) first, or remove the .${method}().`,
    )
  }

  /** The name of the latest named op, to say where a misplaced call is. */
  #lastName(): string | undefined {
    for (let b: WorkflowBuilder | undefined = this; b?.op; b = b.prev) {
      if ('name' in b.op && b.op.name !== undefined) return b.op.name
    }
    return undefined
  }

  forEach(a: unknown, b: unknown, c?: unknown, d?: unknown): WorkflowBuilder {
    const named = typeof a === 'string'
    const name = named ? a : undefined
    if (named) this.#checkName('forEach', name)
    const items = (named ? b : a) as AnyFn
    const body = (named ? c : b) as AnyFn | CpuTask
    const rawOptions = (named ? d : c) as any
    const where = this.#where(name ?? this.#autoName('forEach'))
    if (this.#checks()) {
      checkFn(where, 'the items of .forEach() (ctx => array)', items)
      checkBody(where, 'the body of .forEach() ((item, flow) => flow.step(…))', body)
    }
    const options = this.#checks() ? normalizeForEachOptions(where, rawOptions) : { concurrency: 1 }
    return this.#with({ t: 'forEach', name, items, body, options })
  }

  onError(fn: AnyFn): WorkflowBuilder {
    if (this.#checks()) checkFn(this.#where('onError'), 'the handler of .onError()', fn)
    return this.#with({ t: 'onError', fn })
  }

  sleep(name: string, duration: unknown): WorkflowBuilder {
    this.#checkName('sleep', name)
    const durationMs = this.#checks() ? durationOption(this.#where(name), 'duration', duration) : 0
    return this.#with({ t: 'sleep', name, durationMs })
  }

  sleepUntil(name: string, until: unknown): WorkflowBuilder {
    this.#checkName('sleepUntil', name)
    if (typeof until === 'function') return this.#with({ t: 'sleep', name, until: until as AnyFn })
    const at = until instanceof Date ? until.getTime() : typeof until === 'string' ? Date.parse(until) : until
    if (this.#checks() && (typeof at !== 'number' || !Number.isFinite(at))) {
      throw new PlanError(this.id, name, `Step "${name}" in workflow "${this.id}": expected .sleepUntil() to get a Date, an ISO date string, a timestamp in ms or a function of ctx returning one, got ${String(until)}.`)
    }
    return this.#with({ t: 'sleep', name, untilMs: at as number })
  }

  waitForEvent(name: string, options: { event?: unknown; timeout?: unknown; match?: unknown } = {}): WorkflowBuilder {
    this.#checkName('waitForEvent', name)
    const where = this.#where(name)
    if (this.#checks()) {
      if (typeof options !== 'object' || options === null) {
        throw new PlanError(this.id, name, `Step "${name}" in workflow "${this.id}": expected .waitForEvent() options as { event?, timeout?, match? }, got ${String(options)}.`)
      }
      for (const key of Object.keys(options)) {
        if (!['event', 'timeout', 'match'].includes(key)) {
          throw new PlanError(this.id, name, `Step "${name}" in workflow "${this.id}": unknown option \`${key}\`. .waitForEvent() options are \`event\`, \`timeout\` and \`match\`.`)
        }
      }
      if (options.event !== undefined && (typeof options.event !== 'string' || options.event === '')) {
        throw new PlanError(this.id, name, `Step "${name}" in workflow "${this.id}": expected \`event\` as a non-empty string, got ${String(options.event)}.`)
      }
      if (options.match !== undefined) checkFn(where, '`match` (ctx => string)', options.match)
    }
    const op: Op = { t: 'waitForEvent', name, event: (options.event as string | undefined) ?? name }
    if (options.timeout !== undefined && this.#checks()) op.timeoutMs = timeoutOption(where, options.timeout)
    if (options.match !== undefined) op.match = options.match as AnyFn
    return this.#with(op)
  }

  /** True when an `.if()` is still open. */
  hasOpenIf(): string | undefined {
    return this.#open?.name
  }

  plan(): Plan {
    return compileWorkflow(this).plan
  }

  toMermaid(): string {
    return toMermaid(this.plan())
  }
}

/** Infers the payload type from a Standard Schema. */
type inferSchema<S> = S extends StandardSchemaV1<any, infer O> ? O : unknown

/**
 * Starts a workflow definition. Chain `.step()`, `.parallel()`, `.race()`, `.if()`,
 * `.forEach()`, `.onError()`, `.sleep()`; register it with an engine to run it.
 * @example
 * const hello = workflow('hello', { input: z.object({ name: z.string() }) })
 *   .step('greet', (ctx) => `Hello, ${ctx.payload.name}!`)
 */
export function workflow<const S extends StandardSchemaV1>(
  id: string,
  // `input` is left out of WorkflowOptions here: intersecting `StandardSchemaV1<unknown, Out>` with `S`
  // makes TypeScript compare the two structurally, which is "excessively deep" for arktype types.
  options: Omit<WorkflowOptions<inferSchema<S>>, 'input'> & { input: S },
): Workflow<inferSchema<S>>
export function workflow<TInput = unknown>(id: string, options?: WorkflowOptions<TInput>): Workflow<TInput>
export function workflow(id: string, options: WorkflowOptions<any> = {}): Workflow<any> {
  if (typeof id !== 'string' || id.trim() === '') {
    throw new PlanError(String(id), undefined, `expected a workflow id as a non-empty string, got ${typeof id === 'string' ? `'${id}'` : typeof id}: workflow('process-order').`)
  }
  checkWorkflowOptions(id, options)
  return new WorkflowBuilder(id, options, 'root') as unknown as Workflow<any>
}

function checkWorkflowOptions(id: string, options: WorkflowOptions<any>): void {
  const where: Where = { workflowId: id }
  const bad = (message: string): never => {
    throw new PlanError(id, undefined, `Workflow "${id}": ${message}`)
  }
  if (typeof options !== 'object' || options === null) bad(`expected options to be an object, got ${typeof options}.`)
  for (const key of Object.keys(options)) {
    if (!['input', 'concurrency', 'timeout', 'onError', 'description', 'triggers'].includes(key)) {
      bad(`unknown option \`${key}\`. Workflow options are \`input\`, \`concurrency\`, \`timeout\`, \`onError\`, \`description\` and \`triggers\`.`)
    }
  }
  if (options.input !== undefined && typeof (options.input as any)?.['~standard']?.validate !== 'function') {
    bad('expected `input` to be a Standard Schema (zod 4, valibot, arktype, …), got an object without `~standard.validate`.')
  }
  if (options.concurrency !== undefined) positiveInt(where, 'concurrency', options.concurrency, true)
  if (options.timeout !== undefined) timeoutOption(where, options.timeout)
  if (options.onError !== undefined) checkFn(where, '`onError`', options.onError)
  if (options.triggers !== undefined) {
    if (!Array.isArray(options.triggers) || options.triggers.some((t) => typeof t !== 'object' || t === null || typeof t.kind !== 'string')) {
      bad('expected `triggers` as an array of triggers such as webhook({ path }) or schedule(\'*/5 * * * *\') from @stepline/server.')
    }
  }
}

/** True when `value` is a workflow built by `workflow()`. */
export function isWorkflow(value: unknown): value is WorkflowBuilder {
  return value instanceof WorkflowBuilder
}

import type { Plan } from '../plan/types'
import type { Duration } from '../duration'
import type { CpuTask } from '../executors/cpu'
import type { ForEachOptions, ParallelOptions, RaceOptions, StepOptions } from './options'

/** Status of a step in `ctx.steps` and in the journal. */
export type StepStatus = 'running' | 'completed' | 'failed' | 'skipped' | 'cancelled'

/** What `ctx.steps.<name>` holds for a step that ran before. */
export interface StepInfo<TOut = unknown> {
  readonly output: TOut
  readonly status: StepStatus
  readonly attempts: number
  readonly durationMs: number
  /** The error the step failed with; set too when `.onError` recovered it. */
  readonly error?: Error | undefined
}

export type AnySteps = Record<string, StepInfo<unknown>>

/** Identity of the run a step belongs to. */
export interface RunInfo {
  readonly id: string
  readonly workflowId: string
  /** 1 for a fresh run; grows each time the run is resumed after a crash. */
  readonly attempt: number
}

/** `ctx.log`: structured, tagged with run and step; emitted as `log` events. */
export interface Logger {
  debug(message: string, data?: unknown): void
  info(message: string, data?: unknown): void
  warn(message: string, data?: unknown): void
  error(message: string, data?: unknown): void
}

/** Marks a type parameter no call has set (an interface, so declaration files can name it). */
export interface Unset {
  readonly __stepline_unset__: true
}

type IsAny<T> = 0 extends 1 & T ? true : false

/** The context every step, condition and handler receives. */
export interface Ctx<TInput = unknown, TSteps = AnySteps, TLast = unknown, TItem = Unset> {
  /** The validated input of the run. */
  readonly payload: TInput
  /** Output of the previous node; the payload for the first node. */
  readonly last: TLast
  /** Every earlier step by name: output, status, attempts, durationMs. */
  readonly steps: TSteps
  readonly run: RunInfo
  /** Aborts on the step's timeout, on cancel, and when a sibling `parallel` branch fails or a `race` is won. */
  readonly signal: AbortSignal
  readonly log: Logger
  /** Inside a `forEach` body: the current item. */
  readonly item: IsAny<TItem> extends true ? any : [TItem] extends [Unset] ? undefined : TItem
  /** Inside a `forEach` body: the current item's index in the input. */
  readonly index: IsAny<TItem> extends true ? number | undefined : [TItem] extends [Unset] ? undefined : number
  /** 1-based attempt of the step now running. */
  readonly attempt: number
}

/** The context of an `.onError` handler. */
export interface ErrorCtx<TInput = unknown, TSteps = AnySteps, TLast = unknown, TItem = Unset>
  extends Ctx<TInput, TSteps, TLast, TItem> {
  readonly error: Error
}

/** A readable type error shown in the parameter position of a misused builder call. */
export interface TypeError<TMessage extends string> {
  readonly __stepline_type_error__: TMessage
}

export type Simplify<T> = { [K in keyof T]: T[K] } & {}

type IsOpen<TOpen extends AnyFrame[]> = TOpen extends [] ? false : true

export type AddStep<TSteps, $Name extends string, $Out, TOpen extends AnyFrame[]> = Simplify<
  Omit<TSteps, $Name> & { [K in $Name]: StepInfo<IsOpen<TOpen> extends true ? $Out | undefined : $Out> }
>

type ReplaceOutput<TSteps, $Name extends string, $Extra> = [$Name] extends [never]
  ? TSteps
  : $Name extends keyof TSteps
    ? Simplify<Omit<TSteps, $Name> & { [K in $Name]: StepInfo<outputOf<TSteps[K]> | $Extra> }>
    : TSteps

/** `ctx.steps` in an `.onError()` handler: the failed node has no entry until the handler returns. */
type WithoutStep<TSteps, $Name extends string> = [$Name] extends [never]
  ? TSteps
  : IsAny<TSteps> extends true // erased (`AnyWorkflow`): keep what it has
    ? TSteps
    : Simplify<Omit<TSteps, $Name>>

type outputOf<T> = T extends StepInfo<infer O> ? O : never

/**
 * One open `.if()` while building: the output before it, the union of closed branches, whether
 * `.else()` came, the `.if()`'s name (it names the branch node in `ctx.steps` after `.endIf()`)
 * and the `.if()`/`.elseIf()` names, reserved while the branch is open.
 */
export interface IfFrame<
  TBefore,
  TAcc,
  TElse extends boolean,
  TName extends string = never,
  TNames extends string = TName,
  TStepsBefore = unknown,
> {
  before: TBefore
  acc: TAcc
  hasElse: TElse
  name: TName
  names: TNames
  /** `ctx.steps` before the `.if()`: what an `.elseIf()` condition sees (no branch has run yet). */
  stepsBefore: TStepsBefore
}
export type AnyFrame = IfFrame<any, any, boolean, any, any, any>

/** `ctx.last` after `.endIf()`: the branches' outputs, plus the output before `.if()` without `.else()`. */
type EndIfOutput<F extends AnyFrame, TLast> = F['acc'] | TLast | (F['hasElse'] extends true ? never : F['before'])

type NameCheck<$Name extends string, TSteps, TOpen extends AnyFrame[], TNames extends string> = string extends keyof TSteps
  ? unknown // erased (`AnyWorkflow`) or index-signature steps: names cannot be checked
  : $Name extends keyof TSteps | TOpen[number]['names'] | TNames
  ? TypeError<`the name "${$Name}" is already used in this workflow; pick another`>
  : unknown

/** The names of a named `parallel`'s or `race`'s branches: `fetch[0]`, `quote[backup]`. */
type BranchNames<$Name extends string, $B> = `${$Name}[${$B extends readonly unknown[]
  ? Exclude<keyof $B, keyof unknown[]> & string // tuple indices; none for an array of unknown length
  : keyof $B & (string | number)}]`

/**
 * The names a `forEach` body took that `ctx.steps` after it does not show: the body's own steps
 * and what it reserved. `$BodySteps` is `Unset` when the body is a `cpu()` task: its one step is
 * named `<forEach>:task` (none for an unnamed forEach, `$Name` never: its generated name is
 * numbered, and the compiler checks it).
 */
type BodyNames<$Name extends string, $BodySteps, $BodyNames extends string, TSteps> =
  IsAny<$BodySteps> extends true
    ? never // an erased body: nothing to check against
    : [$BodySteps] extends [Unset]
      ? `${$Name}:task`
      : Exclude<keyof $BodySteps & string, keyof TSteps> | (string extends $BodyNames ? never : $BodyNames)

type MaybePromise<T> = T | PromiseLike<T>

export type BranchFnOf<C> = ((ctx: C) => unknown) | CpuTask<unknown>
export type BranchesOf<C> = readonly BranchFnOf<C>[] | { readonly [key: string]: BranchFnOf<C> }

/** What one branch gives: a function's awaited return, or a cpu task's declared output. */
type BranchOutput<F> = F extends CpuTask<infer O> ? O : F extends (...a: any[]) => infer R ? Awaited<R> : never

export type ParallelOutput<$B> = { -readonly [K in keyof $B]: BranchOutput<$B[K]> }

export type RaceOutput<$B> = $B extends readonly unknown[]
  ? { [K in keyof $B]: BranchOutput<$B[K]> }[number]
  : { [K in keyof $B]: BranchOutput<$B[K]> }[keyof $B]

/** The workflow type with its type parameters erased. */
export type AnyWorkflow = Workflow<any, any, any, any, any, any, any, any>

/**
 * The fluent, immutable workflow builder. Each call returns a new builder; the chain's
 * type parameters carry the payload type, every named step's output and the last output.
 */
export interface Workflow<
  TInput = unknown,
  TSteps = {},
  TLast = TInput,
  TOpen extends AnyFrame[] = [],
  TItem = Unset,
  /** Name of the node `.onError()` would attach to (`never` when it has no name in `ctx.steps`). */
  TPrev extends string = never,
  /** `ctx.last` as that node received it: what an `.onError()` handler sees as `ctx.last`. */
  TPrevIn = unknown,
  /**
   * Names taken that `ctx.steps` does not show, so that reusing one is a type error too: branch
   * names (`fetch[0]`), `.elseIf()` names after `.endIf()`, the steps of `forEach` bodies, and
   * inside a body the names of its `forEach` and of the `.if()`s around it.
   */
  TNames extends string = never,
> {
  readonly id: string
  /** @internal type-level only: the run's output type. */
  readonly __output?: TLast
  /** @internal type-level only: the payload type. */
  readonly __input?: TInput

  /**
   * Adds a step. Its return value (awaited) becomes `ctx.last` of the next node and
   * `ctx.steps.<name>.output`.
   * @example
   * workflow('w').step('double', (ctx) => ctx.payload.n * 2, { retry: { attempts: 3 }, timeout: '2s' })
   */
  step<const $Name extends string, $Out>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    fn: (ctx: Ctx<TInput, TSteps, TLast, TItem>) => $Out,
    options?: StepOptions<Ctx<TInput, TSteps, TLast, TItem>>,
  ): Workflow<TInput, AddStep<TSteps, $Name, Awaited<$Out>, TOpen>, Awaited<$Out>, TOpen, TItem, $Name, TLast, TNames>
  /**
   * Adds a step that runs in the engine's worker pool: a `cpu()` task (a module and an export).
   * @example
   * .step('score', cpu<number>(new URL('./score.task.js', import.meta.url)))
   */
  step<const $Name extends string, $Out>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    task: CpuTask<$Out>,
    options?: StepOptions<Ctx<TInput, TSteps, TLast, TItem>>,
  ): Workflow<TInput, AddStep<TSteps, $Name, $Out, TOpen>, $Out, TOpen, TItem, $Name, TLast, TNames>

  /**
   * Runs every branch at once (bounded by `maxConcurrency`); all must succeed. An array gives
   * a tuple, an object of named branches an object. The first failure aborts the others.
   * @example
   * .parallel('fetch', [(ctx) => users.get(ctx.payload.id), (ctx) => orders.get(ctx.payload.id)])
   */
  parallel<const $B extends BranchesOf<Ctx<TInput, TSteps, TLast, TItem>>>(
    branches: $B,
    options?: ParallelOptions,
  ): Workflow<TInput, TSteps, ParallelOutput<$B>, TOpen, TItem, never, TLast, TNames>
  parallel<const $Name extends string, const $B extends BranchesOf<Ctx<TInput, TSteps, TLast, TItem>>>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    branches: $B,
    options?: ParallelOptions,
  ): Workflow<TInput, AddStep<TSteps, $Name, ParallelOutput<$B>, TOpen>, ParallelOutput<$B>, TOpen, TItem, $Name, TLast, TNames | BranchNames<$Name, $B>>

  /**
   * Starts every branch; the first to succeed wins and the rest are aborted. If all fail the
   * node fails with a `RaceError` (an `AggregateError`).
   * @example
   * .race('quote', [(ctx) => primary.quote(ctx.last), (ctx) => backup.quote(ctx.last)])
   */
  race<const $B extends BranchesOf<Ctx<TInput, TSteps, TLast, TItem>>>(
    branches: $B,
    options?: RaceOptions,
  ): Workflow<TInput, TSteps, RaceOutput<$B>, TOpen, TItem, never, TLast, TNames>
  race<const $Name extends string, const $B extends BranchesOf<Ctx<TInput, TSteps, TLast, TItem>>>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    branches: $B,
    options?: RaceOptions,
  ): Workflow<TInput, AddStep<TSteps, $Name, RaceOutput<$B>, TOpen>, RaceOutput<$B>, TOpen, TItem, $Name, TLast, TNames | BranchNames<$Name, $B>>

  /**
   * Opens a conditional: the nodes up to the next `.elseIf()`, `.else()` or `.endIf()` run
   * only when `condition` is truthy.
   * @example
   * .if('large', (ctx) => ctx.last.total > 1000).step('review', review).endIf()
   */
  if<const $Name extends string>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    condition: (ctx: Ctx<TInput, TSteps, TLast, TItem>) => unknown,
  ): Workflow<TInput, TSteps, TLast, [IfFrame<TLast, never, false, $Name, $Name, TSteps>, ...TOpen], TItem, never, TLast, TNames>

  /**
   * Another condition, tried when the ones before were false.
   * @example
   * .if('large', isLarge).step('review', review).elseIf('medium', isMedium).step('light', light).endIf()
   */
  elseIf<const $Name extends string>(
    name: TOpen extends [infer F extends AnyFrame, ...any[]]
      ? F['hasElse'] extends true
        ? TypeError<'.elseIf() cannot follow .else(); close it with .endIf() first'>
        : $Name & NameCheck<$Name, TSteps, TOpen, TNames>
      : TypeError<'.elseIf() needs an open .if()'>,
    condition: TOpen extends [infer F extends AnyFrame, ...any[]]
      ? (ctx: Ctx<TInput, F['stepsBefore'], F['before'], TItem>) => unknown
      : never,
  ): TOpen extends [infer F extends AnyFrame, ...infer R extends AnyFrame[]]
    ? Workflow<TInput, TSteps, F['before'], [IfFrame<F['before'], F['acc'] | TLast, false, F['name'], F['names'] | $Name, F['stepsBefore']>, ...R], TItem, never, F['before'], TNames>
    : never

  /**
   * The branch taken when no condition of the open `.if()` was true.
   * @example
   * .if('large', isLarge).step('review', review).else().step('auto', approve).endIf()
   */
  else(
    // Misuse is reported on `this`, so the message shows in the error rather than "Expected 1 arguments".
    this: TOpen extends [infer F extends AnyFrame, ...any[]]
      ? F['hasElse'] extends true
        ? TypeError<'this .if() already has an .else(); remove the second one or close the first with .endIf()'>
        : unknown
      : TypeError<'.else() needs an open .if(); start the branch with .if(name, condition)'>,
  ): TOpen extends [infer F extends AnyFrame, ...infer R extends AnyFrame[]]
    ? Workflow<TInput, TSteps, F['before'], [IfFrame<F['before'], F['acc'] | TLast, true, F['name'], F['names'], F['stepsBefore']>, ...R], TItem, never, F['before'], TNames>
    : never

  /**
   * Closes the open `.if()`. `ctx.last` becomes the taken branch's output, or the output
   * before the `.if()` when no branch was taken and there is no `.else()`.
   * @example
   * .if('large', isLarge).step('review', review).endIf().step('ship', ship)
   */
  endIf(
    this: TOpen extends [] ? TypeError<'.endIf() needs an open .if(); remove it or add .if(name, condition) before'> : unknown,
  ): TOpen extends [infer F extends AnyFrame, ...infer R extends AnyFrame[]]
    ? Workflow<
        TInput,
        // The branch node is journaled under the `.if()`'s name, so `ctx.steps` has it at run time.
        AddStep<TSteps, F['name'], EndIfOutput<F, TLast>, R>,
        EndIfOutput<F, TLast>,
        R,
        TItem,
        F['name'],
        F['before'],
        // `.elseIf()` names stay taken: each labels a case of the branch node.
        TNames | F['names']
      >
    : never

  /**
   * Runs `body` once per item, `concurrency` at a time; the output is the array of each
   * body's last output, in input order. The body's steps are journaled per item.
   * @example
   * .forEach('reserve', (ctx) => ctx.last.items, (item, flow) => flow.step('one', () => reserve(item)), { concurrency: 8 })
   */
  forEach<$Item, $BodyLast, $BodySteps = Unset, $BodyNames extends string = never>(
    items: (ctx: Ctx<TInput, TSteps, TLast, TItem>) => MaybePromise<readonly $Item[]>,
    body: ((
      item: $Item,
      flow: Workflow<TInput, TSteps, $Item, [], $Item, never, $Item, TNames | TOpen[number]['names']>,
    ) => Workflow<any, $BodySteps, $BodyLast, [], any, any, any, $BodyNames>) | CpuTask<$BodyLast>,
    options?: ForEachOptions,
  ): Workflow<TInput, TSteps, $BodyLast[], TOpen, TItem, never, TLast, TNames | BodyNames<never, $BodySteps, $BodyNames, TSteps>>
  forEach<const $Name extends string, $Item, $BodyLast, $BodySteps = Unset, $BodyNames extends string = never>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    items: (ctx: Ctx<TInput, TSteps, TLast, TItem>) => MaybePromise<readonly $Item[]>,
    body: ((
      item: $Item,
      flow: Workflow<TInput, TSteps, $Item, [], $Item, never, $Item, TNames | TOpen[number]['names'] | $Name>,
    ) => Workflow<any, $BodySteps, $BodyLast, [], any, any, any, $BodyNames>) | CpuTask<$BodyLast>,
    options?: ForEachOptions,
  ): Workflow<TInput, AddStep<TSteps, $Name, $BodyLast[], TOpen>, $BodyLast[], TOpen, TItem, $Name, TLast, TNames | BodyNames<$Name, $BodySteps, $BodyNames, TSteps>>

  /**
   * Recovers the node before it: when that node fails (after its retries), the handler's
   * return value becomes its output and the run goes on. Throwing from it fails the run.
   * @example
   * .race('quote', [primary, backup]).onError((ctx) => ({ fallback: true, reason: ctx.error.message }))
   */
  onError<$R>(
    handler: (ctx: ErrorCtx<TInput, WithoutStep<TSteps, TPrev>, TPrevIn, TItem>) => $R,
  ): Workflow<TInput, ReplaceOutput<TSteps, TPrev, Awaited<$R>>, TLast | Awaited<$R>, TOpen, TItem, TPrev, TPrevIn, TNames>

  /**
   * Waits for `duration`; `ctx.last` passes through unchanged.
   * @example
   * .sleep('cool-down', '10m')
   */
  sleep<const $Name extends string>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    duration: Duration,
  ): Workflow<TInput, AddStep<TSteps, $Name, TLast, TOpen>, TLast, TOpen, TItem, $Name, TLast, TNames>

  /**
   * Waits until a point in time (a Date, an ISO string, a timestamp, or a function of ctx giving
   * one); `ctx.last` passes through. Long waits park the run in the store.
   * @example
   * .sleepUntil('till-monday', (ctx) => nextMonday(ctx.payload.tz))
   */
  sleepUntil<const $Name extends string>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    until: Date | number | string | ((ctx: Ctx<TInput, TSteps, TLast, TItem>) => Date | number | string),
  ): Workflow<TInput, AddStep<TSteps, $Name, TLast, TOpen>, TLast, TOpen, TItem, $Name, TLast, TNames>

  /**
   * Parks the run until `engine.send(runId | { match }, event, data)` delivers the event; the
   * event's data becomes the output. With `timeout`, the node fails with `WAIT_TIMEOUT` when
   * no event came in time (recover it with `.onError()`).
   * @example
   * .waitForEvent<'approval', { approved: boolean }>('approval', { timeout: '1d', match: (ctx) => ctx.payload.orderId })
   */
  waitForEvent<const $Name extends string, $Data = unknown>(
    name: $Name & NameCheck<$Name, TSteps, TOpen, TNames>,
    options?: {
      /** The event name to wait for; default: the node's name. */
      event?: string
      timeout?: Duration
      /** A key `engine.send({ match }, …)` finds this run by. */
      match?: (ctx: Ctx<TInput, TSteps, TLast, TItem>) => string
    },
  ): Workflow<TInput, AddStep<TSteps, $Name, $Data, TOpen>, $Data, TOpen, TItem, $Name, TLast, TNames>

  /**
   * The compiled plain-data plan. Throws a `PlanError` naming the step and the fix when the
   * definition is invalid (e.g. an `.if()` without `.endIf()`).
   * @example
   * JSON.stringify(workflow('w').step('a', fn).plan())
   */
  plan(): Plan

  /**
   * The plan as a Mermaid flowchart.
   * @example
   * console.log(order.toMermaid())
   */
  toMermaid(): string
}

/** The payload type a workflow accepts. */
export type inferInput<W> = W extends Workflow<infer I, any, any, any, any, any, any, any> ? I : never
/** The output type of a workflow's run (its last node's output). */
export type inferOutput<W> = W extends { readonly __output?: infer O } ? O : never
/** The `ctx.steps` type at the end of a workflow. */
export type inferSteps<W> = W extends Workflow<any, infer S, any, any, any, any, any, any> ? S : never

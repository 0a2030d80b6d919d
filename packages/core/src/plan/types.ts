/**
 * The plan: a JSON-serialisable tree of nodes that the runtime walks. Functions never appear
 * here; a node refers to them by index (`fn`, `when`, `items`, …) into the side table of its
 * scope (the workflow, or one item of a `forEach` body).
 */
export type PlanNode =
  | StepNode
  | ParallelNode
  | RaceNode
  | BranchNode
  | ForEachNode
  | SleepNode
  | WaitForEventNode

/** The `kind` tag of a plan node. */
export type PlanNodeKind = PlanNode['kind']

interface NodeBase {
  /** Stable across compiles of the same definition: the node's path in the tree. */
  id: string
  /** Unique within the workflow; generated (`parallel#1`) when the user gave none. */
  name: string
  /** Side-table index of the node-level `.onError` handler, when there is one. */
  onError?: number
}

/** A step's retry policy with durations in milliseconds. */
export interface RetryPlan {
  attempts: number
  backoff: 'fixed' | 'exponential'
  delayMs: number
  maxDelayMs?: number
  /** 0 = none; 1 = full jitter; between = that fraction of the delay is randomised. */
  jitter: number
  retryIf?: number
}

/** A CPU step's task: a module (file URL) and the export that handles it. */
export interface CpuRef {
  module: string
  export: string
  /** Earlier steps whose outputs the worker receives. */
  steps?: string[]
  /** Whether the worker receives the run's payload. */
  payload?: boolean
}

/** A `.step()`: its function (or `cpu` task) by side-table index, with retry, timeout and cache settings. */
export interface StepNode extends NodeBase {
  kind: 'step'
  fn: number
  retry?: RetryPlan
  timeoutMs?: number
  cache?: { key: number; ttlMs?: number }
  cpu?: CpuRef
}

/** One branch of a `parallel` or `race`: a function (or `cpu` task) by side-table index. */
export interface BranchFn {
  id: string
  name: string
  /** Set when the branch is a `cpu()` task. */
  cpu?: CpuRef
  /** Tuple index or object key the branch's output lands at. */
  key: string | number
  fn: number
}

/** A `.parallel()`: branches that all run, bounded by `maxConcurrency`. */
export interface ParallelNode extends NodeBase {
  kind: 'parallel'
  shape: 'tuple' | 'object'
  branches: BranchFn[]
  maxConcurrency?: number
  timeoutMs?: number
}

/** A `.race()`: branches of which the first to succeed wins. */
export interface RaceNode extends NodeBase {
  kind: 'race'
  shape: 'tuple' | 'object'
  branches: BranchFn[]
  timeoutMs?: number
}

/** One `.if()`/`.elseIf()` case: its condition and nodes. */
export interface BranchCase {
  id: string
  name: string
  /** Side-table index of the condition. */
  when: number
  nodes: PlanNode[]
}

/** An `.if()` … `.endIf()`: cases tried in order, and the `.else()` nodes. */
export interface BranchNode extends NodeBase {
  kind: 'branch'
  cases: BranchCase[]
  /** The `.else()` nodes; absent when the chain had no `.else()`. */
  otherwise?: { id: string; nodes: PlanNode[] }
}

/** A `.forEach()`: the items function, and the body run per item. */
export interface ForEachNode extends NodeBase {
  kind: 'forEach'
  items: number
  /** Side-table index of the `(item, flow) => …` body callback, re-invoked per item. */
  bodyFn: number
  body: PlanNode[]
  /** How many side-table entries one item's body has. */
  bodySlots: number
  concurrency: number
  chunkSize?: number
  /** Set when the body is a `cpu()` task: `body` is then that one step. */
  cpu?: CpuRef
}

/** `sleep` waits `durationMs`; `sleepUntil` waits until `untilMs`, or the time its side-table function gives. */
export interface SleepNode extends NodeBase {
  kind: 'sleep'
  durationMs?: number
  untilMs?: number
  until?: number
}

/** A `.waitForEvent()`: the event it waits for, its timeout and match key. */
export interface WaitForEventNode extends NodeBase {
  kind: 'waitForEvent'
  /** The event name `engine.send` must use. */
  event: string
  timeoutMs?: number
  /** Side-table index of the function giving the match key `engine.send({ match })` can use. */
  match?: number
}

/** Workflow-level settings kept in the plan. */
export interface PlanOptions {
  concurrency?: number
  timeoutMs?: number
  /** Side-table index of the workflow-level `onError`. */
  onError?: number
  hasInputSchema: boolean
}

/** The compiled, plain-data form of a workflow. `JSON.parse(JSON.stringify(plan))` equals it. */
export interface Plan {
  workflowId: string
  /** Content hash of everything above except the hash itself: the plan's version. */
  hash: string
  options: PlanOptions
  nodes: PlanNode[]
}

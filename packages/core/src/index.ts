export { workflow, isWorkflow } from './builder/workflow'
export type {
  Workflow,
  AnyWorkflow,
  Ctx,
  ErrorCtx,
  StepInfo,
  StepStatus,
  RunInfo,
  Logger,
  TypeError,
  inferInput,
  inferOutput,
  inferSteps,
} from './builder/types'
export type { StepOptions, RetryOptions, ParallelOptions, RaceOptions, ForEachOptions, WorkflowOptions, TriggerSpec } from './builder/options'
export type { Duration } from './duration'

export type { Plan, PlanNode, PlanNodeKind, StepNode, ParallelNode, RaceNode, BranchNode, ForEachNode, SleepNode, WaitForEventNode, BranchFn, BranchCase, RetryPlan, CpuRef, PlanOptions } from './plan/types'
export { toMermaid } from './plan/mermaid'

export { createEngine, Engine } from './engine/engine'
export { newRunId } from './engine/run-id'
export type { EngineOptions, StartOptions, EventTarget } from './engine/engine'
export type { RunHandle, RunOutcome } from './engine/handle'
export type { RunSummary } from './runtime/summary'
export { systemClock } from './runtime/clock'
export { stepKeyOf } from './runtime/context'
export type { Clock } from './runtime/clock'

export type { EngineEvents, EngineEventName, EngineEventPayload, StepEvent, LogEvent } from './events'

export { memoryStore, MemoryStore } from './store/memory-store'
export type { MemoryStoreOptions } from './store/memory-store'
export type { Store, CreateRunOptions, RunRecord, RunStatus, StepRecord, StepKind, ListRunsQuery, MaybePromise, EventRecord } from './store/types'
export { FINISHED_STATUSES } from './store/types'

export { inlineExecutor } from './executors/inline'
export { defaultExecutor, DefaultExecutor } from './executors/default'
export { cpu, isCpuTask } from './executors/cpu'
export type { CpuTask, CpuOptions, CpuInput } from './executors/cpu'
export type { WorkerOptions, PoolStats } from './executors/pool'
export type { Executor } from './executors/types'

export {
  SteplineError,
  PlanError,
  ValidationError,
  StepError,
  StepTimeoutError,
  NonRetriableError,
  ParallelError,
  RaceError,
  CancelledError,
  serializeError,
  deserializeError,
  isSteplineError,
} from './errors'
export type { SteplineErrorCode, SerializedError, ValidationIssue } from './errors'

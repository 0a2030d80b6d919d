import { toMs } from '../duration'
import { PlanError } from '../errors'
import type { RetryPlan } from '../plan/types'
import type { ForEachOptions, ParallelOptions, StepOptions } from './options'
import { isCpuTask, type CpuTask } from '../executors/cpu'

export type AnyFn = (...args: any[]) => any

/**
 * One builder call, recorded as the user made it. A builder is a linked list of ops; the
 * compiler turns the flat list into the plan tree.
 */
export type Op =
  | { t: 'step'; name: string; fn: AnyFn | CpuTask; raw: StepOptions | undefined; options: NormalizedStepOptions | undefined }
  | {
      t: 'parallel' | 'race'
      name: string | undefined
      branches: (AnyFn | CpuTask)[]
      keys: (string | number)[]
      shape: 'tuple' | 'object'
      options: { maxConcurrency?: number; timeoutMs?: number }
    }
  | { t: 'if' | 'elseIf'; name: string; cond: AnyFn }
  | { t: 'else' }
  | { t: 'endIf' }
  | { t: 'forEach'; name: string | undefined; items: AnyFn; body: AnyFn | CpuTask; options: { concurrency: number; chunkSize?: number } }
  | { t: 'onError'; fn: AnyFn }
  | { t: 'sleep'; name: string; durationMs?: number; untilMs?: number; until?: AnyFn }
  | { t: 'waitForEvent'; name: string; event: string; timeoutMs?: number; match?: AnyFn }

export interface NormalizedStepOptions {
  retry?: Omit<RetryPlan, 'retryIf'>
  timeoutMs?: number
  cache?: { ttlMs?: number }
}

/**
 * The functions an op contributes to its scope's side table, in a fixed layout per kind.
 * The compiler and the per-item `forEach` body both use this, so their indices agree.
 */
export function opFns(op: Op): (AnyFn | undefined)[] {
  switch (op.t) {
    case 'step': {
      const retry = op.raw?.retry
      return [fnOf(op.fn), op.raw?.cache?.key, typeof retry === 'object' ? retry.retryIf : undefined]
    }
    case 'parallel':
    case 'race':
      return op.branches.map(fnOf)
    case 'if':
    case 'elseIf':
      return [op.cond]
    case 'forEach':
      return [op.items, fnOf(op.body)]
    case 'onError':
      return [op.fn]
    case 'sleep':
      return [op.until]
    case 'waitForEvent':
      return [op.match]
    default:
      return []
  }
}

/** A cpu task has no function in the side table: the plan holds its module and export. */
function fnOf(f: AnyFn | CpuTask): AnyFn | undefined {
  return isCpuTask(f) ? undefined : f
}

/** Where an option error happened, for the message. No `step`: the workflow's own options. */
export interface Where {
  workflowId: string
  step?: string | undefined
}

function fail(where: Where, message: string): never {
  const place = where.step === undefined ? `Workflow "${where.workflowId}"` : `Step "${where.step}" in workflow "${where.workflowId}"`
  throw new PlanError(where.workflowId, where.step, `${place}: ${message}`)
}

/** Rejects option keys the node does not have, so a typo fails at build time instead of being ignored. */
function checkKeys(where: Where, raw: unknown, allowed: readonly string[], what: string): void {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) fail(where, `expected ${what} options to be an object, got ${show(raw)}.`)
  for (const key of Object.keys(raw)) {
    if (!allowed.includes(key)) {
      fail(where, `unknown option \`${key}\`. ${what} options are ${allowed.map((k) => `\`${k}\``).join(', ')}.`)
    }
  }
}

function show(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`
  // JSON.stringify writes NaN and ±Infinity as null, which would misreport what came.
  if (typeof v === 'number') return String(v)
  if (typeof v === 'function') return 'a function'
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}

export function durationOption(where: Where, option: string, value: unknown): number {
  const n = toMs(value)
  if (n === undefined) {
    fail(where, `expected \`${option}\` as a duration like '30s', '5m' or a number of milliseconds, got ${show(value)}.`)
  }
  return n
}

/**
 * A `timeout`: a duration above 0. A timeout of 0 would fail every attempt (or run, or wait) at
 * once, and a negative number is no time limit either; leaving the option out is how to say "none".
 */
export function timeoutOption(where: Where, value: unknown, option = 'timeout'): number {
  if (typeof value === 'number' && Number.isFinite(value) && value <= 0) fail(where, notPositive(option, value))
  const n = durationOption(where, option, value)
  if (n === 0) fail(where, notPositive(option, value))
  return n
}

function notPositive(option: string, value: unknown): string {
  return `expected \`${option}\` to be more than 0, got ${show(value)}. Leave \`${option}\` out for no time limit.`
}

/**
 * A whole number ≥ 1. `Infinity` only where `unlimited` says it means "no limit" (the caller then
 * leaves the option out of the plan: JSON cannot hold Infinity).
 */
export function positiveInt(where: Where, option: string, value: unknown, unlimited = false): number {
  if (unlimited && value === Infinity) return Infinity
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    fail(where, `expected \`${option}\` as a whole number ≥ 1, got ${show(value)}.`)
  }
  return value
}

/** A function, or a `cpu()` task where `cpu` is allowed. */
export function checkBody(where: Where, what: string, value: unknown): asserts value is AnyFn | CpuTask {
  if (isCpuTask(value) || typeof value === 'function') return
  fail(where, `expected ${what} to be a function or a cpu() task, got ${show(value)}.`)
}

export function checkFn(where: Where, what: string, value: unknown): asserts value is AnyFn {
  if (typeof value !== 'function') fail(where, `expected ${what} to be a function, got ${show(value)}.`)
}

export function normalizeStepOptions(where: Where, raw: StepOptions | undefined): NormalizedStepOptions {
  const out: NormalizedStepOptions = {}
  if (raw === undefined) return out
  if (typeof raw !== 'object' || raw === null) fail(where, `expected options to be an object, got ${show(raw)}.`)
  for (const key of Object.keys(raw)) {
    if (key !== 'retry' && key !== 'timeout' && key !== 'cache') {
      fail(where, `unknown option \`${key}\`. Step options are \`retry\`, \`timeout\` and \`cache\`.`)
    }
  }
  if (raw.timeout !== undefined) out.timeoutMs = timeoutOption(where, raw.timeout)
  if (raw.retry !== undefined) out.retry = normalizeRetry(where, raw.retry)
  if (raw.cache !== undefined) {
    if (typeof raw.cache !== 'object' || raw.cache === null) fail(where, `expected \`cache\` as { key: (ctx) => string, ttl? }, got ${show(raw.cache)}.`)
    checkKeys(where, raw.cache, ['key', 'ttl'], '`cache`')
    checkFn(where, '`cache.key`', raw.cache.key)
    out.cache = raw.cache.ttl === undefined ? {} : { ttlMs: durationOption(where, 'cache.ttl', raw.cache.ttl) }
  }
  return out
}

function normalizeRetry(where: Where, raw: NonNullable<StepOptions['retry']>): Omit<RetryPlan, 'retryIf'> {
  const r = typeof raw === 'number' ? { attempts: raw } : raw
  if (typeof r !== 'object' || r === null) fail(where, `expected \`retry\` as { attempts, backoff?, delay? } or a number of attempts, got ${show(raw)}.`)
  checkKeys(where, r, ['attempts', 'backoff', 'delay', 'maxDelay', 'jitter', 'retryIf'], '`retry`')
  const attempts = positiveInt(where, 'retry.attempts', r.attempts)
  const backoff = r.backoff ?? 'exponential'
  if (backoff !== 'fixed' && backoff !== 'exponential') {
    fail(where, `expected \`retry.backoff\` to be 'fixed' or 'exponential', got ${show(backoff)}.`)
  }
  const plan: Omit<RetryPlan, 'retryIf'> = {
    attempts,
    backoff,
    delayMs: r.delay === undefined ? 100 : durationOption(where, 'retry.delay', r.delay),
    jitter: jitterOf(where, r.jitter),
  }
  if (r.maxDelay !== undefined) plan.maxDelayMs = durationOption(where, 'retry.maxDelay', r.maxDelay)
  if (r.retryIf !== undefined) checkFn(where, '`retry.retryIf`', r.retryIf)
  return plan
}

function jitterOf(where: Where, j: unknown): number {
  if (j === undefined || j === false) return 0
  if (j === true) return 1
  if (typeof j === 'number' && j >= 0 && j <= 1) return j
  return fail(where, `expected \`retry.jitter\` as true, false or a fraction between 0 and 1, got ${show(j)}.`)
}

export function normalizeParallelOptions(
  where: Where,
  raw: ParallelOptions | undefined,
  kind: 'parallel' | 'race' = 'parallel',
): { maxConcurrency?: number; timeoutMs?: number } {
  const out: { maxConcurrency?: number; timeoutMs?: number } = {}
  if (raw === undefined) return out
  if (kind === 'race' && typeof raw === 'object' && raw !== null && raw.maxConcurrency !== undefined) {
    fail(where, '.race() has no `maxConcurrency`; every branch starts at once. Remove the option, or use .parallel() to bound concurrency.')
  }
  checkKeys(where, raw, kind === 'race' ? ['timeout'] : ['maxConcurrency', 'timeout'], `.${kind}()`)
  if (raw.maxConcurrency !== undefined && positiveInt(where, 'maxConcurrency', raw.maxConcurrency, true) !== Infinity) {
    out.maxConcurrency = raw.maxConcurrency
  }
  if (raw.timeout !== undefined) out.timeoutMs = timeoutOption(where, raw.timeout)
  return out
}

export function normalizeForEachOptions(where: Where, raw: ForEachOptions | undefined): { concurrency: number; chunkSize?: number } {
  const out: { concurrency: number; chunkSize?: number } = { concurrency: 1 }
  if (raw === undefined) return out
  checkKeys(where, raw, ['concurrency', 'chunkSize'], '.forEach()')
  if (raw.concurrency !== undefined) out.concurrency = positiveInt(where, 'concurrency', raw.concurrency)
  if (raw.chunkSize !== undefined) out.chunkSize = positiveInt(where, 'chunkSize', raw.chunkSize)
  return out
}

import { NonRetriableError, type Ctx } from '@stepline/core'

const KIND = Symbol.for('stepline.testing.mock')

/** A mock that throws. */
export interface FailMock {
  readonly [KIND]: 'fail'
  readonly error: Error
}

/** A mock that returns a value as it is (also a function, which a bare mock would call). */
export interface ValueMock<T> {
  readonly [KIND]: 'value'
  readonly value: T
}

/** A mock that answers each call with the next entry; the last entry repeats. */
export interface SequenceMock<T> {
  readonly [KIND]: 'sequence'
  readonly entries: readonly MockEntry<T>[]
}

/** One answer: a value, a function of ctx, or `fail(…)`. */
export type MockEntry<T> = T | Promise<T> | ((ctx: Ctx<any, any, any, any>) => T | Promise<T>) | FailMock | ValueMock<T>

/**
 * What a step can be mocked with: a value, a function of ctx, `fail(error)`, `value(fn)` to
 * return a function as it is, or `sequence(...)` to answer each attempt differently.
 */
export type Mock<T = unknown> = MockEntry<T> | SequenceMock<T>

/** A mock for a name the workflow's type does not list (a forEach body step, a parallel branch). */
export type AnyMock =
  | FailMock
  | ValueMock<unknown>
  | SequenceMock<unknown>
  | ((ctx: Ctx<any, any, any, any>) => unknown)
  | string
  | number
  | boolean
  | bigint
  | null
  | undefined
  | object

/**
 * A mock (or a sequence entry) that throws `error` (an `Error`, or a message).
 * @example
 * mocks: { charge: fail('card declined') }
 */
export function fail(error: Error | string): FailMock {
  return { [KIND]: 'fail', error: typeof error === 'string' ? new Error(error) : error }
}

/**
 * Returns `value` as it is, even when it is a function.
 * @example
 * mocks: { makeHandler: value(() => 'I am the output') }
 */
export function value<T>(v: T): ValueMock<T> {
  return { [KIND]: 'value', value: v }
}

/**
 * Answers the 1st call with the 1st entry, the 2nd with the 2nd, …; the last entry repeats.
 * Drives retries: `sequence(fail('timeout'), fail('timeout'), { ok: true })` fails twice then succeeds.
 * @example
 * mocks: { flaky: sequence(fail('503'), fail('503'), 'ok') }
 */
export function sequence<T>(...entries: MockEntry<T>[]): SequenceMock<T> {
  if (entries.length === 0) throw new TypeError('sequence(): give at least one entry, e.g. sequence(fail("x"), 42).')
  const nested = entries.findIndex((e) => kindOf(e) === 'sequence')
  if (nested !== -1) {
    throw new TypeError(`sequence(): entry ${nested + 1} is itself a sequence(); list its entries in the outer sequence instead, e.g. sequence(fail("x"), fail("y"), 5).`)
  }
  return { [KIND]: 'sequence', entries }
}

function kindOf(m: unknown): 'fail' | 'value' | 'sequence' | undefined {
  return typeof m === 'object' && m !== null ? (m as { [KIND]?: 'fail' | 'value' | 'sequence' })[KIND] : undefined
}

/** The answers a mock can give: a sequence's entries, or the mock itself. */
export function entriesOf(mock: Mock): readonly MockEntry<unknown>[] {
  return kindOf(mock) === 'sequence' ? (mock as SequenceMock<unknown>).entries : [mock as MockEntry<unknown>]
}

/** Produces a mock's answer to its `call`-th call (0-based). */
export function answer(mock: Mock, call: number, ctx: unknown): unknown {
  if (kindOf(mock) === 'sequence') {
    const { entries } = mock as SequenceMock<unknown>
    return answerEntry(entries[Math.min(call, entries.length - 1)], ctx)
  }
  return answerEntry(mock as MockEntry<unknown>, ctx)
}

function answerEntry(entry: MockEntry<unknown>, ctx: unknown): unknown {
  switch (kindOf(entry)) {
    case 'fail':
      throw (entry as FailMock).error
    case 'value':
      return (entry as ValueMock<unknown>).value
  }
  return typeof entry === 'function' ? (entry as (c: unknown) => unknown)(ctx) : entry
}

/** Thrown for a step without a mock under `strict: true`; never retried. */
export class UnmockedStepError extends NonRetriableError {
  readonly step: string
  constructor(workflowId: string, step: string, known: readonly string[]) {
    super(
      `testRun (strict): step "${step}" of workflow "${workflowId}" has no mock. Add mocks: { '${step}': … }` +
        (known.length ? ` (mocked now: ${known.map((k) => `"${k}"`).join(', ')})` : '') +
        ', or drop `strict: true` to let unmocked steps run for real.',
    )
    this.name = 'UnmockedStepError'
    this.step = step
  }
}

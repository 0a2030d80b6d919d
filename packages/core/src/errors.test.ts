import { describe, expect, test } from 'vitest'
import {
  CancelledError,
  NonRetriableError,
  ParallelError,
  PlanError,
  RaceError,
  SteplineError,
  StepError,
  StepTimeoutError,
  ValidationError,
  deserializeError,
  isSteplineError,
  serializeError,
  type SerializedError,
} from './errors'

/** What the journal does to a serialised error: JSON out and back. */
const throughJson = (e: unknown): SerializedError => JSON.parse(JSON.stringify(serializeError(e))) as SerializedError

describe('serializeError / deserializeError', () => {
  test('keeps name, code, message and step of a Stepline error', () => {
    const original = new StepTimeoutError('charge', 2000)
    const back = deserializeError(throughJson(original))
    expect(back).toBeInstanceOf(Error)
    expect(back.name).toBe('StepTimeoutError')
    expect(back.message).toBe('Step "charge" timed out after 2000 ms. Raise its `timeout` option or make the step faster.')
    expect((back as SteplineError).code).toBe('STEP_TIMEOUT')
    expect((back as { step?: string }).step).toBe('charge')
    expect(back.stack).toBe(original.stack)
  })

  test('keeps a plain Error without inventing a code', () => {
    const back = deserializeError(throughJson(new TypeError('bad input')))
    expect(back.name).toBe('TypeError')
    expect(back.message).toBe('bad input')
    expect((back as { code?: string }).code).toBeUndefined()
    expect(isSteplineError(back)).toBe(false)
  })

  test('keeps the whole cause chain', () => {
    const root = new Error('ECONNRESET')
    const mid = new NonRetriableError('payment gateway down', { cause: root })
    const top = new StepError('charge', mid, 3)
    const data = throughJson(top)
    expect(data.cause?.cause?.message).toBe('ECONNRESET')

    const back = deserializeError(data)
    expect(back.name).toBe('StepError')
    expect((back as SteplineError).code).toBe('STEP_FAILED')
    expect(back.message).toBe('Step "charge" failed after 3 attempts: payment gateway down')
    const cause = back.cause as SteplineError
    expect(cause).toBeInstanceOf(Error)
    expect(cause.name).toBe('NonRetriableError')
    expect(cause.code).toBe('NON_RETRIABLE')
    expect(cause.message).toBe('payment gateway down')
    const rootBack = cause.cause as Error
    expect(rootBack.name).toBe('Error')
    expect(rootBack.message).toBe('ECONNRESET')
    expect(rootBack.cause).toBeUndefined()
  })

  test('keeps the errors array of an AggregateError (RaceError)', () => {
    const race = new RaceError('quote', [new Error('primary down'), new StepTimeoutError('quote[backup]', 50)])
    const back = deserializeError(throughJson(race)) as Error & { code?: string; errors?: Error[]; step?: string }
    expect(back.name).toBe('RaceError')
    expect(back.code).toBe('RACE_FAILED')
    expect(back.step).toBe('quote')
    expect(back.message).toBe(race.message)
    expect(back.errors).toHaveLength(2)
    expect(back.errors![0]!.message).toBe('primary down')
    expect(back.errors![1]!.name).toBe('StepTimeoutError')
    expect(isSteplineError(back.errors![1], 'STEP_TIMEOUT')).toBe(true)
  })

  test('keeps a plain AggregateError and a ParallelError with its cause', () => {
    const agg = deserializeError(throughJson(new AggregateError([new Error('a'), new Error('b')], 'both failed'))) as AggregateError
    expect(agg.name).toBe('AggregateError')
    expect(agg.message).toBe('both failed')
    expect(agg.errors.map((e: Error) => e.message)).toEqual(['a', 'b'])

    const par = deserializeError(throughJson(new ParallelError('fetch', [new Error('x'), new Error('y')]))) as SteplineError & { errors: Error[] }
    expect(par.code).toBe('PARALLEL_FAILED')
    expect(par.errors.map((e) => e.message)).toEqual(['x', 'y'])
    expect((par.cause as Error).message).toBe('x')
  })

  test('non-Error thrown values become Errors with a readable message', () => {
    expect(deserializeError(throughJson('just a string')).message).toBe('just a string')
    expect(deserializeError(throughJson({ reason: 42 })).message).toBe('{"reason":42}')
    const withCause = deserializeError(throughJson(new Error('outer', { cause: 'inner' })))
    expect((withCause.cause as Error).message).toBe('inner')
  })

  test('serialising twice is a no-op and toJSON uses the same form', () => {
    const data = serializeError(new PlanError('w', 'a', 'bad'))
    expect(serializeError(data)).toBe(data)
    const e = new CancelledError('run-1', 'user asked')
    expect(JSON.parse(JSON.stringify(e))).toEqual(JSON.parse(JSON.stringify(serializeError(e))))
  })
})

describe('isSteplineError', () => {
  test('recognises by code, not instanceof, after a round trip', () => {
    const back = deserializeError(throughJson(new CancelledError('run-1')))
    expect(isSteplineError(back)).toBe(true)
    expect(isSteplineError(back, 'RUN_CANCELLED')).toBe(true)
    expect(isSteplineError(back, 'STEP_FAILED')).toBe(false)
  })

  test('recognises a plain object with a code (another package copy, a worker thread)', () => {
    expect(isSteplineError({ code: 'STEP_TIMEOUT', message: 'x' })).toBe(true)
    expect(isSteplineError({ code: 'STEP_TIMEOUT' }, 'STEP_TIMEOUT')).toBe(true)
    expect(isSteplineError({ code: 'STEP_TIMEOUT' }, 'RUN_TIMEOUT')).toBe(false)
    expect(isSteplineError(serializeError(new PlanError('w', undefined, 'bad')), 'PLAN_INVALID')).toBe(true)
  })

  test('rejects foreign codes and non-objects', () => {
    expect(isSteplineError({ code: 'ENOENT' })).toBe(false)
    expect(isSteplineError(Object.assign(new Error('x'), { code: 'ECONNRESET' }))).toBe(false)
    expect(isSteplineError({ code: 42 })).toBe(false)
    expect(isSteplineError(null)).toBe(false)
    expect(isSteplineError('PLAN_INVALID')).toBe(false)
    expect(isSteplineError(undefined, 'PLAN_INVALID')).toBe(false)
  })

  test('live instances of every class', () => {
    expect(isSteplineError(new PlanError('w', 'a', 'm'), 'PLAN_INVALID')).toBe(true)
    expect(isSteplineError(new ValidationError('w', []), 'VALIDATION_FAILED')).toBe(true)
    expect(isSteplineError(new StepError('a', new Error('x'), 1), 'STEP_FAILED')).toBe(true)
    expect(isSteplineError(new NonRetriableError('m'), 'NON_RETRIABLE')).toBe(true)
    expect(isSteplineError(new RaceError('r', []), 'RACE_FAILED')).toBe(true)
  })
})

describe('ValidationError', () => {
  test('lists every issue with its path', () => {
    const e = new ValidationError('order', [
      { message: 'Expected string, received number', path: ['customer', 'email'] },
      { message: 'Too small', path: ['items', 0, { key: 'qty' }] },
      { message: 'Required' },
    ])
    expect(e.code).toBe('VALIDATION_FAILED')
    expect(e.name).toBe('ValidationError')
    expect(e.issues).toHaveLength(3)
    expect(e.message).toBe(
      [
        'Workflow "order": the payload does not match its input schema (3 issues):',
        '  - customer.email: Expected string, received number',
        '  - items.0.qty: Too small',
        '  - (root): Required',
        'No run was created; fix the payload and start again.',
      ].join('\n'),
    )
  })

  test('one issue is singular; an empty path is the root', () => {
    const e = new ValidationError('w', [{ message: 'Invalid input', path: [] }])
    expect(e.message).toContain('(1 issue):\n  - (root): Invalid input\n')
  })
})

import {
  createEngine,
  deserializeError,
  isSteplineError,
  NonRetriableError,
  ParallelError,
  serializeError,
  StepError,
  workflow,
} from '@stepline/core'

const wf = workflow<{ sku: string }>('errors')
  .step('lookup', (ctx) => {
    if (ctx.payload.sku === '') throw new NonRetriableError('empty SKU') // no retries
    return ctx.payload.sku
  }, { retry: 3, timeout: '1s' })

const outcome = await (await createEngine().start(wf, { sku: '' })).outcome()
const error = outcome.error

// In this process, classes work …
if (error instanceof StepError) console.log(error.step, error.attempts, error.cause) // 'lookup' 1 NonRetriableError
if (error instanceof ParallelError) console.log(error.errors)

// … but across worker threads, package copies and the journal only `code` and `name` survive.
const wire = JSON.stringify(serializeError(error)) // plain data with a marker
const back = deserializeError(JSON.parse(wire))
console.log(back.name, isSteplineError(back, 'STEP_FAILED')) // 'StepError' true
console.log(isSteplineError(back.cause, 'NON_RETRIABLE')) // true

// A step that timed out fails with code STEP_TIMEOUT (a StepError whose cause is a StepTimeoutError).
if (isSteplineError(error, 'STEP_TIMEOUT')) console.log('try a longer timeout')

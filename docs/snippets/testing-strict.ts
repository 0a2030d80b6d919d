import { isSteplineError, workflow } from '@stepline/core'
import { testRun, UnmockedStepError } from '@stepline/testing'
import { expect, test } from 'vitest'

const signup = workflow<{ email: string }>('signup')
  .step('create-account', (ctx) => ({ id: `acct_${ctx.payload.email}` }))
  .step('send-welcome', () => 'sent', { retry: { attempts: 5, delay: '1m' } })

test('strict: every step the run reaches must be mocked', async () => {
  const attempt = testRun(signup, { email: 'ada@example.com' }, {
    strict: true,
    mocks: { 'create-account': { id: 'acct_1' } },
  })
  // testRun itself rejects, on the first unmocked step; it is not retried.
  await expect(attempt).rejects.toBeInstanceOf(UnmockedStepError)
  await expect(attempt).rejects.toThrow(
    `testRun (strict): step "send-welcome" of workflow "signup" has no mock. Add mocks: { 'send-welcome': … } ` +
      '(mocked now: "create-account"), or drop `strict: true` to let unmocked steps run for real.',
  )
  const error = await attempt.catch((e: unknown) => e)
  expect(error instanceof UnmockedStepError && error.step).toBe('send-welcome')
  expect(isSteplineError(error, 'NON_RETRIABLE')).toBe(true)
})

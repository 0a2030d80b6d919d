import { describe, expect, test } from 'vitest'
import { z } from 'zod'
import { PlanError, cpu, isSteplineError, workflow } from '@stepline/core'

const noop = (): null => null

/** Runs `fn`, expects a PlanError (code PLAN_INVALID) and returns it. */
function planError(fn: () => unknown): PlanError {
  try {
    fn()
  } catch (e) {
    expect(e).toBeInstanceOf(PlanError)
    expect(isSteplineError(e, 'PLAN_INVALID')).toBe(true)
    expect((e as PlanError).code).toBe('PLAN_INVALID')
    expect((e as PlanError).name).toBe('PlanError')
    return e as PlanError
  }
  throw new Error('expected a PlanError, but nothing was thrown')
}

// Misuse goes through `any` on purpose: the types already reject it (see types.test-d.ts);
// these tests guard plain-JS callers and the messages.
const w = (id = 'order'): any => workflow(id)

describe('duplicate names', () => {
  test('two steps with one name', () => {
    const e = planError(() => w().step('charge', noop).step('charge', noop).plan())
    expect(e.message).toBe(
      'Workflow "order": the name "charge" is used twice (nodes n0 and n1). Names must be unique within a workflow, branches and forEach bodies included; rename one.',
    )
    expect(e.workflowId).toBe('order')
    expect(e.step).toBe('charge')
  })

  test('across kinds: a parallel, a sleep, an if reusing a step name', () => {
    expect(() => w().step('a', noop).parallel('a', [noop]).plan()).toThrow(/the name "a" is used twice/)
    expect(() => w().step('a', noop).sleep('a', '1s').plan()).toThrow(/the name "a" is used twice/)
    expect(() => w().step('a', noop).if('a', noop).endIf().plan()).toThrow(/the name "a" is used twice/)
  })

  test('across branches of one .if()', () => {
    const e = planError(() => w().if('big', noop).step('review', noop).else().step('review', noop).endIf().plan())
    expect(e.message).toMatch(/^Workflow "order": the name "review" is used twice \(nodes n0\.c0\.n0 and n0\.else\.n0\)\./)
    expect(e.message).toMatch(/rename one\.$/)
  })

  test('an .elseIf() name reusing the .if() name', () => {
    expect(() => w().if('c', noop).elseIf('c', noop).endIf().plan()).toThrow(/the name "c" is used twice \(nodes n0 and n0\.c1\)/)
  })

  test('a forEach body step reusing an outer name', () => {
    const e = planError(() =>
      w()
        .step('reserve', noop)
        .forEach('items', () => [1], (_item: unknown, flow: any) => flow.step('reserve', noop))
        .plan(),
    )
    expect(e.message).toContain('the name "reserve" is used twice (nodes n0 and n1.body.n0)')
    expect(e.message).toContain('forEach bodies included; rename one.')
  })

  test('two forEach bodies using the same name', () => {
    expect(() =>
      w()
        .forEach(() => [1], (_i: unknown, flow: any) => flow.step('one', noop))
        .forEach(() => [1], (_i: unknown, flow: any) => flow.step('one', noop))
        .plan(),
    ).toThrow(/the name "one" is used twice \(nodes n0\.body\.n0 and n1\.body\.n0\)/)
  })

  test('a user name equal to a generated one', () => {
    const e = planError(() => w().parallel([noop]).step('parallel#1', noop).plan())
    expect(e.message).toBe(
      `Workflow "order": the name "parallel#1" is used twice: by the unnamed parallel (node n0), whose name is generated as "parallel#<n>", and by the step "parallel#1" (node n1). Names must be unique within a workflow, generated names included. Rename the step "parallel#1", or give the parallel a name: .parallel('name', …).`,
    )
    expect(e.step).toBe('parallel#1')
    // Either order; a forEach's generated name as well.
    expect(() => w().step('race#1', noop).race([noop]).plan()).toThrow(/the name "race#1" is used twice: by the step "race#1" \(node n0\), and by the unnamed race \(node n1\)/)
    expect(() => w().sleep('forEach#1', '1s').forEach(() => [1], (_i: unknown, flow: any) => flow.step('one', noop)).plan()).toThrow(
      /the name "forEach#1" is used twice: by the sleep "forEach#1" \(node n0\), and by the unnamed forEach \(node n1\), whose name is generated as "forEach#<n>"/,
    )
  })
})

describe('generated names clashing with given ones', () => {
  // A branch, or the step of a cpu() forEach body, gets a name the user did not write. Events,
  // ctx.steps, summaries, testRun mocks and journal readers address entries by name, so a user
  // node with that name would be taken for it: both fail to build instead.

  test('a step named like a branch of a parallel', () => {
    const e = planError(() => w().step('fetch[0]', noop).parallel('fetch', [noop, noop]).plan())
    expect(e.message).toBe(
      'Workflow "order": the name "fetch[0]" is used twice: by the step "fetch[0]" (node n0), and by branch 0 of the parallel "fetch" (node n1.b0), whose name is generated as "<parallel>[<key>]". Names must be unique within a workflow, generated names included. Rename the step "fetch[0]" or the parallel "fetch".',
    )
    expect(e.workflowId).toBe('order')
    expect(e.step).toBe('fetch[0]')
  })

  test('a step after the parallel, named like one of its branches', () => {
    expect(() => w().parallel('fetch', [noop, noop]).step('fetch[1]', noop).plan()).toThrow(
      'Workflow "order": the name "fetch[1]" is used twice: by branch 1 of the parallel "fetch" (node n0.b1), whose name is generated as "<parallel>[<key>]", and by the step "fetch[1]" (node n1).',
    )
  })

  test('object branches of a race, and other node kinds', () => {
    expect(() => w().race('quote', { primary: noop, backup: noop }).sleep('quote[backup]', '1s').plan()).toThrow(
      'the name "quote[backup]" is used twice: by branch backup of the race "quote" (node n0.b1), whose name is generated as "<race>[<key>]", and by the sleep "quote[backup]" (node n1). Names must be unique within a workflow, generated names included. Rename the race "quote" or the sleep "quote[backup]".',
    )
    expect(() => w().if('fetch[0]', noop).endIf().parallel('fetch', [noop]).plan()).toThrow(
      /the name "fetch\[0\]" is used twice: by the \.if\(\) "fetch\[0\]" \(node n0\), and by branch 0 of the parallel "fetch"/,
    )
    expect(() => w().if('big', noop).elseIf('fetch[0]', noop).endIf().parallel('fetch', [noop]).plan()).toThrow(
      /by the \.elseIf\(\) "fetch\[0\]" \(node n0\.c1\), and by branch 0 of the parallel "fetch".*Rename the \.elseIf\(\) "fetch\[0\]" or the parallel "fetch"\.$/,
    )
    expect(() => w().parallel('fetch', [noop]).waitForEvent('fetch[0]').plan()).toThrow(/and by the waitForEvent "fetch\[0\]" \(node n1\)/)
  })

  test('a branch of an unnamed parallel', () => {
    expect(() => w().parallel([noop]).step('parallel#1[0]', noop).plan()).toThrow(
      `the name "parallel#1[0]" is used twice: by branch 0 of the unnamed parallel (node n0.b0), whose name is generated as "<parallel>[<key>]", and by the step "parallel#1[0]" (node n1). Names must be unique within a workflow, generated names included. Rename the step "parallel#1[0]", or give the parallel a name: .parallel('name', …).`,
    )
  })

  test('inside a forEach body and inside .if() branches', () => {
    expect(() =>
      w()
        .parallel('fetch', [noop])
        .forEach('each', () => [1], (_i: unknown, flow: any) => flow.step('fetch[0]', noop))
        .plan(),
    ).toThrow(/the name "fetch\[0\]" is used twice: by branch 0 of the parallel "fetch" \(node n0\.b0\).*and by the step "fetch\[0\]" \(node n1\.body\.n0\)/)
    expect(() =>
      w()
        .if('big', noop)
        .race('quote', [noop])
        .else()
        .step('quote[0]', noop)
        .endIf()
        .plan(),
    ).toThrow(/the name "quote\[0\]" is used twice: by branch 0 of the race "quote" \(node n0\.c0\.n0\.b0\).*and by the step "quote\[0\]" \(node n0\.else\.n0\)/)
  })

  test('branches of two nodes whose generated names meet', () => {
    expect(() => w().parallel('a', { 'b][c': noop }).parallel('a[b]', { c: noop }).plan()).toThrow(
      'the name "a[b][c]" is used twice: by branch b][c of the parallel "a" (node n0.b0), whose name is generated as "<parallel>[<key>]", and by branch c of the parallel "a[b]" (node n1.b0), whose name is generated as "<parallel>[<key>]". Names must be unique within a workflow, generated names included. Rename the parallel "a" or the parallel "a[b]".',
    )
  })

  test('a step named like the step of a cpu() forEach body', () => {
    const task = cpu({ module: 'file:///tasks/score.task.js' })
    const e = planError(() => w().forEach('score', () => [1], task).step('score:task', noop).plan())
    expect(e.message).toBe(
      'Workflow "order": the name "score:task" is used twice: by the cpu() body of the forEach "score" (node n0.body.n0), whose name is generated as "<forEach>:task", and by the step "score:task" (node n1). Names must be unique within a workflow, generated names included. Rename the forEach "score" or the step "score:task".',
    )
    expect(() => w().step('forEach#1:task', noop).forEach(() => [1], task).plan()).toThrow(
      `by the step "forEach#1:task" (node n0), and by the cpu() body of the unnamed forEach (node n1.body.n0), whose name is generated as "<forEach>:task". Names must be unique within a workflow, generated names included. Rename the step "forEach#1:task", or give the forEach a name: .forEach('name', …).`,
    )
  })

  test('names that only look alike still build', () => {
    const plan = w()
      .step('fetch', noop)
      .parallel('fetch[]', [noop])
      .step('fetch[x]', noop)
      .parallel('quote', { x: noop })
      .step('quote[0]', noop)
      .step('score-task', noop)
      .forEach('score', () => [1], cpu({ module: 'file:///tasks/score.task.js' }))
      .plan()
    expect(plan.nodes.map((n: { name: string }) => n.name)).toEqual(['fetch', 'fetch[]', 'fetch[x]', 'quote', 'quote[0]', 'score-task', 'score'])
  })
})

describe('if / else misuse', () => {
  test('.else() without .if()', () => {
    const e = planError(() => w().step('charge', noop).else())
    expect(e.message).toBe(
      `Workflow "order": .else() after "charge" has no open .if(). Start the branch with .if('name', condition) first, or remove the .else().`,
    )
    expect(e.step).toBe('charge')
  })

  test('.else() as the first call', () => {
    expect(() => w().else()).toThrow(`Workflow "order": .else() at the start has no open .if().`)
  })

  test('.elseIf() without .if()', () => {
    expect(() => w().step('a', noop).elseIf('b', noop)).toThrow(`Workflow "order": .elseIf() after "a" has no open .if().`)
  })

  test('.endIf() without .if()', () => {
    expect(() => w().step('a', noop).endIf()).toThrow(
      `Workflow "order": .endIf() after "a" has no open .if(). Start the branch with .if('name', condition) first, or remove the .endIf().`,
    )
  })

  test('.endIf() once too often', () => {
    expect(() => w().if('c', noop).step('a', noop).endIf().endIf()).toThrow(/\.endIf\(\) after "a" has no open \.if\(\)/)
  })

  test('.elseIf() after .else()', () => {
    const e = planError(() => w().if('big', noop).step('a', noop).else().step('b', noop).elseIf('medium', noop))
    expect(e.message).toBe(
      `Workflow "order": .elseIf('medium') comes after .else() of .if('big'). Move it before .else(), or close the branch with .endIf().`,
    )
    expect(e.step).toBe('medium')
  })

  test('a second .else()', () => {
    const e = planError(() => w().if('big', noop).else().step('b', noop).else())
    expect(e.message).toBe(
      `Workflow "order": .if('big') already has an .else(). Remove the second one, or close the first branch with .endIf().`,
    )
    expect(e.step).toBe('big')
  })

  test('an inner .else() does not count for the outer .if()', () => {
    const plan = w().if('outer', noop).if('inner', noop).else().endIf().else().endIf().plan()
    expect(plan.nodes[0].otherwise).toBeDefined()
    expect(plan.nodes[0].cases[0].nodes[0].otherwise).toBeDefined()
  })

  test('a missing .endIf() fails at .plan()', () => {
    const open = w().step('a', noop).if('big', noop).step('review', noop)
    const e = planError(() => open.plan())
    expect(e.message).toBe(`Workflow "order": .if('big') is never closed. Add .endIf() after the last step of its branches.`)
    expect(e.step).toBe('big')
    expect(() => open.toMermaid()).toThrow(PlanError)
  })

  test('the innermost unclosed .if() is named', () => {
    expect(() => w().if('outer', noop).if('inner', noop).endIf().if('third', noop).plan()).toThrow(/\.if\('third'\) is never closed/)
  })

  test('a missing .endIf() inside a forEach body', () => {
    expect(() => w().forEach('each', () => [1], (_i: unknown, flow: any) => flow.if('c', noop).step('s', noop)).plan()).toThrow(
      /\.if\('c'\) is never closed/,
    )
  })
})

describe('parallel and race', () => {
  test('empty parallel', () => {
    const e = planError(() => w().parallel([]))
    expect(e.message).toBe('Step "parallel#1" in workflow "order": .parallel() has no branches. Give it at least one function, or remove it.')
    expect(e.step).toBe('parallel#1')
  })

  test('empty named parallel with an object', () => {
    expect(() => w().parallel('fetch', {})).toThrow('Step "fetch" in workflow "order": .parallel() has no branches.')
  })

  test('empty race', () => {
    expect(() => w().race([])).toThrow('Step "race#1" in workflow "order": .race() has no branches. Give it at least one function, or remove it.')
  })

  test('the generated name counts earlier unnamed nodes of the same kind', () => {
    expect(() => w().parallel([noop]).race([noop]).parallel([])).toThrow('Step "parallel#2" in workflow "order"')
  })

  test('branches that are not an array or object', () => {
    expect(() => w().parallel('p', 'nope')).toThrow(
      'Step "p" in workflow "order": expected the branches of .parallel() as an array or an object of functions, got string.',
    )
  })

  test('a branch that is not a function', () => {
    expect(() => w().parallel('p', [noop, 42])).toThrow('Step "p" in workflow "order": expected branch 1 to be a function or a cpu() task, got 42.')
    expect(() => w().race('r', { a: noop, b: 'x' })).toThrow(`Step "r" in workflow "order": expected branch b to be a function or a cpu() task, got 'x'.`)
  })

  test('an empty or blank name is rejected', () => {
    expect(() => w().parallel('', [noop])).toThrow(
      `Workflow "order": expected the name of a parallel as a non-empty string, got ''. Give every parallel a name: .parallel('name', …).`,
    )
    expect(() => w().race(' ', [noop])).toThrow(`expected the name of a race as a non-empty string, got ' '.`)
    expect(() => w().forEach('', () => [1], (_i: unknown, flow: any) => flow.step('one', noop))).toThrow(
      `expected the name of a forEach as a non-empty string, got ''.`,
    )
  })

  test('a hole in the branches array', () => {
    // eslint-disable-next-line no-sparse-arrays
    expect(() => w().parallel('p', [noop, , noop])).toThrow('Step "p" in workflow "order": expected branch 1 to be a function or a cpu() task, got undefined.')
  })

  test('maxConcurrency: Infinity means no limit and stays out of the plan', () => {
    const plan = w().parallel('p', [noop], { maxConcurrency: Infinity }).plan()
    expect(plan.nodes[0]).not.toHaveProperty('maxConcurrency')
    expect(JSON.parse(JSON.stringify(plan))).toStrictEqual(plan)
  })

  test('maxConcurrency on race', () => {
    const e = planError(() => w().race('quote', [noop, noop], { maxConcurrency: 1 }))
    expect(e.message).toBe(
      'Step "quote" in workflow "order": .race() has no `maxConcurrency`; every branch starts at once. Remove the option, or use .parallel() to bound concurrency.',
    )
  })

  test('bad maxConcurrency on parallel', () => {
    expect(() => w().parallel('p', [noop], { maxConcurrency: 0 })).toThrow(
      'Step "p" in workflow "order": expected `maxConcurrency` as a whole number ≥ 1, got 0.',
    )
  })

  test('unknown parallel / race option', () => {
    expect(() => w().parallel('p', [noop], { concurrency: 2 })).toThrow(
      'Step "p" in workflow "order": unknown option `concurrency`. .parallel() options are `maxConcurrency`, `timeout`.',
    )
    expect(() => w().race('r', [noop], { retry: 2 })).toThrow('Step "r" in workflow "order": unknown option `retry`. .race() options are `timeout`.')
  })

  test('bad parallel timeout', () => {
    expect(() => w().parallel('p', [noop], { timeout: 'soon' })).toThrow(
      `Step "p" in workflow "order": expected \`timeout\` as a duration like '30s', '5m' or a number of milliseconds, got 'soon'.`,
    )
  })
})

describe('step options', () => {
  test("timeout: 'soon'", () => {
    const e = planError(() => w().step('charge', noop, { timeout: 'soon' }))
    expect(e.message).toBe(
      `Step "charge" in workflow "order": expected \`timeout\` as a duration like '30s', '5m' or a number of milliseconds, got 'soon'.`,
    )
    expect(e.step).toBe('charge')
    expect(e.workflowId).toBe('order')
  })

  test('negative and non-finite timeouts', () => {
    expect(() => w().step('a', noop, { timeout: -1 })).toThrow('Step "a" in workflow "order": expected `timeout` to be more than 0, got -1.')
    expect(() => w().step('a', noop, { timeout: Number.NaN })).toThrow("expected `timeout` as a duration like '30s'")
  })

  test('a timeout of 0 is a PlanError wherever a timeout is taken; leaving it out means none', () => {
    const zero = 'expected `timeout` to be more than 0, got 0. Leave `timeout` out for no time limit.'
    const e = planError(() => w().step('charge', noop, { timeout: 0 }))
    expect(e.message).toBe(`Step "charge" in workflow "order": ${zero}`)
    expect(e.step).toBe('charge')
    expect(() => w().step('charge', noop, { timeout: '0s' })).toThrow("expected `timeout` to be more than 0, got '0s'.")
    expect(() => w().parallel('p', [noop], { timeout: 0 })).toThrow(`Step "p" in workflow "order": ${zero}`)
    expect(() => w().race('r', [noop], { timeout: '0ms' })).toThrow('Step "r" in workflow "order": expected `timeout` to be more than 0')
    expect(() => w().waitForEvent('review', { timeout: 0 })).toThrow(`Step "review" in workflow "order": ${zero}`)
    expect(() => workflow('order', { timeout: 0 })).toThrow(`Workflow "order": ${zero}`)
    expect(() => workflow('order', { timeout: -5 })).toThrow('Workflow "order": expected `timeout` to be more than 0, got -5.')
    expect(() => w().forEach('each', () => [1], (_i: unknown, flow: any) => flow.step('one', noop, { timeout: 0 })).plan()).toThrow(
      `Step "one" in workflow "order": ${zero}`,
    )
    expect(w().step('charge', noop, { timeout: 1 }).plan().nodes[0]).toMatchObject({ timeoutMs: 1 })
    expect(w().step('charge', noop).plan().nodes[0]).not.toHaveProperty('timeoutMs')
  })

  test('bad retry delay and maxDelay', () => {
    expect(() => w().step('charge', noop, { retry: { attempts: 3, delay: 'later' } })).toThrow(
      `Step "charge" in workflow "order": expected \`retry.delay\` as a duration like '30s', '5m' or a number of milliseconds, got 'later'.`,
    )
    expect(() => w().step('charge', noop, { retry: { attempts: 3, maxDelay: {} } })).toThrow('expected `retry.maxDelay` as a duration')
  })

  test('retry attempts 0 and 1.5', () => {
    expect(() => w().step('charge', noop, { retry: { attempts: 0 } })).toThrow(
      'Step "charge" in workflow "order": expected `retry.attempts` as a whole number ≥ 1, got 0.',
    )
    expect(() => w().step('charge', noop, { retry: { attempts: 1.5 } })).toThrow(
      'Step "charge" in workflow "order": expected `retry.attempts` as a whole number ≥ 1, got 1.5.',
    )
    expect(() => w().step('charge', noop, { retry: 0 })).toThrow('expected `retry.attempts` as a whole number ≥ 1, got 0.')
    expect(() => w().step('charge', noop, { retry: {} })).toThrow('expected `retry.attempts` as a whole number ≥ 1, got undefined.')
  })

  test('bad backoff', () => {
    expect(() => w().step('charge', noop, { retry: { attempts: 2, backoff: 'linear' } })).toThrow(
      `Step "charge" in workflow "order": expected \`retry.backoff\` to be 'fixed' or 'exponential', got 'linear'.`,
    )
  })

  test('bad jitter', () => {
    for (const jitter of [2, -0.1, 'yes']) {
      expect(() => w().step('charge', noop, { retry: { attempts: 2, jitter } })).toThrow(
        /^Step "charge" in workflow "order": expected `retry\.jitter` as true, false or a fraction between 0 and 1, got /,
      )
    }
  })

  test('retryIf and cache.key must be functions', () => {
    expect(() => w().step('a', noop, { retry: { attempts: 2, retryIf: true } })).toThrow(
      'Step "a" in workflow "order": expected `retry.retryIf` to be a function, got true.',
    )
    expect(() => w().step('a', noop, { cache: { key: 'k' } })).toThrow(`Step "a" in workflow "order": expected \`cache.key\` to be a function, got 'k'.`)
    expect(() => w().step('a', noop, { cache: { key: noop, ttl: 'forever' } })).toThrow('expected `cache.ttl` as a duration')
  })

  test('unknown step option', () => {
    const e = planError(() => w().step('charge', noop, { retries: 3 }))
    expect(e.message).toBe('Step "charge" in workflow "order": unknown option `retries`. Step options are `retry`, `timeout` and `cache`.')
  })

  test('options that are not an object', () => {
    expect(() => w().step('charge', noop, 'fast')).toThrow(`Step "charge" in workflow "order": expected options to be an object, got 'fast'.`)
  })

  test('non-function step', () => {
    const e = planError(() => w().step('charge', 'charge()'))
    expect(e.message).toBe(`Step "charge" in workflow "order": expected the step body to be a function or a cpu() task, got 'charge()'.`)
    expect(() => w().step('charge')).toThrow('Step "charge" in workflow "order": expected the step body to be a function or a cpu() task, got undefined.')
  })

  test('a step without a name', () => {
    expect(() => w().step(noop)).toThrow(
      `Workflow "order": expected the name of a step as a non-empty string, got function. Give every step a name: .step('name', …).`,
    )
    expect(() => w().step('  ', noop)).toThrow(`Workflow "order": expected the name of a step as a non-empty string, got '  '.`)
  })

  test('unknown keys inside retry and cache are rejected, not ignored', () => {
    expect(() => w().step('charge', noop, { retry: { attempts: 3, backof: 'fixed' } })).toThrow(
      'Step "charge" in workflow "order": unknown option `backof`. `retry` options are `attempts`, `backoff`, `delay`, `maxDelay`, `jitter`, `retryIf`.',
    )
    expect(() => w().step('charge', noop, { cache: { key: noop, tll: '10m' } })).toThrow(
      'Step "charge" in workflow "order": unknown option `tll`. `cache` options are `key`, `ttl`.',
    )
  })

  test('Infinity is out of range for counts; NaN and Infinity are shown as such', () => {
    expect(() => w().step('charge', noop, { retry: Infinity })).toThrow(
      'Step "charge" in workflow "order": expected `retry.attempts` as a whole number ≥ 1, got Infinity.',
    )
    expect(() => w().step('charge', noop, { retry: { attempts: Infinity } })).toThrow('got Infinity.')
    expect(() => w().forEach('each', noop, noop, { concurrency: Infinity })).toThrow('expected `concurrency` as a whole number ≥ 1, got Infinity.')
    expect(() => w().forEach('each', noop, noop, { chunkSize: Infinity })).toThrow('expected `chunkSize` as a whole number ≥ 1, got Infinity.')
    expect(() => w().sleep('cool-down', Number.NaN)).toThrow('or a number of milliseconds, got NaN.')
    expect(() => w().step('charge', noop, { timeout: -Infinity })).toThrow('or a number of milliseconds, got -Infinity.')
  })

  test('valid options are accepted', () => {
    const plan = w()
      .step('a', noop, { retry: { attempts: 3, backoff: 'fixed', delay: '200ms', maxDelay: 1000, jitter: 0.5, retryIf: () => true }, timeout: '2s' })
      .plan()
    expect(plan.nodes[0]).toMatchObject({
      retry: { attempts: 3, backoff: 'fixed', delayMs: 200, maxDelayMs: 1000, jitter: 0.5 },
      timeoutMs: 2000,
    })
  })
})

describe('sleep', () => {
  test('bad sleep duration', () => {
    const e = planError(() => w().sleep('cool-down', 'a while'))
    expect(e.message).toBe(
      `Step "cool-down" in workflow "order": expected \`duration\` as a duration like '30s', '5m' or a number of milliseconds, got 'a while'.`,
    )
    expect(() => w().sleep('cool-down')).toThrow('expected `duration` as a duration like')
  })
})

describe('onError', () => {
  test('.onError() with nothing before it fails at .plan()', () => {
    const e = planError(() => w().onError(noop).plan())
    expect(e.message).toBe(
      'Workflow "order": .onError() must follow the node it recovers, but nothing comes before it here. Move it after a step, or use the workflow option `onError` for run failures.',
    )
  })

  test('.onError() first in a branch', () => {
    expect(() => w().if('c', noop).onError(noop).endIf().plan()).toThrow(/\.onError\(\) must follow the node it recovers/)
  })

  test('two .onError() on one node', () => {
    const e = planError(() => w().step('charge', noop).onError(noop).onError(noop).plan())
    expect(e.message).toBe('Workflow "order": "charge" has two .onError() handlers. Keep one.')
    expect(e.step).toBe('charge')
  })

  test('a handler that is not a function', () => {
    expect(() => w().step('charge', noop).onError({})).toThrow('Step "onError" in workflow "order": expected the handler of .onError() to be a function, got {}.')
  })
})

describe('forEach', () => {
  test('a body that does not return the flow', () => {
    const e = planError(() => w().forEach('reserve', () => [1], (_item: unknown, flow: any) => void flow.step('one', noop)).plan())
    expect(e.message).toBe(
      `Workflow "order": the body of forEach "reserve" must return the flow it was given, e.g. (item, flow) => flow.step('one', …). It returned undefined.`,
    )
    expect(e.step).toBe('reserve')
  })

  test('a body that reads its item while building', () => {
    const e = planError(() =>
      w()
        .forEach('reserve', () => [{ sku: 'a' }], (item: any, flow: any) => flow.step(`reserve-${item.sku}`, noop))
        .plan(),
    )
    expect(e.message).toBe(
      'Workflow "order": the body of forEach "reserve" read its item while the plan was being built. Read the item only inside step functions (or use ctx.item), so that every item has the same steps.',
    )
  })

  test('an unnamed forEach is named in the error', () => {
    expect(() => w().forEach(() => [], () => 'nope').plan()).toThrow('the body of forEach "forEach#1" must return the flow it was given')
  })

  test('items and body must be functions', () => {
    expect(() => w().forEach('each', [1, 2], noop)).toThrow(
      'Step "each" in workflow "order": expected the items of .forEach() (ctx => array) to be a function, got [1,2].',
    )
    expect(() => w().forEach('each', noop, undefined)).toThrow('Step "each" in workflow "order": expected the body of .forEach()')
  })

  test('bad forEach options', () => {
    expect(() => w().forEach('each', noop, noop, { concurrency: 0 })).toThrow(
      'Step "each" in workflow "order": expected `concurrency` as a whole number ≥ 1, got 0.',
    )
    expect(() => w().forEach('each', noop, noop, { chunkSize: 2.5 })).toThrow('expected `chunkSize` as a whole number ≥ 1, got 2.5.')
    expect(() => w().forEach('each', noop, noop, { parallel: 4 })).toThrow(
      'Step "each" in workflow "order": unknown option `parallel`. .forEach() options are `concurrency`, `chunkSize`.',
    )
  })

  test('errors inside a body name the body step', () => {
    expect(() => w().forEach('each', () => [1], (_i: unknown, flow: any) => flow.step('one', noop, { timeout: 'x' })).plan()).toThrow(
      `Step "one" in workflow "order": expected \`timeout\` as a duration`,
    )
  })
})

describe('workflow()', () => {
  test('bad workflow id', () => {
    const e = planError(() => workflow(''))
    expect(e.message).toBe(`expected a workflow id as a non-empty string, got '': workflow('process-order').`)
    expect(() => workflow(42 as any)).toThrow(`expected a workflow id as a non-empty string, got number: workflow('process-order').`)
  })

  test('unknown workflow option', () => {
    const e = planError(() => workflow('order', { retries: 3 } as any))
    expect(e.message).toBe(
      'Workflow "order": unknown option `retries`. Workflow options are `input`, `concurrency`, `timeout`, `onError`, `description` and `triggers`.',
    )
    expect(e.workflowId).toBe('order')
  })

  test('bad workflow timeout and concurrency', () => {
    const e = planError(() => workflow('order', { timeout: 'soon' as any }))
    expect(e.message).toBe(`Workflow "order": expected \`timeout\` as a duration like '30s', '5m' or a number of milliseconds, got 'soon'.`)
    expect(e.step).toBeUndefined()
    expect(() => workflow('order', { concurrency: -1 })).toThrow('Workflow "order": expected `concurrency` as a whole number ≥ 1, got -1.')
  })

  test('concurrency: Infinity means no limit and stays out of the plan', () => {
    const plan = workflow('order', { concurrency: Infinity }).step('a', noop).plan()
    expect(plan.options).not.toHaveProperty('concurrency')
    expect(JSON.parse(JSON.stringify(plan))).toStrictEqual(plan)
    expect(plan.hash).toBe(workflow('order').step('a', noop).plan().hash)
  })

  test('triggers that are not trigger objects', () => {
    expect(() => workflow('order', { triggers: ['*/5 * * * *'] as any })).toThrow(
      "Workflow \"order\": expected `triggers` as an array of triggers such as webhook({ path }) or schedule('*/5 * * * *') from @stepline/server.",
    )
    expect(workflow('order', { triggers: [{ kind: 'webhook', path: 'orders' }] }).plan().hash).toBe(workflow('order').plan().hash)
  })

  test('input that is not a Standard Schema', () => {
    expect(() => workflow('order', { input: { parse: noop } as any })).toThrow(
      'Workflow "order": expected `input` to be a Standard Schema (zod 4, valibot, arktype, …), got an object without `~standard.validate`.',
    )
    expect(() => workflow('order', { input: z.object({ id: z.string() }) })).not.toThrow()
  })

  test('workflow onError must be a function', () => {
    expect(() => workflow('order', { onError: 'log' as any })).toThrow("Workflow \"order\": expected `onError` to be a function, got 'log'.")
  })

  test('options that are not an object', () => {
    expect(() => workflow('order', 5 as any)).toThrow('Workflow "order": expected options to be an object, got number.')
  })
})

describe('immutability', () => {
  test('each call returns a new builder and leaves the original unchanged', () => {
    const base = workflow('order').step('a', () => 1)
    const before = JSON.stringify(base.plan())
    const withB = base.step('b', () => 2)
    const withC = base.step('c', () => 3)
    const branched = base.if('x', () => true).step('y', () => 1).endIf()
    expect(withB).not.toBe(base)
    expect(withC).not.toBe(withB)
    expect(JSON.stringify(base.plan())).toBe(before)
    expect(base.plan().nodes.map((n) => n.name)).toEqual(['a'])
    expect(withB.plan().nodes.map((n) => n.name)).toEqual(['a', 'b'])
    expect(withC.plan().nodes.map((n) => n.name)).toEqual(['a', 'c'])
    expect(branched.plan().nodes.map((n) => n.name)).toEqual(['a', 'x'])
  })

  test('every method returns a new builder', () => {
    const base: any = workflow('order').step('a', () => 1)
    const opened = base.if('c', noop)
    const calls: [string, () => unknown][] = [
      ['step', () => base.step('s', noop)],
      ['parallel', () => base.parallel([noop])],
      ['race', () => base.race([noop])],
      ['if', () => base.if('c2', noop)],
      ['elseIf', () => opened.elseIf('d', noop)],
      ['else', () => opened.else()],
      ['endIf', () => opened.endIf()],
      ['forEach', () => base.forEach(() => [], (_i: unknown, f: any) => f)],
      ['onError', () => base.onError(noop)],
      ['sleep', () => base.sleep('z', 10)],
    ]
    for (const [method, call] of calls) {
      const next = call()
      expect(next, method).not.toBe(base)
      expect(next, method).not.toBe(opened)
    }
    expect(base.plan().nodes).toHaveLength(1)
  })

  test('a failed call leaves the builder usable', () => {
    const base: any = workflow('order').step('a', () => 1)
    expect(() => base.step('b', noop, { timeout: 'soon' })).toThrow(PlanError)
    expect(base.step('b', noop).plan().nodes).toHaveLength(2)
  })

  test('.plan() is cached per builder and equal across calls', () => {
    const wf = workflow('order').step('a', () => 1)
    expect(wf.plan()).toBe(wf.plan())
  })
})

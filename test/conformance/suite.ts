import { describe } from 'vitest'
import { branchTests } from './branches'
import { engineTests } from './engine'
import { forEachTests } from './for-each'
import { createSuiteContext, type ConformanceTarget } from './helpers'
import { durableTests } from './durable'
import { onErrorTests } from './on-error'
import { parallelRaceTests } from './parallel-race'
import { recoveryTests } from './recovery'
import { stepTests } from './steps-retry'
import { validationTests } from './validation'

export type { ConformanceTarget, SuiteContext } from './helpers'

/**
 * The behaviour contract of DESIGN.md "The builder", run against one store + executor.
 * Every store (memory, SQLite, a store of your own) and executor (inline, pool) calls this with its own
 * target, so they all pass the very same tests.
 * @example
 * defineConformanceSuite({ name: 'memory', createStore: () => memoryStore() })
 */
export function defineConformanceSuite(target: ConformanceTarget): void {
  describe(`conformance: ${target.name}`, () => {
    const s = createSuiteContext(target)
    stepTests(s)
    parallelRaceTests(s)
    branchTests(s)
    forEachTests(s)
    onErrorTests(s)
    engineTests(s)
    recoveryTests(s)
    durableTests(s)
    validationTests(s)
  })
}

import { defaultExecutor, inlineExecutor, memoryStore } from '@stepline/core'
import { defineConformanceSuite } from './conformance/suite'

defineConformanceSuite({
  name: 'memory + inline',
  createStore: () => memoryStore(),
  executor: () => inlineExecutor(),
})

// The executor engines get by default: plain steps inline, cpu() steps in the pool (test/cpu.test.ts).
defineConformanceSuite({
  name: 'memory + default executor',
  createStore: () => memoryStore(),
  executor: () => defaultExecutor({ workers: { max: 1 } }),
})

import { inlineExecutor, memoryStore } from '@stepline/core'
import { defineConformanceSuite } from './conformance/suite'

defineConformanceSuite({
  name: 'memory + inline',
  createStore: () => memoryStore(),
  executor: () => inlineExecutor(),
})

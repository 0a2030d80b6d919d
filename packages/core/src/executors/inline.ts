import type { Executor } from './types'

/**
 * Runs steps on the calling thread: the default for every step that is not `cpu()`.
 * @example
 * createEngine({ executor: inlineExecutor() })
 */
export function inlineExecutor(): Executor {
  return { name: 'inline', execute: (_node, fn, ctx) => fn(ctx) }
}

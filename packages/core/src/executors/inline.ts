import { SteplineError } from '../errors'
import type { Executor } from './types'

/**
 * Runs every step on the calling thread; it cannot run `cpu()` steps (use `defaultExecutor()`).
 * @example
 * createEngine({ executor: inlineExecutor() })
 */
export function inlineExecutor(): Executor {
  return {
    name: 'inline',
    execute(node, fn, ctx) {
      if (node.cpu !== undefined) {
        throw new SteplineError('OPTIONS_INVALID', `Step "${node.name}" is a cpu() step, which the inline executor cannot run. Use the default executor (leave \`executor\` unset) or defaultExecutor().`)
      }
      return fn(ctx)
    },
  }
}

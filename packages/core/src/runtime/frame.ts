import type { StepRecord } from '../store/types'
import type { AbortScope } from './abort-scope'

/** Where in a run a sequence of nodes executes: the workflow itself, or one `forEach` item. */
export interface Frame {
  /** Output of the node before; updated as the sequence advances. */
  last: unknown
  /** `ctx.steps` here: the workflow's steps, plus the item's own inside a `forEach` body. */
  steps: Record<string, StepRecord>
  item: unknown
  index: number | undefined
  /** Suffix of journal keys: `''` at the top, `@i` per enclosing item. */
  itemKey: string
  itemPath: number[] | undefined
  /** Aborts this frame's work: the run, a `parallel`, a `forEach`. */
  scope: AbortScope
}

export function keyOf(nodeId: string, frame: Frame): string {
  return frame.itemKey === '' ? nodeId : nodeId + frame.itemKey
}

import { SteplineError } from '../errors'

/** What `listRuns` throws for a `before` cursor that names no run of the store (every store says it alike). */
export function unknownCursor(before: string): SteplineError {
  return new SteplineError(
    'RUN_NOT_FOUND',
    `listRuns(): \`before: ${JSON.stringify(before)}\` names no run in this store: it was pruned since the previous page, or never existed. Page again from the newest, without \`before\`.`,
  )
}

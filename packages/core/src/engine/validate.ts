import type { StandardSchemaV1 } from '@standard-schema/spec'
import { ValidationError } from '../errors'

/** Validates `payload` against a Standard Schema; returns the (possibly transformed) value. */
export async function validatePayload(workflowId: string, schema: StandardSchemaV1, payload: unknown): Promise<unknown> {
  let result = schema['~standard'].validate(payload)
  if (result instanceof Promise) result = await result
  if (result.issues) throw new ValidationError(workflowId, result.issues)
  return result.value
}

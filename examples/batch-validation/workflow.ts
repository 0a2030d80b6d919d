/**
 * Batch validation: 1,000 records validated one by one inside a `forEach`, handed out in
 * chunks to a few workers. A record that breaks a rule is turned into a report line by an
 * `.onError()` inside the body, so one bad record never fails the batch; anything else (a bug,
 * a service outage) still fails the run.
 */
import { workflow } from '@stepline/core'

export interface CustomerRecord {
  id: string
  email: string
  age: number
  country: string
}

export type Validated =
  | { id: string; valid: true; record: CustomerRecord }
  | { id: string; valid: false; rule: string; reason: string }

export interface ValidationReport {
  total: number
  valid: number
  invalid: { id: string; rule: string; reason: string }[]
}

/** A record that breaks a rule: the expected outcome for some records, not a failure of the run. */
export class InvalidRecordError extends Error {
  override readonly name = 'InvalidRecordError'
  constructor(
    readonly recordId: string,
    readonly rule: 'email' | 'age' | 'country',
    message: string,
  ) {
    super(message)
  }
}

const COUNTRIES = ['DE', 'FR', 'NL', 'US', 'GB', 'JP', 'BR']

/**
 * 1,000 (or `count`) deterministic records. Every 47th (from #5) has an email without `@`,
 * every 61st (from #7) an impossible age, every 89th (from #11) an unknown country code.
 */
export function generateRecords(count: number): CustomerRecord[] {
  return Array.from({ length: count }, (_, i) => {
    const id = `rec-${String(i).padStart(4, '0')}`
    return {
      id,
      email: i % 47 === 5 ? `user${i}.example.com` : `user${i}@example.com`,
      age: i % 61 === 7 ? (i % 2 ? -3 : 212) : 18 + (i % 60),
      country: i % 89 === 11 ? 'XX' : COUNTRIES[i % COUNTRIES.length]!,
    }
  })
}

/** Local stand-in for a domain-blocklist service that answers after about a millisecond. */
export const blocklist = {
  async isBlocked(domain: string, signal: AbortSignal): Promise<boolean> {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => (clearTimeout(t), reject(signal.reason))
      // Remove the listener when done: every record of the batch sees the same signal.
      const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), 1)
      signal.addEventListener('abort', onAbort, { once: true })
    })
    return domain === 'spam.test'
  },
}

/** Checks one record; throws `InvalidRecordError` naming the rule it breaks. */
export async function validateRecord(record: CustomerRecord, signal: AbortSignal): Promise<Validated> {
  const at = record.email.indexOf('@')
  if (at < 1 || at === record.email.length - 1) {
    throw new InvalidRecordError(record.id, 'email', `email "${record.email}" is not an address`)
  }
  if (await blocklist.isBlocked(record.email.slice(at + 1), signal)) {
    throw new InvalidRecordError(record.id, 'email', `email domain of "${record.email}" is blocked`)
  }
  if (!Number.isInteger(record.age) || record.age < 0 || record.age > 130) {
    throw new InvalidRecordError(record.id, 'age', `age ${record.age} is outside 0–130`)
  }
  if (!COUNTRIES.includes(record.country)) {
    throw new InvalidRecordError(record.id, 'country', `country "${record.country}" is not one of ${COUNTRIES.join(', ')}`)
  }
  return { id: record.id, valid: true, record: { ...record, email: record.email.toLowerCase() } }
}

export const batchValidation = workflow<{ count: number }>('batch-validation')
  .step('load', (ctx) => generateRecords(ctx.payload.count))
  .forEach(
    'validate-records',
    (ctx) => ctx.last,
    (record, flow) =>
      flow
        .step('validate', (ctx) => validateRecord(record, ctx.signal))
        // Only a broken rule becomes a report line; recognised by name, as errors may cross
        // threads or package copies. Anything else is rethrown and fails the run.
        .onError((ctx): Validated => {
          if (ctx.error.name !== 'InvalidRecordError') throw ctx.error
          const e = ctx.error as InvalidRecordError
          return { id: record.id, valid: false, rule: e.rule, reason: e.message }
        }),
    // 8 workers, each taking 25 consecutive records at a time: one progress event per chunk.
    { concurrency: 8, chunkSize: 25 },
  )
  .step('report', (ctx): ValidationReport => {
    const invalid = ctx.last.flatMap((r) => (r.valid ? [] : [{ id: r.id, rule: r.rule, reason: r.reason }]))
    return { total: ctx.last.length, valid: ctx.last.length - invalid.length, invalid }
  })

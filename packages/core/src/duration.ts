import ms from 'ms'

/** A duration as milliseconds or an `ms` string such as `'30s'`, `'5m'`, `'1d'`. */
export type Duration = number | `${number}` | `${number}${DurationUnit}` | `${number} ${DurationUnit}`
type DurationUnit = 'ms' | 's' | 'm' | 'h' | 'd' | 'w' | 'y' | 'sec' | 'secs' | 'min' | 'mins' | 'hour' | 'hours' | 'day' | 'days' | 'week' | 'weeks' | 'minutes' | 'seconds' | 'milliseconds'

/**
 * Milliseconds of a `Duration`, or `undefined` when it is not one (caller writes the error,
 * since only the caller knows which option and step it belongs to).
 */
export function toMs(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : undefined
  if (typeof value !== 'string' || value.trim() === '') return undefined
  const n = ms(value as Parameters<typeof ms>[0])
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined
}

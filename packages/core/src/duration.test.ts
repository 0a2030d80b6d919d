import { describe, expect, test } from 'vitest'
import { toMs } from './duration'

describe('toMs', () => {
  test('numbers are milliseconds', () => {
    expect(toMs(0)).toBe(0)
    expect(toMs(250)).toBe(250)
    expect(toMs(1.5)).toBe(1.5)
  })

  test.each([
    ['100ms', 100],
    ['30s', 30_000],
    ['5m', 300_000],
    ['2h', 7_200_000],
    ['1d', 86_400_000],
    ['1w', 604_800_000],
    ['1.5s', 1500],
    ['10 minutes', 600_000],
    ['2 days', 172_800_000],
    ['500', 500],
    ['1 hour', 3_600_000],
  ])('%s → %d ms', (input, expected) => {
    expect(toMs(input)).toBe(expected)
  })

  test.each([
    ['soon'],
    [''],
    ['   '],
    ['5 parsecs'],
    ['-5s'],
    [-1],
    [Number.NaN],
    [Number.POSITIVE_INFINITY],
    [null],
    [undefined],
    [{}],
    [[1]],
    [true],
  ])('%j is not a duration', (input) => {
    expect(toMs(input)).toBeUndefined()
  })
})

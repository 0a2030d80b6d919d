import { describe, expect, it } from 'vitest'
import { workflow } from '@stepline/core'
import { parseBytes, schedule, signPayload, verifySignature, webhook } from './index'

describe('webhook()', () => {
  it('returns plain data with defaults, normalising path and method', () => {
    expect(webhook({ path: '/orders/created/', method: 'put' })).toEqual({
      kind: 'webhook', path: 'orders/created', method: 'PUT', secret: undefined, schema: undefined, signatureHeader: 'x-stepline-signature', toleranceSec: 300,
    })
    const wf = workflow('w', { triggers: [webhook({ path: 'a' }), schedule('*/5 * * * *')] })
    expect(wf.id).toBe('w')
  })

  it('refuses a bad path, method, secret, header or tolerance when built', () => {
    expect(() => webhook({ path: '' })).toThrow(/path/)
    expect(() => webhook({ path: 'a b' })).toThrow(/'a b'/)
    expect(() => webhook({ path: 'a/../b' })).toThrow(/path/)
    expect(() => webhook({ path: 'a?x=1' })).toThrow(/path/)
    expect(() => webhook({ path: 'a', method: 'GET' as 'POST' })).toThrow(/method.*"GET"/)
    expect(() => webhook({ path: 'a', secret: '' })).toThrow(/secret/)
    expect(() => webhook({ path: 'a', signatureHeader: 'bad header' })).toThrow(/signatureHeader/)
    expect(() => webhook({ path: 'a', toleranceSec: 0 })).toThrow(/toleranceSec/)
    expect(() => webhook({ path: 'a', schema: {} as never })).toThrow(/Standard Schema/)
  })
})

describe('schedule()', () => {
  it('returns plain data', () => {
    expect(schedule('0 8 * * 1-5', { timezone: 'Europe/Berlin', payload: { x: 1 } })).toEqual({ kind: 'schedule', cron: '0 8 * * 1-5', timezone: 'Europe/Berlin', payload: { x: 1 } })
  })
  it('refuses an invalid pattern or zone, naming it', () => {
    expect(() => schedule('61 * * * *')).toThrow(/'61 \* \* \* \*'/)
    expect(() => schedule('every tuesday')).toThrow(/invalid cron pattern 'every tuesday'/)
    expect(() => schedule('* * * * *', { timezone: 'Mars/Olympus' })).toThrow(/Mars\/Olympus/)
    expect(() => schedule('')).toThrow(/cron pattern/)
  })
})

describe('signatures', () => {
  it('verifies what signPayload signs, within the tolerance only', () => {
    const now = 1_700_000_000
    const header = signPayload('s', '{"a":1}', now)
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/)
    expect(verifySignature('s', header, '{"a":1}', 300, now + 10)).toBeUndefined()
    expect(verifySignature('s', header, new TextEncoder().encode('{"a":1}'), 300, now)).toBeUndefined()
    expect(verifySignature('s', header, '{"a":2}', 300, now)).toBe('mismatch')
    expect(verifySignature('t', header, '{"a":1}', 300, now)).toBe('mismatch')
    expect(verifySignature('s', header, '{"a":1}', 300, now + 301)).toBe('expired')
    expect(verifySignature('s', null, '{"a":1}', 300, now)).toBe('missing')
    expect(verifySignature('s', 'v1=abc', '{"a":1}', 300, now)).toBe('malformed')
    // Rotation: any matching v1 is enough.
    const other = signPayload('old', '{"a":1}', now).split(',')[1]
    expect(verifySignature('s', `${header},${other}`, '{"a":1}', 300, now)).toBeUndefined()
  })
})

describe('parseBytes', () => {
  it('reads sizes', () => {
    expect(parseBytes(10)).toBe(10)
    expect(parseBytes('1mb')).toBe(1048576)
    expect(parseBytes('512KB')).toBe(524288)
    expect(parseBytes('100')).toBe(100)
    expect(() => parseBytes('1 lot')).toThrow(/bodyLimit/)
    expect(() => parseBytes(-1)).toThrow(/bodyLimit/)
  })
})

import { describe, expect, it } from 'vitest'
import { memoryStore } from '@stepline/core'
import { fakeClock, testRun } from '@stepline/testing'
import { bestHourFrom, perContactSchedule, preferredChannel, sampleContacts, timezoneOffsetMinutes, type Contact } from './workflow'

/** The forEach item a mock was called for (mock functions see `ctx.item` typed as `undefined`). */
const itemOf = <T>(ctx: { item: unknown }): T => ctx.item as T
const now = '2025-12-31T15:00:00.000Z' // a Wednesday
const calendars: Record<string, string[]> = {
  acme: ['2026-01-01'],
  globex: ['2026-01-01', '2026-01-02'],
  initech: ['2026-01-01'],
  umbrella: [],
}

/** A `holidays` mock that counts real lookups per company, in place of the slow service. */
function countingCalendar() {
  const lookups = new Map<string, number>()
  const mock = (ctx: { item: Contact }): string[] => {
    lookups.set(ctx.item.companyId, (lookups.get(ctx.item.companyId) ?? 0) + 1)
    return calendars[ctx.item.companyId]!
  }
  return { lookups, mock }
}

describe('per-contact-schedule', () => {
  it('plans every contact and sorts the schedule by send time', async () => {
    const contacts = sampleContacts(20)
    const { mock } = countingCalendar()
    const run = await testRun(perContactSchedule, { contacts, now }, { mocks: { holidays: mock } })
    run.expectStatus('completed').expectOrder('contacts', 'holidays', 'calculate', 'plan-send', 'sort')
    const out = run.output!
    expect(out.map((s) => s.contactId).sort()).toEqual(contacts.map((c) => c.id))
    const times = out.map((s) => Date.parse(s.sendAt))
    expect(times).toEqual([...times].sort((a, b) => a - b))
    // Nothing is planned before `now`, on a weekend, or on the contact's company holiday.
    for (const s of out) {
      const contact = contacts.find((c) => c.id === s.contactId)!
      expect(Date.parse(s.sendAt)).toBeGreaterThan(Date.parse(now))
      expect(s.local).toMatch(/^(Mon|Tue|Wed|Thu|Fri) /)
      expect(calendars[contact.companyId]).not.toContain(s.local.slice(4, 14))
    }
    // The forEach output (before sorting) is in contact order.
    expect(run.steps.contacts.output.map((s) => s.contactId)).toEqual(contacts.map((c) => c.id))
  })

  it('looks each company calendar up once; the other contacts hit the cache', async () => {
    const { lookups, mock } = countingCalendar()
    const run = await testRun(perContactSchedule, { contacts: sampleContacts(20), now }, { mocks: { holidays: mock } })
    run.expectStatus('completed')
    expect(Object.fromEntries(lookups)).toEqual({ acme: 1, globex: 1, initech: 1, umbrella: 1 })
    expect(run.calls('holidays')).toBe(4)
    const completed = run.events.filter((e) => e.type === 'step:completed' && e.step === 'holidays')
    expect(completed).toHaveLength(20)
    expect(completed.filter((e) => e.cached)).toHaveLength(16)
    // A cache hit still gives the contact its company's calendar.
    expect(run.records('holidays').find((r) => r.item?.[0] === 5)?.output).toEqual(calendars.globex)
  })

  it('shares the cache between runs of one store until the 1 h ttl has passed', async () => {
    const store = memoryStore()
    const clock = fakeClock()
    const payload = { contacts: sampleContacts(8), now }
    const first = countingCalendar()
    await testRun(perContactSchedule, payload, { store, clock, mocks: { holidays: first.mock } })
    expect(first.lookups.size).toBe(4)

    const second = countingCalendar()
    clock.advance(59 * 60_000)
    await testRun(perContactSchedule, payload, { store, clock, mocks: { holidays: second.mock } })
    expect(second.lookups.size).toBe(0)

    const third = countingCalendar()
    clock.advance(2 * 60_000) // 61 min after the first lookups
    const run = await testRun(perContactSchedule, payload, { store, clock, mocks: { holidays: third.mock } })
    expect(Object.fromEntries(third.lookups)).toEqual({ acme: 1, globex: 1, initech: 1, umbrella: 1 })
    expect(run.calls('holidays')).toBe(4)
  })

  it('combines offset, best hour, channel and holidays into the next send time', async () => {
    const contacts: Contact[] = [
      { id: 'x', name: 'X', companyId: 'globex', timezone: 'America/New_York' },
      { id: 'y', name: 'Y', companyId: 'acme', timezone: 'Europe/Berlin' },
    ]
    const calc = { x: { bestHour: 9, channel: 'push' }, y: { bestHour: 17, channel: 'sms' } } as const
    const run = await testRun(perContactSchedule, { contacts, now }, {
      mocks: {
        holidays: countingCalendar().mock,
        'calculate[bestHour]': (ctx) => calc[itemOf<Contact>(ctx).id as 'x' | 'y'].bestHour,
        'calculate[channel]': (ctx) => calc[itemOf<Contact>(ctx).id as 'x' | 'y'].channel,
      },
    })
    run.expectStatus('completed')
    expect(run.output).toEqual([
      // Berlin is at 16:00 on Wednesday: 17:00 today is still ahead.
      { contactId: 'y', name: 'Y', channel: 'sms', sendAt: '2025-12-31T16:00:00.000Z', local: 'Wed 2025-12-31 17:00 (UTC+01:00)', skipped: [] },
      // New York is at 10:00, past 9:00: Thursday and Friday are globex holidays, then the weekend.
      {
        contactId: 'x', name: 'X', channel: 'push', sendAt: '2026-01-05T14:00:00.000Z', local: 'Mon 2026-01-05 09:00 (UTC-05:00)',
        skipped: ['2026-01-01 (company holiday)', '2026-01-02 (company holiday)', '2026-01-03 (weekend)', '2026-01-04 (weekend)'],
      },
    ])
  })

  it('the calculations: offsets with half hours, the most frequent hour, the most engaged channel', () => {
    expect(timezoneOffsetMinutes('Asia/Kolkata', new Date(now))).toBe(330)
    expect(timezoneOffsetMinutes('America/Los_Angeles', new Date(now))).toBe(-480)
    expect(timezoneOffsetMinutes('Europe/London', new Date(now))).toBe(0)
    expect(bestHourFrom([14, 9, 14, 9, 20])).toBe(9) // tie: the earlier hour
    expect(bestHourFrom([])).toBe(9)
    expect(preferredChannel({ email: 1, sms: 4, push: 4 })).toBe('sms')
    expect(preferredChannel({ email: 0, sms: 0, push: 2 })).toBe('push')
  })
})

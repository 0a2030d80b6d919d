/**
 * Per-contact send schedule: for each contact, three independent calculations run in parallel
 * (timezone offset, best send hour from the contact's history, preferred channel) and are
 * combined with the contact's company holiday calendar into the next send time. The calendar
 * is an expensive lookup shared by every contact of a company, so its step is cached by
 * company for an hour. The schedule comes out sorted by send time.
 */
import { workflow } from '@stepline/core'

export interface Contact {
  id: string
  name: string
  companyId: string
  /** IANA zone, e.g. 'Europe/Berlin'. */
  timezone: string
}

export type Channel = 'email' | 'sms' | 'push'

export interface Calculations {
  /** Minutes east of UTC at the reference time. */
  offsetMinutes: number
  /** Local hour (0–23) at which the contact usually opens messages. */
  bestHour: number
  channel: Channel
}

export interface ScheduledSend {
  contactId: string
  name: string
  channel: Channel
  /** UTC instant, ISO 8601. */
  sendAt: string
  /** The same instant on the contact's wall clock, e.g. 'Fri 2026-01-02 09:00 (UTC+01:00)'. */
  local: string
  /** Local days passed over before `sendAt`, with why. */
  skipped: string[]
}

const wait = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve, reject) => {
    const onAbort = (): void => (clearTimeout(t), reject(signal.reason))
    const t = setTimeout(() => (signal.removeEventListener('abort', onAbort), resolve()), ms)
    signal.addEventListener('abort', onAbort, { once: true })
  })

/** A small deterministic hash, so that the stand-in services answer the same every run. */
const hash = (s: string): number => [...s].reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7)

// ---- local stand-ins for the services --------------------------------------------------

const COMPANY_HOLIDAYS: Record<string, string[]> = {
  acme: ['2026-01-01', '2026-01-06'], // Germany (Bavaria)
  globex: ['2026-01-01', '2026-01-02', '2026-01-19'], // US, with a company bridge day
  initech: ['2026-01-01', '2026-01-02', '2026-01-12'], // Japan
  umbrella: ['2026-01-01'], // UK
}

/** The company holiday calendar service: slow (≈120 ms a lookup), so worth caching. */
export const holidayCalendars = {
  /** Real lookups made, per company. */
  lookups: new Map<string, number>(),
  async fetch(companyId: string, signal: AbortSignal): Promise<string[]> {
    this.lookups.set(companyId, (this.lookups.get(companyId) ?? 0) + 1)
    await wait(120, signal)
    return COMPANY_HOLIDAYS[companyId] ?? []
  },
}

/** Engagement history: the local hours at which the contact opened the last messages. */
export const engagement = {
  async openHours(contactId: string, signal: AbortSignal): Promise<number[]> {
    await wait(10, signal)
    const h = hash(contactId)
    const usual = 7 + (h % 8) // 7:00–14:00, with some opens an hour either side
    return Array.from({ length: 12 }, (_, i) => usual + (i % 5 === 1 ? -1 : i % 5 === 3 ? 1 : 0))
  },
}

/** Channel engagement counts from the preference service. */
export const preferences = {
  async engagement(contactId: string, signal: AbortSignal): Promise<Record<Channel, number>> {
    await wait(5, signal)
    const h = hash(contactId)
    return { email: h % 7, sms: (h >> 3) % 7, push: (h >> 6) % 7 }
  },
}

// ---- the calculations, pure so that they can be tested on their own ----------------------

/** Minutes east of UTC of `timeZone` at `at`, e.g. 330 for Asia/Kolkata. */
export function timezoneOffsetMinutes(timeZone: string, at: Date): number {
  const name = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' }).formatToParts(at).find((p) => p.type === 'timeZoneName')!.value
  const m = /^GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(name)
  if (!m) throw new Error(`timezone "${timeZone}": cannot read the offset from "${name}"`)
  return m[1] ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0
}

/** The most frequent hour; the earliest on a tie; 9 without history. */
export function bestHourFrom(openHours: number[]): number {
  const counts = new Map<number, number>()
  for (const h of openHours) counts.set(h, (counts.get(h) ?? 0) + 1)
  let best = 9
  let most = 0
  for (const [h, n] of [...counts].sort((a, b) => a[0] - b[0])) if (n > most) [best, most] = [h, n]
  return best
}

/** The channel with the most engagement; on a tie email, then sms, then push. */
export function preferredChannel(counts: Record<Channel, number>): Channel {
  return (['email', 'sms', 'push'] as const).reduce((best, c) => (counts[c] > counts[best] ? c : best), 'email' as Channel)
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat']
const HOUR = 3_600_000
const fmtOffset = (min: number): string => `UTC${min < 0 ? '-' : '+'}${String(Math.floor(Math.abs(min) / 60)).padStart(2, '0')}:${String(Math.abs(min) % 60).padStart(2, '0')}`

/**
 * The next weekday, not a company holiday, at the contact's best local hour after `now`.
 * The offset is the one at `now` (a DST change within the next days is not accounted for).
 */
export function planSend(contact: Contact, now: Date, holidays: readonly string[], calc: Calculations): ScheduledSend {
  const offset = calc.offsetMinutes * 60_000
  // Work in "local wall clock as if it were UTC", then shift back.
  const localNow = now.getTime() + offset
  const day = new Date(localNow)
  let candidate = Date.UTC(day.getUTCFullYear(), day.getUTCMonth(), day.getUTCDate(), calc.bestHour)
  if (candidate <= localNow) candidate += 24 * HOUR
  const skipped: string[] = []
  for (;;) {
    const d = new Date(candidate)
    const date = d.toISOString().slice(0, 10)
    const dow = d.getUTCDay()
    if (dow === 0 || dow === 6) skipped.push(`${date} (weekend)`)
    else if (holidays.includes(date)) skipped.push(`${date} (company holiday)`)
    else break
    candidate += 24 * HOUR
  }
  const local = new Date(candidate)
  return {
    contactId: contact.id,
    name: contact.name,
    channel: calc.channel,
    sendAt: new Date(candidate - offset).toISOString(),
    local: `${DAYS[local.getUTCDay()]} ${local.toISOString().slice(0, 10)} ${local.toISOString().slice(11, 16)} (${fmtOffset(calc.offsetMinutes)})`,
    skipped,
  }
}

// ---- the workflow ------------------------------------------------------------------------

const ZONES = ['Europe/Berlin', 'America/New_York', 'Asia/Tokyo', 'Europe/London', 'America/Los_Angeles', 'Asia/Kolkata', 'Australia/Sydney']
const COMPANIES = ['acme', 'globex', 'initech', 'umbrella']
const NAMES = ['Ada', 'Ben', 'Chloé', 'Dev', 'Emi', 'Finn', 'Gita', 'Hugo', 'Ines', 'Jun']

/** `count` deterministic contacts spread over 4 companies and 7 time zones. */
export function sampleContacts(count: number): Contact[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `c${String(i + 1).padStart(2, '0')}`,
    name: `${NAMES[i % NAMES.length]} ${String.fromCharCode(65 + (i % 26))}.`,
    companyId: COMPANIES[i % COMPANIES.length]!,
    timezone: ZONES[(i * 3) % ZONES.length]!,
  }))
}

export const perContactSchedule = workflow<{ contacts: Contact[]; now: string }>('per-contact-schedule')
  .forEach(
    'contacts',
    (ctx) => ctx.payload.contacts,
    (contact, flow) =>
      flow
        // Shared by every contact of the company and by every run of the engine's store, for 1 h.
        .step('holidays', (ctx) => holidayCalendars.fetch(contact.companyId, ctx.signal), {
          cache: { key: () => contact.companyId, ttl: '1h' },
        })
        .parallel('calculate', {
          offsetMinutes: (ctx) => timezoneOffsetMinutes(contact.timezone, new Date(ctx.payload.now)),
          bestHour: async (ctx) => bestHourFrom(await engagement.openHours(contact.id, ctx.signal)),
          channel: async (ctx) => preferredChannel(await preferences.engagement(contact.id, ctx.signal)),
        })
        .step('plan-send', (ctx) => planSend(contact, new Date(ctx.payload.now), ctx.steps.holidays.output, ctx.last)),
    // One contact at a time: the cache does not merge concurrent misses, so two contacts of one
    // company in flight together would both do the slow lookup. The calculations inside each
    // contact still run in parallel.
    { concurrency: 1 },
  )
  .step('sort', (ctx) => [...ctx.last].sort((a, b) => a.sendAt.localeCompare(b.sendAt) || a.contactId.localeCompare(b.contactId)))

import { Cron } from 'croner'
import { SteplineError, type AnyWorkflow, type Clock, type Engine, type WorkflowOptions } from '@stepline/core'
import { isScheduleTrigger, type ScheduleTrigger } from './triggers'

/** Options of `startSchedules`. */
export interface ScheduleRunnerOptions {
  /** Time source for ticks. Default: the engine's clock (`createEngine({ clock })`). */
  clock?: Clock
  /**
   * After a restart (or a stall such as a suspended laptop), start at most this many missed ticks
   * per schedule: the most recent ones, oldest first. `0` skips missed ticks. Default 10.
   */
  catchUp?: number
  /** Called when starting a tick's run fails (e.g. its payload fails the workflow's schema). Default: `console.error`. */
  onError?: (error: unknown, tick: { workflowId: string; index: number; at: Date }) => void
}

/** The schedules `startSchedules` armed. */
export interface Schedules {
  /** Cancels every timer; no tick starts a run afterwards. Runs already started go on. `engine.close()` stops them too. */
  stop(): void
  /** The next tick of every schedule, soonest first. */
  next(): Array<{ workflowId: string; index: number; cron: string; at: Date }>
  /** Resolves once the ticks due so far (missed ones included) have started their runs. */
  settled(): Promise<void>
}

/** Cache key under which the last tick handled by one schedule is kept in the store. */
const lastKey = (workflowId: string, index: number): string => `cron:last:${workflowId}:${index}`

/** Upper bound of one timer: Node fires longer `setTimeout`s at once, so a far tick re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1

interface Armed {
  workflow: AnyWorkflow
  workflowId: string
  index: number
  spec: ScheduleTrigger
  cron: Cron
  /** Ticks at or before this (ms) are handled. */
  last: number
  nextAt: number | undefined
  cancel: (() => void) | undefined
  /** Serialises this schedule's work: a tick starts only after the previous one did. */
  chain: Promise<void>
}

/**
 * Starts the `schedule(…)` triggers of `workflows` on `engine`: one timer per schedule on the
 * clock, one run per tick. Each tick starts with the idempotency key
 * `cron:<workflowId>:<index>:<tick ISO>`, so several workers sharing a store start it once.
 * The last tick handled is kept in the store; after a restart the ticks missed since then are
 * started (at most `catchUp`, oldest first). The payload is the trigger's `payload`, or
 * `{ scheduledAt: '<tick ISO>' }`. Throws a `SteplineError` (`OPTIONS_INVALID`) naming the
 * workflow for an invalid pattern or timezone.
 * @example
 * const report = workflow('report', { triggers: [schedule('0 9 * * 1-5', { timezone: 'Europe/Paris' })] })
 *   .step('send', (ctx) => send(ctx.payload.scheduledAt))
 * const schedules = startSchedules(engine, [report])
 * process.on('SIGTERM', () => { schedules.stop(); void engine.close() })
 */
export function startSchedules(engine: Engine, workflows: readonly AnyWorkflow[], options: ScheduleRunnerOptions = {}): Schedules {
  const clock = options.clock ?? engine.clock
  const catchUp = options.catchUp ?? 10
  if (!Number.isInteger(catchUp) || catchUp < 0) {
    throw new SteplineError('OPTIONS_INVALID', `startSchedules: expected \`catchUp\` as a whole number ≥ 0 (missed ticks to start after a restart), got ${String(catchUp)}.`)
  }
  const onError =
    options.onError ??
    ((error: unknown, tick: { workflowId: string; at: Date }) => console.error(`[stepline] schedule of "${tick.workflowId}" at ${tick.at.toISOString()}: could not start a run:`, error))
  const store = engine.store
  let stopped = false
  // An engine-like object from elsewhere may have no closeSignal: such one stops at its first tick after close.
  const closed = (engine as Partial<Engine>).closeSignal
  if (closed?.aborted === true) throw new SteplineError('ENGINE_CLOSED', 'startSchedules: the engine is closed; start the schedules on an open engine.')

  // Everything is checked before anything is armed: a bad pattern starts no schedule at all.
  const armed: Armed[] = []
  for (const workflow of workflows) {
    const triggers = (workflow as { options?: WorkflowOptions }).options?.triggers ?? []
    // Keys carry the trigger's position in `triggers`: reordering them makes a new schedule
    // (nothing caught up; a tick may start twice while old and new workers overlap).
    triggers.forEach((trigger, index) => {
      if (!isScheduleTrigger(trigger)) return
      const spec = trigger
      armed.push({ workflow, workflowId: workflow.id, index, spec, cron: compile(workflow.id, spec, clock.now()), last: 0, nextAt: undefined, cancel: undefined, chain: Promise.resolve() })
    })
  }

  const enqueue = (s: Armed, work: () => Promise<void>): void => {
    s.chain = s.chain.then(work).catch((e: unknown) => onError(e, { workflowId: s.workflowId, index: s.index, at: new Date(clock.now()) }))
  }

  /** Starts the ticks after `s.last` up to `now` (the `catchUp` most recent), then records the last. */
  const runDue = async (s: Armed, now: number, limit: number): Promise<void> => {
    // previousRuns is strictly before its reference: +1 ms makes a tick at `now` itself count.
    const due = limit === 0 ? [] : s.cron.previousRuns(limit, new Date(now + 1)).filter((d) => d.getTime() > s.last).reverse()
    /** A tick the store could not take: it stays due, for the next tick to start. */
    let unstarted: number | undefined
    for (const at of due) {
      if (stopped) return
      const iso = at.toISOString()
      try {
        const payload = s.spec.payload ?? { scheduledAt: iso }
        await engine.start(s.workflow, payload, { idempotencyKey: `cron:${s.workflowId}:${s.index}:${iso}` })
      } catch (e) {
        const code = (e as { code?: unknown }).code
        // An engine closed under us is a shutdown, not a failed tick: stop ticking.
        if (code === 'ENGINE_CLOSED') schedules.stop()
        if (stopped) return
        onError(e, { workflowId: s.workflowId, index: s.index, at })
        // A store that is down may be back by the next tick; a refused payload never will be.
        if (code === 'STORE_UNAVAILABLE') {
          unstarted = at.getTime()
          break
        }
      }
    }
    // Every tick up to `now` counts as handled, including those older than `catchUp` that were
    // skipped, and those whose run did not start for another reason than the store.
    const handled = unstarted === undefined ? Math.max(s.last, now) : unstarted - 1
    if (handled > s.last) {
      s.last = handled
      await store.setCache(lastKey(s.workflowId, s.index), new Date(handled).toISOString(), undefined)
    }
  }

  const arm = (s: Armed): void => {
    if (stopped) return
    const now = clock.now()
    const next = s.cron.nextRun(new Date(Math.max(now, s.last)))
    s.nextAt = next?.getTime()
    if (s.nextAt === undefined) return
    // A timer may fire a little early or be capped: the tick handler finds nothing due and re-arms.
    s.cancel = clock.setTimer(() => {
      s.cancel = undefined
      enqueue(s, async () => {
        try {
          await runDue(s, clock.now(), Math.max(catchUp, 1))
        } finally {
          // Re-armed even when the store failed (reported by `enqueue`): else the schedule would stop for good.
          arm(s)
        }
      })
    }, Math.min(Math.max(0, s.nextAt - now), MAX_TIMER_MS))
  }

  for (const s of armed) {
    enqueue(s, async () => {
      const now = clock.now()
      // Until the store says otherwise (it may be unreadable now): nothing before now is due.
      s.last = now
      try {
        const saved = await store.getCache(lastKey(s.workflowId, s.index), now)
        const savedAt = typeof saved?.value === 'string' ? Date.parse(saved.value) : NaN
        if (Number.isNaN(savedAt)) {
          // First start of this schedule: nothing was missed; remember where it began, so ticks
          // that pass while the process is down before its first tick are still caught up.
          await store.setCache(lastKey(s.workflowId, s.index), new Date(now).toISOString(), undefined)
        } else {
          s.last = savedAt
          await runDue(s, now, catchUp)
        }
      } finally {
        arm(s)
      }
    })
  }

  const onClose = (): void => schedules.stop()
  const schedules: Schedules = {
    stop() {
      stopped = true
      closed?.removeEventListener('abort', onClose)
      for (const s of armed) {
        s.cancel?.()
        s.cancel = undefined
        s.nextAt = undefined
      }
    },
    next() {
      return armed
        .filter((s) => s.nextAt !== undefined)
        .map((s) => ({ workflowId: s.workflowId, index: s.index, cron: s.spec.cron, at: new Date(s.nextAt!) }))
        .sort((a, b) => a.at.getTime() - b.at.getTime())
    },
    async settled() {
      // A tick's work may enqueue more (re-arming does not, but be safe): wait until the chains stop moving.
      for (;;) {
        const chains = armed.map((s) => s.chain)
        await Promise.all(chains)
        if (armed.every((s, i) => s.chain === chains[i])) return
      }
    },
  }
  // A closed engine starts nothing: its schedules stop then, not at their next tick (which would keep the process alive until then).
  closed?.addEventListener('abort', onClose, { once: true })
  return schedules
}

/** Builds the croner job for one schedule, with an error naming the workflow when it is not usable. */
function compile(workflowId: string, spec: ScheduleTrigger, now: number): Cron {
  const where = `Workflow "${workflowId}": schedule(${JSON.stringify(spec.cron)}${spec.timezone === undefined ? '' : `, { timezone: ${JSON.stringify(spec.timezone)} }`})`
  if (typeof spec.cron !== 'string') {
    throw new SteplineError('OPTIONS_INVALID', `${where}: expected a cron pattern string like '*/5 * * * *', got ${typeof spec.cron}.`)
  }
  let cron: Cron
  try {
    cron = new Cron(spec.cron, { paused: true, ...(spec.timezone === undefined ? {} : { timezone: spec.timezone }) })
    // The timezone is only checked when a date is computed.
    if (cron.nextRun(new Date(now)) === null) throw new Error('the pattern never matches a date')
  } catch (e) {
    throw new SteplineError(
      'OPTIONS_INVALID',
      `${where} is not a usable schedule: ${(e as Error).message}. Expected 5 fields (minute hour day month weekday, e.g. '*/5 * * * *') or 6 with seconds first, and an IANA timezone such as 'America/New_York'.`,
      { cause: e },
    )
  }
  return cron
}

import { createEngine, inlineExecutor, type Clock, type Executor } from '@stepline/core'

/** An executor that times every step attempt and delegates to the inline one. */
function timedExecutor(): Executor {
  const inline = inlineExecutor()
  return {
    name: 'timed',
    execute(node, fn, ctx) {
      const t0 = performance.now()
      const out = inline.execute(node, fn, ctx)
      void Promise.resolve(out).finally(() => console.log(`${node.name}: ${(performance.now() - t0).toFixed(1)} ms`))
      return out // a value or a promise; the runtime awaits only promises
    },
  }
}

/** A manual clock: time moves only when the test says so. */
function manualClock(): Clock & { advance(ms: number): void } {
  let now = 0
  const timers = new Set<{ at: number; fn: () => void }>()
  return {
    now: () => now,
    setTimer(fn, ms) {
      const t = { at: now + ms, fn }
      timers.add(t)
      return () => timers.delete(t)
    },
    advance(ms) {
      now += ms
      for (const t of [...timers].sort((a, b) => a.at - b.at)) {
        if (t.at <= now) {
          timers.delete(t)
          t.fn()
        }
      }
    },
  }
}

const engine = createEngine({ executor: timedExecutor(), clock: manualClock() })
void engine

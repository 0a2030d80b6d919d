import { describe, expect, it } from 'vitest'
import { ParallelError, StepError, type Ctx } from '@stepline/core'
import { fail, fakeClock, sequence, testRun, type MocksFor } from '@stepline/testing'
import { fanOutFanIn } from './workflow'

const job = { jobId: 'job-1', records: 9 }

// Every step that talks to a slow service is mocked; `cleanup` (10 ms) and `merge` run for real.
const services: MocksFor<typeof fanOutFanIn> = {
  init: { jobId: 'job-1', batches: [{ name: 'batch1', from: 0, to: 3 }, { name: 'batch2', from: 3, to: 6 }, { name: 'batch3', from: 6, to: 9 }] },
  'process[batch1]': { batch: 'batch1', processed: 3, checksum: 3 },
  'process[batch2]': { batch: 'batch2', processed: 3, checksum: 12 },
  'process[batch3]': { batch: 'batch3', processed: 3, checksum: 21 },
  'process[metadata]': { dataset: 'events', owner: 'data-platform' },
  report: { url: 'https://reports.test/job-1' },
  notify: { channel: '#data-jobs', messageId: 'msg-1' },
}

/** A branch that runs until its signal aborts, and notes that it was aborted. */
const hangUntilAborted = (name: string, aborted: string[]) => (ctx: Ctx<any, any, any, any>) =>
  new Promise((_, reject) => {
    ctx.signal.addEventListener('abort', () => {
      aborted.push(name)
      reject(ctx.signal.reason)
    })
  })

describe('fan-out-fan-in', () => {
  it('runs the real stand-ins: all batches merged, report and notification out, batches overlapping', async () => {
    const run = await testRun(fanOutFanIn, { jobId: 'job-7', records: 30 }, { clock: 'real' })
    run.expectStatus('completed')
    expect(run.output).toEqual({
      jobId: 'job-7',
      dataset: 'events-job-7',
      owner: 'data-platform',
      processed: 30,
      checksum: (29 * 30) / 2,
      report: 'https://reports.example.test/job-7?records=30',
      notified: expect.stringMatching(/^msg-\d+$/),
      tempFilesRemoved: 3,
    })
    // The stand-in chat API rate-limits the first post: one retry.
    run.expectAttempts('notify', 2)
    // Four branches of 30–80 ms ran side by side: far more step time than wall time.
    expect(run.summary.parallelEfficiency).toBeGreaterThan(1.5)
    expect(run.summary.criticalPath[0]).toBe('init')
    expect(run.summary.criticalPath.at(-1)).toBe('cleanup')
  })

  it('runs init first, the four branches in parallel, merge after all of them, cleanup last', async () => {
    const run = await testRun(fanOutFanIn, job, { mocks: services })
    run.expectStatus('completed').expectOrder('init', 'process', 'merge', 'publish', 'cleanup')
    const branches = ['process[batch1]', 'process[batch2]', 'process[batch3]', 'process[metadata]']
    const index = (type: string, step: string): number => run.trace.findIndex((t) => t.type === type && t.step === step)
    for (const b of branches) {
      expect(index('started', b)).toBeGreaterThan(index('completed', 'init'))
      expect(index('completed', b)).toBeLessThan(index('started', 'merge'))
    }
    expect(run.order.at(-1)).toBe('cleanup')
    expect(run.branches('is-report')).toEqual(['is-report', 'else'])
    expect(run.output).toEqual({
      jobId: 'job-1',
      dataset: 'events',
      owner: 'data-platform',
      processed: 9,
      checksum: 36,
      report: 'https://reports.test/job-1',
      notified: 'msg-1',
      tempFilesRemoved: 3,
    })
  })

  it('a failing batch aborts its siblings and fails the run with a ParallelError', async () => {
    const aborted: string[] = []
    const run = await testRun(fanOutFanIn, job, {
      mocks: {
        ...services,
        'process[batch1]': hangUntilAborted('batch1', aborted),
        'process[batch2]': hangUntilAborted('batch2', aborted),
        'process[metadata]': hangUntilAborted('metadata', aborted),
        'process[batch3]': fail('worker ran out of memory'),
      },
    })
    run.expectStatus('failed')
    expect(run.error).toBeInstanceOf(ParallelError)
    const error = run.error as ParallelError
    expect(error.step).toBe('process')
    expect(error.errors).toHaveLength(1) // the aborted siblings are not causes
    expect(error.errors[0]).toBeInstanceOf(StepError)
    expect((error.errors[0] as StepError).step).toBe('process[batch3]')
    expect(error.message).toContain('worker ran out of memory')
    // All three were in flight side by side when batch3 failed, and each saw its signal abort.
    expect(aborted.sort()).toEqual(['batch1', 'batch2', 'metadata'])
    for (const step of ['merge', 'publish', 'cleanup']) expect(run.ran(step)).toBe(false)
  })

  it('retries a rate-limited notify on a fixed 30 ms backoff of virtual time', async () => {
    const clock = fakeClock()
    const run = await testRun(fanOutFanIn, job, {
      clock,
      mocks: { ...services, notify: sequence(fail('429 rate limited'), fail('429 rate limited'), { channel: '#data-jobs', messageId: 'msg-3' }) },
    })
    run.expectStatus('completed').expectAttempts('notify', 3).expectAttempts('report', 1)
    expect(run.calls('notify')).toBe(3)
    expect(run.trace.filter((t) => t.type === 'retrying').map((t) => `${t.step}#${t.attempt}`)).toEqual(['notify#1', 'notify#2'])
    expect(clock.elapsed()).toBe(60)
    expect(run.output?.notified).toBe('msg-3')
  })

  it('a notify that keeps failing fails the run, naming its forEach item', async () => {
    const run = await testRun(fanOutFanIn, job, { mocks: { ...services, notify: fail('429 rate limited') } })
    run.expectStatus('failed').expectAttempts('notify', 3)
    expect(run.error).toBeInstanceOf(StepError)
    expect((run.error as StepError).step).toBe('publish[1]')
    expect(run.ran('cleanup')).toBe(false)
  })
})

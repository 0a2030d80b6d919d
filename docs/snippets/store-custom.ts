import { memoryStore, type RunRecord, type StepRecord, type Store } from '@stepline/core'

/**
 * A store that writes every journal entry through to an audit log and delegates the rest.
 * A real store keeps the same contract: `recordStep` settles only once the entry is durable,
 * and `createRun` is atomic per idempotency key and per run id.
 */
function auditedStore(audit: (line: string) => Promise<void>): Store {
  const inner = memoryStore()
  return {
    createRun: (run: RunRecord, options) => inner.createRun(run, options), // sync results are fine
    updateRun: (id, patch) => inner.updateRun(id, patch),
    async recordStep(runId: string, step: StepRecord) {
      await audit(`${runId} ${step.key} ${step.name} ${step.status}`) // durable before we settle
      inner.recordStep(runId, step)
    },
    getRun: (id) => inner.getRun(id),
    listRuns: (query) => inner.listRuns(query),
    getSteps: (runId) => inner.getSteps(runId),
    getCache: (key, now) => inner.getCache(key, now),
    setCache: (key, value, expiresAt) => inner.setCache(key, value, expiresAt),
    // Parking (sleep, waitForEvent) and events: `transitionRun` must be atomic, `putEvent` once per (run, name).
    transitionRun: (id, from, to, patch) => inner.transitionRun(id, from, to, patch),
    dueRuns: (now, limit) => inner.dueRuns(now, limit),
    nextWakeAt: () => inner.nextWakeAt(),
    waitingFor: (event, match) => inner.waitingFor(event, match),
    putEvent: (event) => inner.putEvent(event),
    getEvent: (runId, name) => inner.getEvent(runId, name),
    pruneRuns: (endedBefore) => inner.pruneRuns(endedBefore),
  }
}

const store = auditedStore(async (line) => console.log(line))
void store

/**
 * `stepline/testing` — re-exports `@stepline/testing`: run workflows in memory with mocks, a fake
 * clock, assertions and replay.
 *
 * @example
 * ```ts
 * import { testRun, sequence, fail } from 'stepline/testing';
 * ```
 */
export * from '@stepline/testing';

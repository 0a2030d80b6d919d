/**
 * `stepline` — the umbrella package: re-exports the public API of `@stepline/core`.
 *
 * @example
 * ```ts
 * import { workflow, createEngine } from 'stepline';
 * ```
 */
export * from '@stepline/core';

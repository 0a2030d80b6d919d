/** A mistake in how the command was called: printed with a hint to `--help`, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError'
}

/** A failure the command explains in full (the port is taken): printed as its message alone, exit code 1. */
export class CommandError extends Error {
  override readonly name = 'CommandError'
}

/** Exit codes of the CLI. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const

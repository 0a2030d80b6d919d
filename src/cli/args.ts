import { parseArgs, type ParseArgsConfig } from 'node:util'
import { UsageError } from './errors'

type Options = NonNullable<ParseArgsConfig['options']>

/** `node:util` parseArgs (strict, with positionals); its errors become usage errors that name the command. */
export function parse<const O extends Options>(command: string, argv: string[], options: O): ReturnType<typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>> {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true })
  } catch (error) {
    const msg = error instanceof Error ? error.message : String(error)
    throw new UsageError(`stepline ${command}: ${msg.replace(/\. To specify a positional argument.*$/s, '.')}`)
  }
}

/** A whole number ≥ 1 from an option, or a usage error. */
export function positiveInt(command: string, name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`stepline ${command}: expected --${name} as a whole number ≥ 1, got '${value}'.`)
  return n
}

/** A TCP port from an option: digits only (`0x50` and `8e1` are not ports), 0 to 65535; 0 picks a free one. */
export function portNumber(command: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback
  if (!/^\d+$/.test(value) || Number(value) > 65535) {
    throw new UsageError(`stepline ${command}: expected --port as a port number from 0 to 65535 (0 picks a free port), got '${value}'.`)
  }
  return Number(value)
}

/** A string option that must not be empty when given: `--host "$HOST"` with HOST unset passes ''. */
export function nonEmpty(command: string, name: string, value: string | undefined, fix: string): string | undefined {
  if (value === '') throw new UsageError(`stepline ${command}: --${name} is empty. ${fix}`)
  return value
}

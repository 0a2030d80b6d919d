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

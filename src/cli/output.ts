import { inspect } from 'node:util'

/** Whether a stream gets the live, coloured form. `FORCE_TTY=1` forces it (tests, piped terminals). */
export function isTty(stream: NodeJS.WriteStream): boolean {
  const force = process.env.FORCE_TTY
  if (force !== undefined && force !== '' && force !== '0') return true
  return stream.isTTY === true
}

/** Colours where a stream is a terminal, unless `NO_COLOR` is set to something (no-color.org: an empty value is unset). */
const useColor = (stream: NodeJS.WriteStream): boolean => !process.env.NO_COLOR && isTty(stream)

function palette(stream: () => NodeJS.WriteStream) {
  const paint = (open: number, close: number) => (s: string) => (useColor(stream()) ? `\x1b[${open}m${s}\x1b[${close}m` : s)
  return { green: paint(32, 39), red: paint(31, 39), yellow: paint(33, 39), cyan: paint(36, 39), dim: paint(2, 22), bold: paint(1, 22) }
}

/** Colours for what goes to stdout. */
export const c = palette(() => process.stdout)
/** Colours for what goes to stderr: they follow whether stderr is a terminal, not stdout. */
export const cErr = palette(() => process.stderr)

/** `12 ms`, `1.24 s`, `3m 05s`. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–'
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  const m = Math.floor(ms / 60_000)
  const s = Math.round((ms % 60_000) / 1000)
  return `${m}m ${String(s).padStart(2, '0')}s`
}

/** A local `YYYY-MM-DD HH:MM:SS`. */
export function formatTime(at: number | undefined): string {
  if (at === undefined) return '–'
  const d = new Date(at)
  const p = (n: number) => String(n).padStart(2, '0')
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`
}

/** One-line JSON of a value, cut to `max` characters. */
export function preview(value: unknown, max = 60): string {
  if (value === undefined) return ''
  let s: string
  try {
    s = JSON.stringify(value) ?? String(value)
  } catch {
    s = inspect(value, { depth: 2, breakLength: Infinity })
  }
  return s.length > max ? `${s.slice(0, max - 1)}…` : s
}

/** Pretty JSON for a run's result; falls back to `inspect` for values JSON cannot hold. */
export function prettyJson(value: unknown): string {
  if (value === undefined) return 'undefined'
  try {
    return JSON.stringify(value, null, 2) ?? String(value)
  } catch {
    return inspect(value, { depth: 6 })
  }
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/g

/** Visible width of a string (ANSI sequences excluded). */
export const visibleLength = (s: string): number => s.replace(ANSI, '').length

/** Left-aligned columns with a header row; `widths` grow to the longest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))))
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell + ' '.repeat(widths[i]! - visibleLength(cell))))
      .join('  ')
      .trimEnd()
  return [c.bold(line(header)), ...rows.map(line)].join('\n')
}

/** `Name: message`, then each `cause` (and each error of an AggregateError), indented. */
export function errorChain(error: unknown): string {
  const lines: string[] = []
  const seen = new Set<unknown>()
  const walk = (e: unknown, depth: number, prefix: string): void => {
    if (depth > 8 || seen.has(e)) return
    seen.add(e)
    const pad = '  '.repeat(depth)
    if (!(e instanceof Error)) {
      lines.push(`${pad}${prefix}${inspect(e, { depth: 2, breakLength: Infinity })}`)
      return
    }
    const code = (e as { code?: unknown }).code
    // A load failure is the CLI's own sentence, not an error type the user needs to see.
    const name = e.name === 'LoadError' ? '' : `${e.name}${typeof code === 'string' ? ` [${code}]` : ''}: `
    lines.push(`${pad}${prefix}${name}${e.message}`)
    const inner = (e as { errors?: unknown }).errors
    if (Array.isArray(inner)) inner.forEach((x, i) => walk(x, depth + 1, `[${i}] `))
    if (e.cause !== undefined) walk(e.cause, depth + 1, 'caused by: ')
  }
  walk(error, 0, '')
  return lines.join('\n')
}

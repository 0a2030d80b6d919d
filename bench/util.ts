/** Shared helpers of the benchmarks: medians, GC, heap and a table with ratios. */

export interface Row {
  name: string
  baseline: number
  engine: number
  unit: string
  note?: string
  /** For throughputs: ratio is engine / baseline; otherwise baseline / engine reads as "× slower". */
  higherIsBetter?: boolean
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2
}

export function gcNow(): void {
  ;(globalThis as { gc?: () => void }).gc?.()
}

export function heapUsed(): number {
  return process.memoryUsage().heapUsed
}

export function fmt(n: number): string {
  if (!Number.isFinite(n)) return String(n)
  const abs = Math.abs(n)
  const digits = abs >= 1000 ? 0 : abs >= 10 ? 1 : abs >= 1 ? 2 : 3
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

export function printRows(title: string, rows: Row[]): void {
  console.log(`\n## ${title}\n`)
  console.log('| measure | baseline | stepline | ratio (stepline/baseline) | note |')
  console.log('| --- | ---: | ---: | ---: | --- |')
  for (const r of rows) {
    const ratio = r.engine / r.baseline
    console.log(`| ${r.name} | ${fmt(r.baseline)} ${r.unit} | ${fmt(r.engine)} ${r.unit} | ${fmt(ratio)}× | ${r.note ?? ''} |`)
  }
}

// score.task.ts — runs in a worker thread; import only what the task needs.
import { createHash } from 'node:crypto'
import type { CpuInput } from '@stepline/core'

interface Doc { id: string; text: string }

// The default export is called once per task with a structured clone of the step's input.
// `payload` is there because the step asked for it: cpu(url, { payload: true }).
export default function score(input: CpuInput<Doc, { rounds: number }>): { id: string; digest: string } {
  let digest = createHash('sha256').update(input.last.text).digest()
  for (let i = 0; i < (input.payload?.rounds ?? 1); i++) digest = createHash('sha256').update(digest).digest()
  return { id: input.last.id, digest: digest.toString('hex') } // any clonable value, or a promise of one
}

// Other exports are picked with cpu(url, { export: 'wordCount' }) or cpu({ module: url, export: 'wordCount' }).
export function wordCount(input: CpuInput<Doc>): number {
  return input.last.text.split(/\s+/).length
}

#!/usr/bin/env node
/**
 * Keeps the TypeScript in docs/*.md and README.md honest: every ```ts block must sit between
 * `<!-- snippet: name -->` and `<!-- /snippet -->` and equal docs/snippets/<name>.ts
 * byte for byte (the snippet files are type-checked by the root tsconfig).
 * Exits 1 and names the file when a block drifted, is missing, or is outside markers.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs'
import { join, dirname, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const docs = join(root, 'docs')
const snippets = join(docs, 'snippets')
const problems = []
const used = new Set()

const OPEN = /^<!-- snippet: ([\w.-]+) -->$/
const CLOSE = '<!-- /snippet -->'
const FENCE_TS = /^```(ts|typescript|tsx)\s*$/

const pages = [...readdirSync(docs).filter((f) => f.endsWith('.md')).sort().map((f) => join(docs, f)), join(root, 'README.md')]
for (const path of pages) {
  const rel = relative(root, path)
  const lines = readFileSync(path, 'utf8').split('\n')
  let inFence = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    const open = OPEN.exec(line)
    if (open && !inFence) {
      const name = open[1]
      const end = lines.indexOf(CLOSE, i + 1)
      if (end === -1) {
        problems.push(`${rel}:${i + 1}: snippet "${name}" has no closing ${CLOSE}`)
        break
      }
      const body = lines.slice(i + 1, end)
      const snippetFile = join(snippets, `${name}.ts`)
      used.add(`${name}.ts`)
      if (!existsSync(snippetFile)) {
        problems.push(`${rel}:${i + 1}: snippet "${name}" has no file ${relative(root, snippetFile)}`)
      } else if (body.length < 2 || !FENCE_TS.test(body[0]) || body[body.length - 1] !== '```') {
        problems.push(`${rel}:${i + 1}: snippet "${name}" must hold exactly one \`\`\`ts block`)
      } else {
        const inDoc = body.slice(1, -1).join('\n')
        const onDisk = readFileSync(snippetFile, 'utf8').replace(/\n$/, '')
        if (inDoc !== onDisk) {
          const a = inDoc.split('\n')
          const b = onDisk.split('\n')
          let k = 0
          while (k < a.length && a[k] === b[k]) k++
          problems.push(
            `${rel}:${i + 2 + k}: snippet "${name}" differs from ${relative(root, snippetFile)} (line ${k + 1}): ` +
              `doc has ${JSON.stringify(a[k] ?? '<end>')}, file has ${JSON.stringify(b[k] ?? '<end>')}. Copy the file into the doc.`,
          )
        }
      }
      i = end
      continue
    }
    if (line.startsWith('```')) {
      if (!inFence && FENCE_TS.test(line)) {
        problems.push(`${rel}:${i + 1}: a \`\`\`ts block outside <!-- snippet: … --> markers; move it to docs/snippets/<name>.ts and include it`)
      }
      inFence = !inFence
    }
  }
}

if (existsSync(snippets)) {
  for (const f of readdirSync(snippets).filter((f) => f.endsWith('.ts'))) {
    if (!used.has(f)) problems.push(`docs/snippets/${f}: not included by any doc (include it or delete it)`)
  }
}

if (problems.length > 0) {
  console.error(`check-doc-snippets: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n  ${problems.join('\n  ')}`)
  process.exit(1)
}
console.log(`check-doc-snippets: ${used.size} snippets match their files`)

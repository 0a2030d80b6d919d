#!/usr/bin/env node
/** Rewrites every `<!-- snippet: name -->` block in docs/*.md and README.md from docs/snippets/<name>.ts. */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const docs = join(dirname(fileURLToPath(import.meta.url)), '..', 'docs')
const re = /<!-- snippet: ([\w.-]+) -->\n[\s\S]*?<!-- \/snippet -->/g
const pages = [...readdirSync(docs).filter((f) => f.endsWith('.md')).map((f) => join(docs, f)), join(docs, '..', 'README.md')]
for (const path of pages) {
  const text = readFileSync(path, 'utf8')
  const next = text.replace(re, (_, name) => {
    const code = readFileSync(join(docs, 'snippets', `${name}.ts`), 'utf8').replace(/\n$/, '')
    return `<!-- snippet: ${name} -->\n\`\`\`ts\n${code}\n\`\`\`\n<!-- /snippet -->`
  })
  if (next !== text) writeFileSync(path, next)
}

// Checks every relative link and #anchor in README.md and docs/*.md (GitHub's heading slugs), and
// that docs/README.md lists every page: a renamed heading or page breaks no link unnoticed.
// Run: node scripts/check-doc-links.mjs (part of `pnpm test`).
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'

const root = resolve(process.argv[2] ?? '.')
const docs = readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md'))
const pages = ['README.md', ...docs.map((f) => `docs/${f}`)]

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
const slug = (heading) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/<[^>]+>/g, '')
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')

/** The lines of a page outside code fences, with their numbers. */
function proseLines(file) {
  const out = []
  let fence = false
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (/^(```|~~~)/.test(line)) fence = !fence
      else if (!fence) out.push([line, i + 1])
    })
  return out
}

const anchorsOf = new Map()
function anchors(file) {
  let set = anchorsOf.get(file)
  if (set !== undefined) return set
  set = new Set()
  const seen = new Map()
  for (const [line] of proseLines(file)) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line)
    if (heading) {
      // A repeated heading gets -1, -2, … as on GitHub.
      const s = slug(heading[1])
      const n = seen.get(s) ?? 0
      seen.set(s, n + 1)
      set.add(n ? `${s}-${n}` : s)
    }
    for (const a of line.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) set.add(a[1])
  }
  anchorsOf.set(file, set)
  return set
}

const problems = []
let links = 0
for (const page of pages) {
  const file = join(root, page)
  for (const [line, n] of proseLines(file)) {
    for (const m of line.replace(/`[^`]*`/g, '').matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)|\bhref="([^"]+)"/g)) {
      const target = m[1] ?? m[2]
      if (/^[a-z]+:/i.test(target)) continue
      links++
      const [path, hash] = target.split('#')
      const dest = path ? resolve(dirname(file), decodeURIComponent(path)) : file
      if (!existsSync(dest)) problems.push(`${page}:${n}: ${target} → no such file ${relative(root, dest)}`)
      else if (hash === undefined) continue
      else if (statSync(dest).isDirectory() || !dest.endsWith('.md')) problems.push(`${page}:${n}: ${target} → an anchor on a page that is not markdown`)
      else if (!anchors(dest).has(hash)) problems.push(`${page}:${n}: ${target} → no heading #${hash} in ${relative(root, dest)}`)
    }
  }
}
const index = readFileSync(join(root, 'docs/README.md'), 'utf8')
for (const f of docs) if (f !== 'README.md' && !index.includes(`](${f})`)) problems.push(`docs/README.md does not list ${f}`)

console.log(`check-doc-links: ${links} relative links in ${pages.length} pages, ${problems.length} problem(s)`)
for (const p of problems) console.log(`  ${p}`)
if (problems.length > 0) {
  console.log('Fix the link, or the heading it points to (anchors are GitHub heading slugs).')
  process.exitCode = 1
}

import { existsSync, readdirSync, statSync } from 'node:fs'
import { extname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { AnyWorkflow } from '@stepline/core'
import { UsageError } from './errors'

const TS = new Set(['.ts', '.mts', '.cts', '.tsx'])
const LOADABLE = new Set([...TS, '.js', '.mjs', '.cjs'])

/** A workflow found in a module, with the file and export it came from. */
export interface Found {
  workflow: AnyWorkflow
  file: string
  exportName: string
}

let tsxRegistered = false

/** TypeScript modules load through tsx's ESM loader, registered in this process once. */
async function registerTsx(): Promise<void> {
  if (tsxRegistered) return
  tsxRegistered = true
  const { register } = await import('tsx/esm/api')
  register()
}

/** The module files a `serve` target names: the file itself, or the loadable files at the top of a directory. */
export function moduleFiles(target: string, dirAllowed: boolean): string[] {
  const path = resolve(target)
  if (!existsSync(path)) throw new UsageError(`No such file or directory: ${target}`)
  if (!statSync(path).isDirectory()) return [path]
  if (!dirAllowed) throw new UsageError(`Expected a workflow file, got the directory ${target}. Pass one file, e.g. ${join(target, 'workflow.ts')}.`)
  return readdirSync(path)
    .filter((f) => LOADABLE.has(extname(f)) && !/\.d\.[cm]?ts$/.test(f) && !/\.(test|spec)\.[cm]?[jt]sx?$/.test(f))
    .sort()
    .map((f) => join(path, f))
}

/** The `@stepline/core` module. */
export type Core = typeof import('@stepline/core')

/**
 * Imports the files and returns every exported workflow (each object once; a default export
 * first, then by export name), and the `@stepline/core` to run them with.
 *
 * That core is imported only after tsx's loader is registered, so that it resolves the way the
 * workflow files' own imports do (tsx applies tsconfig `paths`, e.g. to a monorepo's sources):
 * workflows are recognised, and registered with an engine, by the copy that built them.
 * Throws a `UsageError` when an export still looks like a workflow from another copy.
 */
export async function loadWorkflows(files: string[]): Promise<{ found: Found[]; core: Core }> {
  if (files.some((f) => TS.has(extname(f)))) await registerTsx()
  const core: Core = await import('@stepline/core')
  const { isWorkflow } = core
  const found: Found[] = []
  const seen = new Set<unknown>()
  for (const file of files) {
    let mod: Record<string, unknown>
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>
    } catch (error) {
      throw new Error(`Could not load ${file}`, { cause: error })
    }
    const names = Object.keys(mod).sort((a, b) => Number(b === 'default') - Number(a === 'default'))
    for (const exportName of names) {
      const value = mod[exportName]
      if (seen.has(value)) continue
      if (isWorkflow(value)) {
        seen.add(value)
        found.push({ workflow: value as unknown as AnyWorkflow, file, exportName })
      } else if (looksLikeWorkflow(value)) {
        throw new UsageError(
          `Export "${exportName}" of ${file} is a workflow built by another copy of @stepline/core than the CLI's. ` +
            `Import workflow() from 'stepline' (or the same @stepline/core the CLI uses) and make sure only one version is installed.`,
        )
      }
    }
  }
  return { found, core }
}

function looksLikeWorkflow(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return typeof v.id === 'string' && typeof v.plan === 'function' && typeof v.ops === 'function'
}

/** The workflow `--workflow` names, or the first one found; a usage error lists the ids when none matches. */
export function pickWorkflow(found: Found[], id: string | undefined, where: string): Found {
  const ids = found.map((f) => `"${f.workflow.id}"`).join(', ')
  if (found.length === 0) {
    throw new UsageError(`No workflow is exported by ${where}. Export one: export const order = workflow('order').step(…)`)
  }
  if (id === undefined) return found[0]!
  const hit = found.find((f) => f.workflow.id === id)
  if (hit === undefined) throw new UsageError(`No workflow "${id}" in ${where}; it exports ${ids}. Pick one with --workflow <id>.`)
  return hit
}

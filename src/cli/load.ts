import { existsSync, readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { extname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { AnyWorkflow } from '@stepline/core'
import { UsageError } from './errors'

const TS = new Set(['.ts', '.mts', '.cts', '.tsx'])
export const LOADABLE = new Set([...TS, '.js', '.mjs', '.cjs'])

/** A workflow found in a module, with the file and export it came from. */
export interface Found {
  workflow: AnyWorkflow
  file: string
  exportName: string
}

let tsxRegistered = false

/**
 * TypeScript modules load through tsx's loaders, registered in this process once: the ESM one,
 * and the CommonJS one for the files of a package without `"type": "module"` (as `tsx` does).
 */
async function registerTsx(): Promise<void> {
  if (tsxRegistered) return
  tsxRegistered = true
  const [esm, cjs] = await Promise.all([import('tsx/esm/api'), import('tsx/cjs/api')])
  esm.register()
  cjs.register()
}

/** The module files a `serve` target names: the file itself, or the loadable files at the top of a directory. */
export function moduleFiles(target: string, dirAllowed: boolean): string[] {
  const path = resolve(target)
  if (!existsSync(path)) throw new UsageError(`No such file or directory: ${target}`)
  if (!statSync(path).isDirectory()) {
    if (!LOADABLE.has(extname(path))) {
      throw new UsageError(`${target} is not a module Stepline can load: expected one of ${[...LOADABLE].join(', ')}. Pass the file that exports your workflows.`)
    }
    return [path]
  }
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
 * workflows are recognised, and registered with an engine, by the copy that built them. A file
 * that loads as CommonJS gets the CommonJS build of `@stepline/core` from its imports, so its
 * workflows run with that one.
 * Throws a `UsageError` when an export still looks like a workflow from another copy.
 */
export async function loadWorkflows(files: string[]): Promise<{ found: Found[]; core: Core }> {
  if (files.some((f) => TS.has(extname(f)))) await registerTsx()
  const esm: Core = await import('@stepline/core')
  let cjs: Core | undefined
  const copies = new Set<Core>()
  const found: Found[] = []
  const seen = new Set<unknown>()
  for (const file of files) {
    let mod: Record<string, unknown>
    try {
      mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>
    } catch (error) {
      // The cause says what is wrong (a syntax error, a missing import); printed below this line.
      throw new LoadError(`could not load ${file}`, { cause: error })
    }
    for (const [exportName, value] of exportsOf(mod)) {
      if (seen.has(value)) continue
      // A file that loads as CommonJS builds its workflows with the CommonJS build of @stepline/core.
      const copy = esm.isWorkflow(value) ? esm : looksLikeWorkflow(value) ? (cjs ??= createRequire(import.meta.url)('@stepline/core') as Core) : undefined
      if (copy?.isWorkflow(value)) {
        seen.add(value)
        copies.add(copy)
        found.push({ workflow: value as unknown as AnyWorkflow, file, exportName })
      } else if (looksLikeWorkflow(value)) {
        throw new UsageError(
          `Export "${exportName}" of ${file} is a workflow built by another copy of @stepline/core than the CLI's. ` +
            `Import workflow() from 'stepline' (or the same @stepline/core the CLI uses) and make sure only one version is installed.`,
        )
      }
    }
  }
  if (copies.size > 1) {
    throw new UsageError(`Some of ${files.join(', ')} load as CommonJS and others as ES modules, so their workflows come from two builds of @stepline/core. Give them one module format.`)
  }
  return { found, core: [...copies][0] ?? esm }
}

/**
 * A module's exports, a default export first, then by name. A file that loads as CommonJS has
 * them on `default` (its `module.exports`, a plain object), so a plain default's properties count
 * as exports too.
 */
function exportsOf(mod: Record<string, unknown>): [string, unknown][] {
  const def = mod.default
  const plain = typeof def === 'object' && def !== null && [Object.prototype, null].includes(Object.getPrototypeOf(def))
  const entries = plain ? [...Object.entries(mod).filter(([name]) => name !== 'default'), ...Object.entries(def)] : Object.entries(mod)
  return entries.sort(([a], [b]) => Number(b === 'default') - Number(a === 'default') || (a < b ? -1 : a > b ? 1 : 0))
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

/**
 * A usage error when two of the workflows found have one id (`id`, when given: the one the
 * command runs). The engine keys workflows by id, so one would stand in for the other unseen.
 */
export function checkUniqueIds(command: string, found: Found[], id?: string): void {
  for (const f of found) {
    const first = found.find((g) => g.workflow.id === f.workflow.id)!
    if (first !== f && (id === undefined || f.workflow.id === id)) {
      throw new UsageError(
        `stepline ${command}: workflow id "${f.workflow.id}" is exported twice, by ${first.file} (export "${first.exportName}") and by ${f.file} (export "${f.exportName}"). Ids must be unique: rename one.`,
      )
    }
  }
}

/** A workflow module that failed to load: its cause (a syntax error, a missing import) says why. */
export class LoadError extends Error {
  override readonly name = 'LoadError'
}

import { PlanError } from '../errors'
import { checkCpuModule } from '../executors/check-module'
import { modulePath } from '../executors/cpu'
import type { CpuRef, Plan, PlanNode } from '../plan/types'

/**
 * Refuses a workflow whose `cpu()` steps name a module that does not load or lacks the export,
 * when it is registered rather than at its first run.
 */
export function checkCpuModules(plan: Plan): void {
  for (const [step, ref] of cpuRefs(plan.nodes)) {
    const check = checkCpuModule(ref)
    const where = `Step "${step}" in workflow "${plan.workflowId}"`
    if (!check.ok) {
      throw new PlanError(plan.workflowId, step, `${where}: its cpu module ${modulePath(ref)} cannot be loaded: ${check.error}. Pass cpu(new URL('./task.js', import.meta.url)) with a path relative to the workflow's file.`)
    }
    const type = check.exports[ref.export]
    if (type !== 'function') {
      const exports = Object.keys(check.exports)
      throw new PlanError(
        plan.workflowId,
        step,
        `${where}: its cpu module ${modulePath(ref)} has ${type === undefined ? 'no export' : `an export that is a ${type}, not a function,`} "${ref.export}" (exports: ${exports.join(', ') || 'none'}). Export the handler as "${ref.export}" or pass cpu(url, { export: '…' }).`,
      )
    }
  }
}

function cpuRefs(nodes: readonly PlanNode[], out: [string, CpuRef][] = []): [string, CpuRef][] {
  for (const n of nodes) {
    switch (n.kind) {
      case 'step':
        if (n.cpu) out.push([n.name, n.cpu])
        break
      case 'parallel':
      case 'race':
        for (const b of n.branches) if (b.cpu) out.push([b.name, b.cpu])
        break
      case 'branch':
        for (const c of n.cases) cpuRefs(c.nodes, out)
        if (n.otherwise) cpuRefs(n.otherwise.nodes, out)
        break
      case 'forEach':
        cpuRefs(n.body, out)
        break
    }
  }
  return out
}

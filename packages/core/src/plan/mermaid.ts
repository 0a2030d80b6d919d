import type { Plan, PlanNode } from './types'

/**
 * Renders a plan as a Mermaid flowchart (`flowchart TD`): steps as boxes, `parallel` and
 * `race` as a fork and a join, branches as diamonds, `forEach` bodies as subgraphs.
 * @example
 * console.log(toMermaid(order.plan()))
 */
export function toMermaid(plan: Plan): string {
  const lines: string[] = ['flowchart TD', `  start(["${esc(plan.workflowId)}"])`]
  const end = renderSequence(plan.nodes, ['start'], lines, '  ')
  lines.push('  done(["end"])')
  for (const from of end) lines.push(`  ${from} --> done`)
  return lines.join('\n')
}

/**
 * Makes a name safe inside a quoted Mermaid label: quotes and angle brackets (read as HTML) become
 * entity codes, a `#word;` the user wrote is kept literal, and a line break (which would end the
 * statement) becomes `<br>`.
 */
const esc = (s: string): string =>
  s
    .replace(/#(?=\w+;)/g, '#35;')
    .replace(/"/g, '#quot;')
    .replace(/</g, '#lt;')
    .replace(/>/g, '#gt;')
    .replace(/\r\n|\r|\n/g, '<br>')
const key = (id: string): string => `n_${id.replace(/[^A-Za-z0-9]/g, '_')}`

/** Renders nodes in order from the given entry points; returns the exits of the last node. */
function renderSequence(nodes: PlanNode[], entries: string[], lines: string[], pad: string): string[] {
  let exits = entries
  for (const node of nodes) exits = renderNode(node, exits, lines, pad)
  return exits
}

function link(from: string[], to: string, lines: string[], pad: string, label?: string): void {
  for (const f of from) lines.push(`${pad}${f} -->${label ? `|${esc(label)}|` : ''} ${to}`)
}

function renderNode(node: PlanNode, entries: string[], lines: string[], pad: string): string[] {
  const k = key(node.id)
  const recover = node.onError !== undefined ? ' ⟲ onError' : ''
  switch (node.kind) {
    case 'step':
    case 'sleep':
    case 'waitForEvent': {
      const label =
        node.kind === 'sleep'
          ? `sleep ${node.name}${node.durationMs !== undefined ? ` (${node.durationMs} ms)` : ' (until)'}`
          : node.kind === 'waitForEvent'
            ? `wait ${node.name} for "${node.event}"${node.timeoutMs !== undefined ? ` (${node.timeoutMs} ms)` : ''}`
            : node.name
      lines.push(`${pad}${k}["${esc(label)}${recover}"]`)
      link(entries, k, lines, pad)
      return [k]
    }
    case 'parallel':
    case 'race': {
      const fork = `${k}_fork`
      const join = `${k}_join`
      lines.push(`${pad}${fork}{{"${node.kind} ${esc(node.name)}"}}`)
      link(entries, fork, lines, pad)
      lines.push(`${pad}${join}{{"${node.kind === 'race' ? 'first wins' : 'all done'}${recover}"}}`)
      for (const b of node.branches) {
        const bk = key(b.id)
        lines.push(`${pad}${bk}["${esc(b.name)}"]`)
        lines.push(`${pad}${fork} --> ${bk}`, `${pad}${bk} --> ${join}`)
      }
      return [join]
    }
    case 'branch': {
      const exits: string[] = []
      lines.push(`${pad}${k}{"${esc(node.name)}?${recover}"}`)
      link(entries, k, lines, pad)
      for (const c of node.cases) {
        const caseEntry = `${key(c.id)}_when`
        lines.push(`${pad}${caseEntry}(["${esc(c.name)}"])`)
        lines.push(`${pad}${k} --> ${caseEntry}`)
        exits.push(...renderSequence(c.nodes, [caseEntry], lines, pad))
      }
      if (node.otherwise) {
        const elseEntry = `${key(node.otherwise.id)}_when`
        lines.push(`${pad}${elseEntry}(["else"])`)
        lines.push(`${pad}${k} --> ${elseEntry}`)
        exits.push(...renderSequence(node.otherwise.nodes, [elseEntry], lines, pad))
      } else {
        exits.push(k)
      }
      return exits
    }
    case 'forEach': {
      const head = `${k}_each`
      lines.push(`${pad}subgraph ${k}["forEach ${esc(node.name)} (concurrency ${node.concurrency})${recover}"]`)
      lines.push(`${pad}  ${head}(["each item"])`)
      const bodyExits = renderSequence(node.body, [head], lines, `${pad}  `)
      lines.push(`${pad}end`)
      link(entries, head, lines, pad)
      return bodyExits
    }
  }
}

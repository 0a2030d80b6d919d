/**
 * All benchmarks, one process: `pnpm bench`. Each figure is printed beside a baseline measured
 * in the same run, as a ratio; nothing here asserts a wall-clock limit.
 */
import { coreBench } from './core'
import { printRows } from './util'

console.log(`node ${process.version}, ${(await import('node:os')).availableParallelism()} cores`)
printRows('core engine vs plain async (same process)', await coreBench())

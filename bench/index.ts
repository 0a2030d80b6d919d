/**
 * All benchmarks: `pnpm bench` (or `pnpm bench core|cpu|sqlite|parked|events|server`), in this process
 * except the servers of the server bench, which run in processes of their own. Each figure is
 * printed beside a baseline measured in the same run, as a ratio; nothing here asserts a
 * wall-clock limit. `@stepline/*` load from their built dist (bench/tsconfig.json).
 */
import { availableParallelism } from 'node:os'
import { coreBench } from './core'
import { cpuBench } from './cpu'
import { sqliteBench } from './sqlite'
import { parkedBench } from './parked'
import { eventsBench } from './events'
import { serverBench } from './server'
import { printRows } from './util'

const only = process.argv[2]
console.log(`node ${process.version}, ${availableParallelism()} cores`)
if (!only || only === 'core') printRows('core engine vs plain async (same process)', await coreBench())
if (!only || only === 'cpu') printRows('cpu() steps on the worker pool', await cpuBench())
if (!only || only === 'sqlite') printRows('SQLite store (one file, WAL) vs raw better-sqlite3 and the memory store', await sqliteBench())
if (!only || only === 'parked') printRows('parked runs (sleep) in the SQLite journal', await parkedBench())
if (!only || only === 'events') printRows('events into waiting runs: engine.send on SQLite vs the memory store', await eventsBench())
if (!only || only === 'server') printRows('HTTP server: webhook → run on SQLite vs bare node:http (wrk)', await serverBench())

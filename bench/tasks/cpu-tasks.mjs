// Task modules of the cpu benchmark: fixed work (not fixed time), so that threads sharing a
// core show up as a smaller speedup instead of hiding behind a clock.
import { pbkdf2Sync } from 'node:crypto'

export function noop() {
  return null
}

export function square(input) {
  return input.last * input.last
}

/** `input.last` pbkdf2 iterations of sha256: the caller calibrates it to about 20 ms. */
export function hash(input) {
  return pbkdf2Sync('password', 'salt', input.last, 32, 'sha256')[0]
}

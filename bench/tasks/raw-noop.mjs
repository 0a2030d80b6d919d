// The raw piscina baseline: the smallest task a worker can run.
export default function noop() {
  return null
}

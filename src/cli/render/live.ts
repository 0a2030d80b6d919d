/**
 * Redraws a block of lines in place with ANSI cursor movement: up over the last frame, clear
 * it, write the new one. Lines are cut to the terminal width so that none wraps, which would
 * throw the count off. Log lines go above the block.
 */
export class LiveView {
  readonly #stream: NodeJS.WriteStream
  readonly #frame: (now: number) => string[]
  #height = 0
  #timer: NodeJS.Timeout | undefined

  constructor(stream: NodeJS.WriteStream, frame: (now: number) => string[]) {
    this.#stream = stream
    this.#frame = frame
  }

  start(intervalMs = 80): void {
    this.#stream.write('\x1b[?25l')
    this.render()
    this.#timer = setInterval(() => this.render(), intervalMs)
    this.#timer.unref()
    process.once('exit', this.#restoreCursor)
  }

  readonly #restoreCursor = (): void => {
    this.#stream.write('\x1b[?25h')
  }

  #erase(): string {
    return this.#height > 0 ? `\x1b[${this.#height}A\r\x1b[J` : ''
  }

  render(): void {
    const width = this.#stream.columns || 120
    const lines = this.#frame(Date.now()).map((l) => cut(l, width - 1))
    this.#stream.write(this.#erase() + lines.map((l) => `\x1b[2K${l}\n`).join(''))
    this.#height = lines.length
  }

  /** Writes a line above the live block. */
  log(line: string): void {
    this.#stream.write(this.#erase() + line + '\n')
    this.#height = 0
    if (this.#timer !== undefined) this.render()
  }

  /** Draws the final frame and leaves it on screen. */
  stop(): void {
    if (this.#timer === undefined) return
    clearInterval(this.#timer)
    this.#timer = undefined
    this.render()
    this.#restoreCursor()
    process.off('exit', this.#restoreCursor)
  }
}

const ANSI = /\x1b\[[0-9;?]*[A-Za-z]/y

/** Cuts a line to `width` visible characters, keeping ANSI sequences intact. */
function cut(line: string, width: number): string {
  let visible = 0
  let i = 0
  while (i < line.length) {
    ANSI.lastIndex = i
    const m = ANSI.exec(line)
    if (m) {
      i += m[0].length
      continue
    }
    if (visible === width) return line.slice(0, i) + '\x1b[0m'
    visible++
    i += line.codePointAt(i)! > 0xffff ? 2 : 1
  }
  return line
}

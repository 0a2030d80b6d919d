// A Request or Response whose body is bytes already in memory, kept out of undici's web stream
// until something asks for the body. On Node 20 every `ReadableStream` costs more than the rest
// of a small request (it is made transferable on construction), and the handler and the Node
// translation never need one: they take the bytes with `takeBytes`. Anyone else reading the
// body (`.body`, `.json()`, `.text()`, `clone()` …) gets what a plain Request/Response gives.

const SOURCE = Symbol('stepline.lazyBody')

interface Source {
  /** null: no body at all (a GET), which reads as empty and is never used up. */
  bytes: Uint8Array | null
  /** The undici Response that serves the body once something reads it another way. */
  view: Response | undefined
  /** `takeBytes` handed the bytes out: the body reads as used. */
  taken: boolean
}

interface Holder {
  [SOURCE]: Source
  /** Read only when the body is read another way (a `.formData()` needs the content type): never on the fast path. */
  readonly headers: Headers
}

function viewOf(holder: Holder): Response {
  const source = holder[SOURCE]
  if (source.view !== undefined) return source.view
  const contentType = holder.headers.get('content-type')
  const view = new Response(source.bytes, contentType === null ? undefined : { headers: { 'content-type': contentType } })
  // Taken bytes were consumed: the stream is disturbed and the methods refuse, as for any used body.
  if (source.taken) void view.arrayBuffer()
  return (source.view = view)
}

const delegate = <K extends 'arrayBuffer' | 'blob' | 'formData' | 'json' | 'text'>(name: K) =>
  function (this: Holder) {
    return viewOf(this)[name]()
  }

const descriptors: PropertyDescriptorMap = {
  body: {
    get(this: Holder) {
      return viewOf(this).body
    },
  },
  bodyUsed: {
    get(this: Holder) {
      const source = this[SOURCE]
      return source.taken || (source.view?.bodyUsed ?? false)
    },
  },
  arrayBuffer: { value: delegate('arrayBuffer') },
  blob: { value: delegate('blob') },
  formData: { value: delegate('formData') },
  json: { value: delegate('json') },
  text: { value: delegate('text') },
  bytes: {
    async value(this: Holder) {
      return new Uint8Array(await viewOf(this).arrayBuffer())
    },
  },
}

/** Gives a Request or Response subclass the lazy body; its constructor calls `holdBytes`. */
export function installLazyBody(target: { prototype: object }): void {
  Object.defineProperties(target.prototype, descriptors)
}

/** Keeps `bytes` as the body of `message` (built with a null body by a class given `installLazyBody`). */
export function holdBytes(message: Request | Response, bytes: Uint8Array | null): void {
  ;(message as unknown as Holder)[SOURCE] = { bytes, view: undefined, taken: false }
}

/**
 * The bytes of a body nobody has read yet, which counts as reading it; undefined for any other
 * Request or Response (read it as a stream).
 * @example
 * const bytes = takeBytes(request) ?? new Uint8Array(await request.arrayBuffer())
 */
export function takeBytes(message: Request | Response): Uint8Array | undefined {
  const source = (message as unknown as Partial<Holder>)[SOURCE]
  if (source === undefined || source.taken || source.view !== undefined) return undefined
  if (source.bytes === null) return new Uint8Array(0)
  source.taken = true
  return source.bytes
}

/** The bytes of a lazy body (null: none) for a clone; undefined once read or locked. */
export function heldBytes(message: Request | Response): Uint8Array | null | undefined {
  const source = (message as unknown as Partial<Holder>)[SOURCE]
  if (source === undefined || source.taken) return undefined
  if (source.view !== undefined && (source.view.bodyUsed || source.view.body?.locked === true)) return undefined
  return source.bytes
}

const responseHeaders = Object.getOwnPropertyDescriptor(Response.prototype, 'headers')!.get as (this: Response) => Headers

/**
 * A Response with bytes for its body, which the Node translation writes without a web stream.
 * Its headers stay a plain object until something reads `headers` (undici's Headers cost more
 * to fill and to walk than the rest of a small response), so the Node translation can hand
 * them to `writeHead` as they are.
 * @example
 * return new BytesResponse(encoder.encode('{"ok":true}'), 200, { 'content-type': 'application/json' })
 */
export class BytesResponse extends Response {
  #plain: Record<string, string> | undefined

  constructor(bytes: Uint8Array, status: number, headers: Record<string, string>) {
    super(null, { status })
    this.#plain = headers
    holdBytes(this, bytes)
  }

  // @ts-expect-error -- undici-types declares `headers` as a property; on the prototype it is an accessor, like this one.
  override get headers(): Headers {
    const headers = responseHeaders.call(this)
    const plain = this.#plain
    if (plain !== undefined) {
      this.#plain = undefined
      for (const name in plain) headers.set(name, plain[name]!)
    }
    return headers
  }

  /** The headers as given, while nobody has read (and so maybe changed) `headers`. */
  plainHeaders(): Readonly<Record<string, string>> | undefined {
    return this.#plain
  }

  // @ts-expect-error -- undici-types declares `clone` as a property; on the prototype it is a method, like this one.
  override clone(): Response {
    const bytes = heldBytes(this)
    if (bytes == null) throw new TypeError('Response.clone: the body has already been read.')
    return new BytesResponse(bytes, this.status, Object.fromEntries(this.headers))
  }
}
installLazyBody(BytesResponse)

import type { ServerResponse } from 'node:http'
import { heldBytes, holdBytes, installLazyBody } from '../lazy-body'
import type { Reply } from '../respond'

// On Node 20 an undici `Request` costs ~25 µs to make (and its AbortSignal lengthens GC pauses):
// more than everything else in serving a small webhook. `createHandler`'s handler only reads
// method, url, headers, signal and the body's bytes, so for it the Node translation makes a
// LightRequest instead: `instanceof Request`, every property and method there, but the undici
// object behind the rarely used ones (`cache`, `mode`, `referrer` …) is made on first use.

const LIGHT = Symbol.for('stepline.acceptsLightRequests')

/** A handler's answer before it is a Response (see `JsonReply`): what the Node adapters write best. */
export type ReplyFunction = (request: Request) => Promise<Reply>

/**
 * Marks a fetch handler as reading nothing of a request but method, url, headers, signal and
 * body. `replies`, when given, answers the same requests without making a Response: the Node
 * adapters call it instead of the handler.
 */
export function markAcceptsLightRequests<T extends object>(handler: T, replies?: ReplyFunction): T {
  Object.defineProperty(handler, LIGHT, { value: replies ?? true })
  return handler
}

/**
 * How a Node adapter calls `handler`: with LightRequests if it was marked for them, and through
 * the reply function it was marked with (no Response made), else the handler itself.
 */
export function nodeCallOf(handler: (request: Request) => Promise<Response>): { light: boolean; answer: ReplyFunction } {
  const marked = (handler as { [LIGHT]?: unknown })[LIGHT]
  return { light: marked !== undefined, answer: typeof marked === 'function' ? (marked as ReplyFunction) : handler }
}

/**
 * A signal that aborts when the client goes away before the response is written, so that a
 * handler streaming SSE can stop. Made on first read only: most handlers never look.
 */
export function clientGoneSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController()
  const gone = (): boolean => !res.writableFinished
  if (res.closed) {
    if (gone()) controller.abort(new Error('The client closed the connection.'))
  } else {
    res.once('close', () => {
      if (gone()) controller.abort(new Error('The client closed the connection.'))
    })
  }
  return controller.signal
}

/** What a LightRequest is made of: all a Request needs, already at hand in Node's request. */
export interface LightParts {
  /** A URL known to parse (the maker checked it). */
  url: string
  /** The part of `url` from its path on: `/webhooks/orders?x=1`. */
  target: string
  method: string
  /** `rawHeaders` of the Node request: name, value, name, value … */
  rawHeaders: readonly string[]
  /** The whole body, or null when there is none (GET, HEAD). */
  bytes: Uint8Array | null
  res: ServerResponse
}

/** The Headers of Node's `rawHeaders`, repeated ones kept, HTTP/2 pseudo-headers (`:path`) left out. */
export function headersOf(raw: readonly string[]): Headers {
  const headers = new Headers()
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!
    if (name.charCodeAt(0) !== 58) headers.append(name, raw[i + 1]!)
  }
  return headers
}

class LightRequestImpl {
  readonly url: string
  readonly method: string
  readonly #parts: LightParts
  #headers: Headers | undefined
  #signal: AbortSignal | undefined
  #real: Request | undefined
  #parsedUrl: URL | undefined

  constructor(parts: LightParts) {
    this.url = parts.url
    this.method = parts.method
    this.#parts = parts
    holdBytes(this as unknown as Request, parts.bytes)
  }

  get headers(): Headers {
    return (this.#headers ??= headersOf(this.#parts.rawHeaders))
  }

  /** `headers.get(lowerName)` without making the Headers, while nobody has (nor could have changed them). */
  header(lowerName: string): string | null {
    if (this.#headers !== undefined) return this.#headers.get(lowerName)
    const raw = this.#parts.rawHeaders
    let value: string | null = null
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const name = raw[i]!
      if (!sameName(name, lowerName)) continue
      // As Headers.get: repeated headers joined by ', ', values trimmed.
      const v = raw[i + 1]!.trim()
      value = value === null ? v : `${value}, ${v}`
    }
    return value
  }

  get signal(): AbortSignal {
    return (this.#signal ??= clientGoneSignal(this.#parts.res))
  }

  /** `url` parsed, once (see `parsedUrlOf`). */
  parsedUrl(): URL {
    return (this.#parsedUrl ??= new URL(this.url))
  }

  /** `new URL(url).pathname`, read off the target without parsing it when it is plain. */
  pathname(): string {
    return plainPathname(this.#parts.target) ?? this.parsedUrl().pathname
  }

  /** The undici Request behind the properties this class does not answer itself (no body: the bytes answer for it). */
  real(): Request {
    return (this.#real ??= new Request(this.url, { method: this.method, headers: this.headers, signal: this.signal }))
  }

  clone(): Request {
    const bytes = heldBytes(this as unknown as Request)
    if (bytes === undefined) throw new TypeError('Request.clone: the body has already been read.')
    return lightRequest({ ...this.#parts, bytes })
  }
}

/**
 * The first value of a header in Node's `rawHeaders`, or undefined. Reading `req.headers`
 * instead makes Node build the whole headers object, which a small webhook never needs.
 */
export function firstRawHeader(raw: readonly string[], lowerName: string): string | undefined {
  for (let i = 0; i + 1 < raw.length; i += 2) if (sameName(raw[i]!, lowerName)) return raw[i + 1]!
  return undefined
}

/** `name.toLowerCase() === lowerName` for header names (ASCII), without making the lower-case string. */
function sameName(name: string, lowerName: string): boolean {
  if (name.length !== lowerName.length) return false
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i)
    // A–Z to a–z; header names are tokens, so nothing else changes case.
    if ((c >= 65 && c <= 90 ? c + 32 : c) !== lowerName.charCodeAt(i)) return false
  }
  return true
}

// Characters a URL parser keeps as they are in a path; a dot segment (`/./`, `/../`) is not plain.
const PLAIN_PATH = /^\/[A-Za-z0-9\-._~/]*$/

/** The pathname of an origin-form target (`/a/b?q`) when parsing could not change it, else undefined. */
function plainPathname(target: string): string | undefined {
  const q = target.indexOf('?')
  const path = q === -1 ? target : target.slice(0, q)
  return PLAIN_PATH.test(path) && !path.includes('/.') ? path : undefined
}

/**
 * The URL of a request, parsed: a LightRequest parses its own once, so that a request is parsed
 * at most once however many readers ask. Treat it as read-only.
 * @example
 * const { searchParams } = parsedUrlOf(request)
 */
export function parsedUrlOf(request: Request): URL {
  return request instanceof LightRequestImpl ? request.parsedUrl() : new URL(request.url)
}

/**
 * `new URL(request.url).pathname`; for a LightRequest with a plain path, without parsing the URL.
 * @example
 * const path = pathnameOf(request) // '/webhooks/orders'
 */
export function pathnameOf(request: Request): string {
  return request instanceof LightRequestImpl ? request.pathname() : new URL(request.url).pathname
}

/**
 * A request header, as `request.headers.get(name)`; for a LightRequest read straight from Node's
 * raw headers. `lowerName` is lower case.
 * @example
 * const key = headerOf(request, 'idempotency-key')
 */
export function headerOf(request: Request, lowerName: string): string | null {
  return request instanceof LightRequestImpl ? request.header(lowerName) : request.headers.get(lowerName)
}

// A LightRequest is a Request to `instanceof` and to every reader; what it does not answer itself
// (nor the lazy body) comes from `real()`.
Object.setPrototypeOf(LightRequestImpl.prototype, Request.prototype)
installLazyBody(LightRequestImpl)
for (const name of Reflect.ownKeys(Request.prototype)) {
  if (name === 'constructor' || name === 'url' || name === 'method' || Object.hasOwn(LightRequestImpl.prototype, name)) continue
  const described = Object.getOwnPropertyDescriptor(Request.prototype, name)!
  if (described.get !== undefined) {
    Object.defineProperty(LightRequestImpl.prototype, name, {
      get(this: LightRequestImpl) {
        return (this.real() as unknown as Record<PropertyKey, unknown>)[name]
      },
      configurable: true,
    })
  } else if (typeof described.value === 'function') {
    Object.defineProperty(LightRequestImpl.prototype, name, {
      value(this: LightRequestImpl, ...args: unknown[]) {
        const real = this.real() as unknown as Record<PropertyKey, (...a: unknown[]) => unknown>
        return real[name]!(...args)
      },
      configurable: true,
      writable: true,
    })
  }
}

/**
 * A Request for a Node request whose body (if any) is already in memory, made without undici.
 * @example
 * const request = lightRequest({ url: requestUrl(req), method: 'POST', rawHeaders: req.rawHeaders, bytes, res })
 */
export function lightRequest(parts: LightParts): Request {
  return new LightRequestImpl(parts) as unknown as Request
}

/**
 * An undici Request with the same method, url, headers and (unread) body, for code that hands
 * the request on to undici itself (`fetch(request)`, `new Request(request)`), which a
 * LightRequest cannot satisfy. Any other Request is returned as it is.
 * @example
 * onError(error, realRequest(request))
 */
export function realRequest(request: Request): Request {
  if (!(request instanceof LightRequestImpl)) return request
  // A bodyless (GET) request holds null; a body already taken is gone: both forward none.
  return new Request(request.url, { method: request.method, headers: request.headers, body: heldBytes(request as unknown as Request) ?? null })
}

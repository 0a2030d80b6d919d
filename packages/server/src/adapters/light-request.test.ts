import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { inspect } from 'node:util'
import { describe, expect, it } from 'vitest'
import type { FetchHandler } from '../handler'
import { toNodeListener } from '../node'
import { takeBytes } from '../lazy-body'
import { rawExchange, urlOf } from '../../test/adapter-suite'
import { headerOf, markAcceptsLightRequests, parsedUrlOf, pathnameOf, realRequest } from './light-request'

/** Serves `handler` (marked: it gets LightRequests) and sends one request to it. */
async function exchange(handler: FetchHandler, init: RequestInit & { path?: string } = {}): Promise<Response> {
  const server = createServer(toNodeListener(markAcceptsLightRequests(handler)))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${init.path ?? '/p?q=1'}`, init)
    return new Response(await res.arrayBuffer(), { status: res.status, headers: res.headers })
  } finally {
    server.closeAllConnections()
    server.close()
  }
}

/** Serves `handler` (marked) and sends it raw bytes, for what fetch cannot send; resolves with all the server wrote. */
async function rawTo(handler: FetchHandler, request: string): Promise<string> {
  const server = createServer(toNodeListener(markAcceptsLightRequests(handler)))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  try {
    return await rawExchange(urlOf(server), request)
  } finally {
    server.close()
  }
}

describe('LightRequest (what createHandler gets from the Node adapters)', () => {
  it('is a Request with method, url, headers and a JSON body', async () => {
    const res = await exchange(
      async (request) => {
        const real = new Request('http://x/', { method: 'POST' })
        return Response.json({
          isRequest: request instanceof Request,
          tag: Object.prototype.toString.call(request),
          method: request.method,
          path: new URL(request.url).pathname + new URL(request.url).search,
          custom: request.headers.get('x-custom'),
          body: await request.json(),
          used: request.bodyUsed,
          // Properties it does not answer itself come from an undici Request.
          delegated: [request.cache, request.mode, request.redirect, request.credentials].join(),
          expected: [real.cache, real.mode, real.redirect, real.credentials].join(),
          inspected: inspect(request).length > 0,
        })
      },
      { method: 'POST', headers: { 'x-custom': 'abc', 'content-type': 'application/json' }, body: '{"a":1}' },
    )
    const seen = (await res.json()) as Record<string, unknown>
    expect(seen).toMatchObject({ isRequest: true, tag: '[object Request]', method: 'POST', path: '/p?q=1', custom: 'abc', body: { a: 1 }, used: true, inspected: true })
    expect(seen.delegated).toBe(seen.expected)
  })

  it('has a null body on GET, and clones a POST body that reads twice', async () => {
    const get = await exchange(async (request) => Response.json({ body: request.body, text: await request.text(), used: request.bodyUsed }))
    expect(await get.json()).toEqual({ body: null, text: '', used: false })
    const post = await exchange(
      async (request) => {
        const copy = request.clone()
        return Response.json({ a: await request.text(), b: await new Response(copy.body).text(), again: await request.text().catch((e: Error) => e.name) })
      },
      { method: 'POST', body: 'twice' },
    )
    expect(await post.json()).toEqual({ a: 'twice', b: 'twice', again: 'TypeError' })
  })

  it('hands its bytes to takeBytes once; realRequest gives undici what it can forward', async () => {
    const res = await exchange(
      async (request) => {
        const forwarded = realRequest(request)
        const forwardedCopy = new Request(forwarded) // undici accepts it: a genuine Request
        const bytes = takeBytes(request)
        return Response.json({ bytes: new TextDecoder().decode(bytes), second: takeBytes(request) === undefined, forwarded: await forwardedCopy.text(), method: forwardedCopy.method })
      },
      { method: 'PUT', body: 'payload' },
    )
    expect(await res.json()).toEqual({ bytes: 'payload', second: true, forwarded: 'payload', method: 'PUT' })
  })

  it('headerOf reads a header as Headers.get does: any case, repeats joined, absent is null', async () => {
    const out = await rawTo(async (request) => {
      const light = ['x-twice', 'x-case', 'x-none'].map((n) => headerOf(request, n))
      const real = ['x-twice', 'x-case', 'x-none'].map((n) => request.headers.get(n))
      const text = JSON.stringify({ light, real, after: headerOf(request, 'x-case') })
      return new Response(text, { headers: { 'content-length': String(Buffer.byteLength(text)) } })
    }, 'GET / HTTP/1.1\r\nHost: localhost\r\nX-Twice: a\r\nx-twice:  b \r\nX-CASE: Up\r\nConnection: close\r\n\r\n')
    const seen = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4)) as { light: unknown[]; real: unknown[]; after: unknown }
    expect(seen.light).toEqual(['a, b', 'Up', null])
    expect(seen.real).toEqual(seen.light)
    expect(seen.after).toBe('Up')
  })

  it('answers 400 for a Host header that makes no URL, as the full Request does', async () => {
    const out = await rawTo(async () => new Response('unreached'), 'GET / HTTP/1.1\r\nHost: exa mple\r\nConnection: close\r\n\r\n')
    expect(out).toMatch(/^HTTP\/1\.1 400/)
    expect(out).toMatch(/Host header/)
  })

  it('reads its body as form data by the content type the client sent', async () => {
    const res = await exchange(async (request) => Response.json(Object.fromEntries(await request.formData())), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1&b=two',
    })
    expect(await res.json()).toEqual({ a: '1', b: 'two' })
  })

  it('parsedUrlOf parses a LightRequest once; any other Request is parsed anew', async () => {
    let seen: [URL, URL] | undefined
    const res = await exchange(async (request) => {
      seen = [parsedUrlOf(request), parsedUrlOf(request)]
      return new Response(parsedUrlOf(request).searchParams.get('q'))
    }, { path: '/a%20b?q=1' })
    expect(await res.text()).toBe('1')
    expect(seen![0]).toBe(seen![1])
    expect(seen![0].pathname).toBe('/a%20b')
    const plain = new Request('http://x.test/p?q=2')
    expect(parsedUrlOf(plain).searchParams.get('q')).toBe('2')
    expect(parsedUrlOf(plain)).not.toBe(parsedUrlOf(plain))
  })

  it('pathnameOf gives what parsing the URL gives, for plain and tricky targets and hosts', async () => {
    const cases: [host: string, target: string][] = [
      ['localhost', '/webhooks/orders'],
      ['localhost', '/webhooks/orders/?q=/../x'],
      ['localhost', '/a/./webhooks/x'],
      ['localhost', '/a/../webhooks/x'],
      ['localhost', '/a/%2e%2e/webhooks/x'],
      ['localhost', '/caf%C3%A9/x'],
      ['localhost', '/a/b.json'],
      ['localhost', '/a/.hidden'],
      ['x.test:8080', '/webhooks/o'],
      ['[::1]:3000', '/webhooks/o'],
      ['a?b', '/webhooks/orders'],
      ['a#b', '/webhooks/orders'],
      ['u@x.test', '/webhooks/orders'],
      ['evil/x', '/webhooks/orders'],
    ]
    for (const [host, target] of cases) {
      // Twice: the second request finds its origin known.
      for (let round = 0; round < 2; round++) {
        const out = await rawTo(async (request) => {
          const text = JSON.stringify([pathnameOf(request), new URL(request.url).pathname])
          return new Response(text, { headers: { 'content-length': String(Buffer.byteLength(text)) } })
        }, `GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
        const [fast, parsed] = JSON.parse(out.slice(out.indexOf('\r\n\r\n') + 4)) as [string, string]
        expect({ host, target, path: fast }).toEqual({ host, target, path: parsed })
      }
    }
    const plain = new Request('http://x.test/a/../b')
    expect(pathnameOf(plain)).toBe('/b')
  })

  it('keeps checking Host headers after more distinct hosts than it remembers', async () => {
    const server = createServer(toNodeListener(markAcceptsLightRequests(async (request) => new Response(pathnameOf(request)))))
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    try {
      const ask = (host: string): Promise<string> => rawExchange(urlOf(server), `GET /p/q HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`)
      // Past 256 remembered origins the set starts again: every host is still checked.
      for (let i = 0; i < 300; i++) expect(await ask(`h${i}.test`)).toMatch(/^HTTP\/1\.1 200[^]*\r\n\/p\/q\r\n/)
      expect(await ask('exa mple')).toMatch(/^HTTP\/1\.1 400/)
      expect(await ask('h1.test:99999')).toMatch(/^HTTP\/1\.1 400/)
      expect(await ask('h299.test')).toMatch(/^HTTP\/1\.1 200/)
    } finally {
      server.close()
    }
  })
})

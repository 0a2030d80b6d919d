import { describe, expect, it } from 'vitest'
import { json, toResponse, utf8Bytes } from './respond'

describe('json replies', () => {
  it('carry UTF-8 bytes and a Content-Length that counts bytes, not characters', async () => {
    const body = { name: 'Zoë ✓ 🚀' }
    const reply = json(200, body)
    const res = toResponse(reply)
    const text = JSON.stringify(body)
    expect(reply.headers['content-length']).toBe(res.headers.get('content-length'))
    expect(res.headers.get('content-length')).toBe(String(new TextEncoder().encode(text).byteLength))
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(text.length)
    expect(await res.json()).toEqual(body)
  })

  it('utf8Bytes encodes as TextEncoder does, lone surrogates included', () => {
    for (const text of ['', 'plain', 'Zoë ✓ 🚀', 'half \ud800 pair']) {
      expect([...utf8Bytes(text)]).toEqual([...new TextEncoder().encode(text)])
    }
  })
})

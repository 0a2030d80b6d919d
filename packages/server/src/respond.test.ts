import { describe, expect, it } from 'vitest'
import { json, utf8Bytes } from './respond'

describe('json responses', () => {
  it('carry UTF-8 bytes and a Content-Length that counts bytes, not characters', async () => {
    const body = { name: 'Zoë ✓ 🚀' }
    const res = json(200, body)
    const text = JSON.stringify(body)
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

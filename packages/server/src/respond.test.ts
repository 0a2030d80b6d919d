import { describe, expect, it } from 'vitest'
import { SteplineError } from '@stepline/core'
import { errorReply, json, toResponse, utf8Bytes } from './respond'

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

describe('errorReply', () => {
  it('answers engine errors by their meaning: a taken run id is 409 RUN_EXISTS, an unknown one 404, anything else a silent 500', async () => {
    const exists = errorReply(new SteplineError('RUN_EXISTS', 'engine.start: a run with id "r1" already exists'))
    expect(exists.status).toBe(409)
    expect(await toResponse(exists).json()).toEqual({ error: { code: 'RUN_EXISTS', message: 'engine.start: a run with id "r1" already exists' } })
    expect(errorReply(new SteplineError('RUN_NOT_FOUND', 'No run "r2".')).status).toBe(404)
    const seen: unknown[] = []
    const internal = errorReply(new Error('secret detail'), (e) => seen.push(e))
    expect(internal.status).toBe(500)
    expect(internal.text).not.toContain('secret detail')
    expect(seen).toHaveLength(1)
  })
})

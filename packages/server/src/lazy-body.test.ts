import { describe, expect, it } from 'vitest'
import { BytesResponse, takeBytes } from './lazy-body'

const bytesOf = (text: string): Uint8Array => new TextEncoder().encode(text)
const make = (text = '{"ok":true}'): Response => new BytesResponse(bytesOf(text), 202, { 'content-type': 'application/json' })

describe('BytesResponse (a body kept as bytes until read)', () => {
  it('reads as form data by its own content type', async () => {
    const res = new BytesResponse(bytesOf('a=1&b=two'), 200, { 'content-type': 'application/x-www-form-urlencoded' })
    const form = await res.formData()
    expect([form.get('a'), form.get('b')]).toEqual(['1', 'two'])
  })

  it('reads like any Response: status, headers, json, text, stream', async () => {
    const res = make()
    expect(res).toBeInstanceOf(Response)
    expect(res.status).toBe(202)
    expect(res.headers.get('content-type')).toBe('application/json')
    expect(res.bodyUsed).toBe(false)
    expect(await res.json()).toEqual({ ok: true })
    expect(res.bodyUsed).toBe(true)
    expect(await make('hi').text()).toBe('hi')
    expect(new TextDecoder().decode(await new Response(make('streamed').body).arrayBuffer())).toBe('streamed')
    expect(await (await make('b').blob()).text()).toBe('b')
  })

  it('keeps its headers plain until read, then as undici Headers that changes reach', () => {
    const res = new BytesResponse(bytesOf('{}'), 200, { 'content-type': 'application/json', 'x-a': '1' })
    expect(res.plainHeaders()).toEqual({ 'content-type': 'application/json', 'x-a': '1' })
    res.headers.set('x-b', '2')
    expect(res.plainHeaders()).toBeUndefined()
    expect(Object.fromEntries(res.headers)).toEqual({ 'content-type': 'application/json', 'x-a': '1', 'x-b': '2' })
  })

  it('refuses a second read, as a used body does', async () => {
    const res = make()
    await res.text()
    await expect(res.text()).rejects.toThrow(TypeError)
    expect(() => res.clone()).toThrow(/already been read/)
  })

  it('clones into an independent body', async () => {
    const res = make('twice')
    const copy = res.clone()
    expect(await copy.text()).toBe('twice')
    expect(await res.text()).toBe('twice')
    expect(copy.status).toBe(202)
  })

  it('hands its bytes out once to takeBytes, which counts as reading the body', async () => {
    const res = make('raw')
    expect(new TextDecoder().decode(takeBytes(res))).toBe('raw')
    expect(takeBytes(res)).toBeUndefined()
    expect(res.bodyUsed).toBe(true)
    await expect(res.text()).rejects.toThrow(TypeError)
  })

  it('keeps its bytes from takeBytes once the body was read another way', async () => {
    const res = make()
    expect(res.body).not.toBeNull()
    expect(takeBytes(res)).toBeUndefined()
    expect(takeBytes(new Response('plain'))).toBeUndefined()
  })
})

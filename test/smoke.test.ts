import { describe, expect, it } from 'vitest';
import * as core from '@stepline/core';

describe('@stepline/core', () => {
  it('loads from source', () => {
    expect(typeof core).toBe('object');
    expect(Object.keys(core).length).toBeGreaterThan(0);
  });
});

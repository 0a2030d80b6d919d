import { expectTypeOf, test } from 'vitest';

test('type tests run', () => {
  expectTypeOf<{ a: number }>().toHaveProperty('a').toEqualTypeOf<number>();
  // @ts-expect-error a string is not a number
  const n: number = 'x';
  void n;
});

import { Bench } from 'tinybench';

// Placeholder benchmark: the real suite replaces this.
const bench = new Bench({ time: 200 });
bench.add('await chain x100', async () => {
  let v = 0;
  for (let i = 0; i < 100; i++) v = await Promise.resolve(v + 1);
});
await bench.run();
console.table(bench.table());

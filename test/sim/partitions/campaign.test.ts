import { expect, it } from 'vitest';
import { runPartitionsSeed } from './simulator';

it('smoke', async () => {
  const started = performance.now();
  for (let seed = 1; seed <= 40; seed++) {
    const report = await runPartitionsSeed(seed);
    console.log(seed, report.scenario, report.settleMs, report.violation?.checker, report.violation?.message.slice(0, 300), JSON.stringify(report.coverage));
  }
  console.log('ms', performance.now() - started);
  expect(1).toBe(1);
}, 300_000);

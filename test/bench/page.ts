import type { BenchCase, BenchPageApi } from './types';

// Every module in cases/ contributes its `cases`; adding a benchmark means adding a file.
const modules = import.meta.glob<{ cases: BenchCase[] }>('./cases/*.ts', { eager: true });
const byId = new Map<string, BenchCase>();
for (const [file, module] of Object.entries(modules)) {
  for (const benchCase of module.cases) {
    if (byId.has(benchCase.id)) throw new Error(`benchmark id ${benchCase.id} is defined twice (${file})`);
    byId.set(benchCase.id, benchCase);
  }
}

const api: BenchPageApi = {
  list: () => [...byId.values()].map(({ id, title, baselines, runs }) => ({ id, title, baselines, runs })),
  run: async (id) => {
    const benchCase = byId.get(id);
    if (benchCase === undefined) throw new Error(`no benchmark ${id}`);
    return benchCase.run();
  },
};

window.letterboxBench = api;
document.body.dataset['ready'] = 'true';

import type { BenchCase, BenchContext, BenchPageApi, BenchPipe, PeerProcess } from './types';

// Every module in cases/ contributes its `cases`; adding a benchmark means adding a file.
const modules = import.meta.glob<{ cases: BenchCase[] }>('./cases/*.ts', { eager: true });
const byId = new Map<string, BenchCase>();
for (const [file, module] of Object.entries(modules)) {
  for (const benchCase of module.cases) {
    if (byId.has(benchCase.id)) throw new Error(`benchmark id ${benchCase.id} is defined twice (${file})`);
    byId.set(benchCase.id, benchCase);
  }
}

// Messages from the peer page, queued until a case asks for them.
const inbox: unknown[] = [];
const waiting: Array<(message: unknown) => void> = [];
const pipe: BenchPipe = {
  send: (message) => void window.letterboxBenchToPeer?.(message),
  receive: () => (inbox.length > 0 ? Promise.resolve(inbox.shift()) : new Promise((resolve) => waiting.push(resolve))),
};
const peerProcess: PeerProcess = {
  kill: () => window.letterboxBenchPeerProcess!('kill'),
  restart: () => window.letterboxBenchPeerProcess!('restart'),
};
const contextOf = (benchCase: BenchCase, init: { relayUrl?: string }): BenchContext => ({
  ...init,
  ...(benchCase.needs?.some((n) => n.startsWith('peer-')) === true ? { peer: pipe } : {}),
  ...(benchCase.needs?.includes('peer-process-killable') === true ? { peerProcess } : {}),
  closeTab: (tab) => window.letterboxBenchCloseTab!(tab),
});
const caseOf = (id: string) => {
  const benchCase = byId.get(id);
  if (benchCase === undefined) throw new Error(`no benchmark ${id}`);
  return benchCase;
};

const api: BenchPageApi = {
  list: () => [...byId.values()].map(({ id, title, baselines, runs, needs }) => ({ id, title, baselines, runs, needs })),
  run: async (id, init) => {
    const benchCase = caseOf(id);
    return benchCase.run(contextOf(benchCase, init));
  },
  serve: async (id, init) => {
    const benchCase = caseOf(id);
    if (benchCase.serve === undefined) throw new Error(`benchmark ${id} has no peer side`);
    return benchCase.serve(contextOf(benchCase, init));
  },
  deliver: (message) => {
    const resolve = waiting.shift();
    if (resolve !== undefined) resolve(message);
    else inbox.push(message);
  },
};

window.letterboxBench = api;
document.body.dataset['ready'] = 'true';

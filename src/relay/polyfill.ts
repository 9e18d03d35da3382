// libp2p 3's dependencies call Promise.withResolvers (Node ≥ 22); the relay runs on Node 20.
// Imported first by main.ts; libp2p only calls it at run time, after this has run.
if (typeof Promise.withResolvers !== 'function') {
  Promise.withResolvers = function withResolvers<T>() {
    let resolve!: (value: T | PromiseLike<T>) => void;
    let reject!: (reason?: unknown) => void;
    const promise = new Promise<T>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    return { promise, resolve, reject };
  };
}
export {};

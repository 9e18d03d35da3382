import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

export interface RelayProcess {
  readonly url: string;
  /** The relay's libp2p multiaddrs, from the `libp2p: …` lines it prints after the URL. */
  readonly multiaddrs: string[];
  readonly process: ChildProcess;
  /** Ends the process this helper started (by its PID) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts the built relay (`dist/node/relay.js`, as `npm start` does) on a free port (unless
 * `args` name one) and resolves with the URL and multiaddrs it prints.
 * @example const relay = await startRelayProcess(); await page.goto(relay.url);
 */
export async function startRelayProcess(args: readonly string[] = [], timeoutMs = 15_000): Promise<RelayProcess> {
  const child = spawn(process.execPath, ['dist/node/relay.js', ...(args.includes('--port') ? [] : ['--port', '0']), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`relay printed no URL within ${timeoutMs} ms:\n${output}`)), timeoutMs);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /https?:\/\/[^\s]+/.exec(output);
      // The multiaddr lines follow the URL line; wait for the first whole one.
      if (match !== null && /^libp2p: \S+\n/m.test(output)) {
        clearTimeout(timer);
        resolve(match[0]);
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`relay exited with ${code} before printing a URL:\n${output}`));
    });
  });
  const multiaddrs = [...output.matchAll(/^libp2p: (\S+)$/gm)].map((m) => m[1]!);
  return {
    url,
    multiaddrs,
    process: child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    },
  };
}

import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

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
 * `args` name one) and resolves with the URL and multiaddrs it prints. A process start has no
 * protocol bound: `timeoutMs` only turns a relay that never starts into an error with its
 * output; it is generous because a loaded 2-core machine took over 15 s to start one.
 * @example const relay = await startRelayProcess(); await page.goto(relay.url);
 */
export async function startRelayProcess(args: readonly string[] = [], timeoutMs = 60_000): Promise<RelayProcess> {
  const child = spawn(process.execPath, ['dist/node/relay.js', ...(args.includes('--port') ? [] : ['--port', '0']), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGTERM'); // not left running once given up on (one outlived a failed CI run)
      reject(new Error(`relay printed no URL within ${timeoutMs} ms:\n${output}`));
    }, timeoutMs);
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

/** A relay that can be restarted at the same address: the same HTTP and WebSocket ports and the same key (so the same peer id and multiaddrs). */
export interface RestartableRelay {
  /** The same across restarts. */
  readonly url: string;
  /** The same across restarts (the key file keeps the peer id). */
  readonly multiaddrs: string[];
  /** Stops the running process (if it runs) and starts a new one on the same ports with the same key. */
  restart(): Promise<void>;
  /** Stops the process, keeping its key and ports for a later `restart()`. */
  down(): Promise<void>;
  /** Stops the process and removes its key file. */
  stop(): Promise<void>;
}

/**
 * Starts the relay with a key file of its own (in a fresh temporary directory), on free ports;
 * `restart()` brings it back at the same address, as network.spec.ts restarts its relay.
 * @example const relay = await startRestartableRelay(); await relay.restart(); await relay.stop();
 */
export async function startRestartableRelay(): Promise<RestartableRelay> {
  const dir = await mkdtemp(join(tmpdir(), 'letterbox-relay-'));
  const keyFile = join(dir, 'relay.key');
  let current: RelayProcess;
  try {
    current = await startRelayProcess(['--key-file', keyFile]);
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  const first = current;
  const httpPort = new URL(first.url).port;
  const wsPort = /\/tcp\/(\d+)\/ws\//.exec(first.multiaddrs[0] ?? '')?.[1];
  if (wsPort === undefined) {
    await first.stop();
    await rm(dir, { recursive: true, force: true });
    throw new Error(`no WebSocket port in the relay's multiaddrs: ${first.multiaddrs.join(', ')}`);
  }
  return {
    url: first.url,
    multiaddrs: first.multiaddrs,
    async restart() {
      await current.stop();
      current = await startRelayProcess(['--port', httpPort, '--ws-port', wsPort, '--key-file', keyFile]);
      if (current.url !== first.url || current.multiaddrs.join() !== first.multiaddrs.join()) {
        throw new Error(`the restarted relay is at another address: ${current.url} ${current.multiaddrs.join(', ')} (was ${first.url} ${first.multiaddrs.join(', ')})`);
      }
    },
    down: () => current.stop(),
    async stop() {
      await current.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// `npm start`: the relay process. Options: --host H, --port P, --ws-port W, --key-file F
// (or LETTERBOX_HOST, LETTERBOX_PORT, LETTERBOX_WS_PORT, LETTERBOX_KEY_FILE); defaults
// 127.0.0.1:8787, WebSockets on 8788, key in .letterbox/relay.key under the package root.
import './polyfill';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultRelayPort, startRelay } from './index';

const usage = 'usage: letterbox relay [--host H] [--port P] [--ws-port W] [--key-file F]';
const options = {
  host: { type: 'string', default: process.env['LETTERBOX_HOST'] ?? '127.0.0.1' },
  port: { type: 'string', default: process.env['LETTERBOX_PORT'] ?? String(defaultRelayPort) },
  'ws-port': { type: 'string', default: process.env['LETTERBOX_WS_PORT'] },
  'key-file': { type: 'string', default: process.env['LETTERBOX_KEY_FILE'] },
  help: { type: 'boolean' },
} as const;
let parsed: ReturnType<typeof parseArgs<{ options: typeof options }>>;
try {
  parsed = parseArgs({ options });
} catch (error) {
  console.error(`letterbox relay: ${(error as Error).message}\n${usage}`);
  process.exit(2);
}
if (parsed.values.help === true) {
  console.log(usage);
  process.exit(0);
}
const { values } = parsed;

const portOption = (name: string, text: string): number => {
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    console.error(`letterbox relay: --${name} must be a whole number from 0 to 65535, got "${text}"`);
    process.exit(2);
  }
  return value;
};
const port = portOption('port', values.port);
const wsPort = values['ws-port'] === undefined ? undefined : portOption('ws-port', values['ws-port']);

// This file is bundled to dist/node/relay.js; the served folders sit at the package root.
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

try {
  const relay = await startRelay({
    host: values.host,
    port,
    ...(wsPort === undefined ? {} : { wsPort }),
    keyFile: values['key-file'] ?? `${packageRoot}.letterbox/relay.key`,
    staticRoots: [`${packageRoot}public`, `${packageRoot}dist/lib`],
  });
  console.log(`Letterbox relay is running. Open the demo: ${relay.url}`);
  for (const multiaddr of relay.multiaddrs) console.log(`libp2p: ${multiaddr}`);
  const stop = () => {
    relay.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
} catch (error) {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EADDRINUSE') {
    console.error(`letterbox relay: port ${port} on ${values.host} is in use; choose another with --port or LETTERBOX_PORT.`);
  } else {
    console.error('letterbox relay: could not start:', error);
  }
  process.exit(1);
}

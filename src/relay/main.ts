// `npm start`: the relay process. Options: --host H, --port P (or LETTERBOX_HOST,
// LETTERBOX_PORT); defaults 127.0.0.1:8787.
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { defaultRelayPort, startRelay } from './index';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: process.env['LETTERBOX_HOST'] ?? '127.0.0.1' },
    port: { type: 'string', default: process.env['LETTERBOX_PORT'] ?? String(defaultRelayPort) },
  },
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`letterbox relay: --port must be a whole number from 0 to 65535, got "${values.port}"`);
  process.exit(2);
}

// This file is bundled to dist/node/relay.js; the served folders sit at the package root.
const packageRoot = fileURLToPath(new URL('../../', import.meta.url));

try {
  const relay = await startRelay({
    host: values.host,
    port,
    staticRoots: [`${packageRoot}public`, `${packageRoot}dist/lib`],
  });
  console.log(`Letterbox relay is running. Open the demo: ${relay.url}`);
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

import { wrap } from 'comlink';
import type { HarnessApi } from './harness-api';

const worker = new Worker(new URL('./harness.worker.ts', import.meta.url), { type: 'module' });
window.harness = wrap<HarnessApi>(worker);
document.body.dataset['ready'] = 'true';

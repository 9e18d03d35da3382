import { wrap } from 'comlink';
import type { LogTestApi } from './log-api';

const worker = new Worker(new URL('./log.worker.ts', import.meta.url), { type: 'module' });
window.logTest = wrap<LogTestApi>(worker);
document.body.dataset['ready'] = 'true';

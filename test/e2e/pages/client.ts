// Puts the ES client (src/client, served by Vite) on window for the end-to-end tests.
import * as letterbox from '../../../src/client';
import { encodeBatch } from '../../../src/protocol';
import * as badInput from './bad-input';

declare global {
  interface Window {
    lb: typeof letterbox;
    badInput: typeof badInput;
    /** Encodes record batches with chosen header fields (an idempotent producer's id and sequence), for tests that speak to the node directly. */
    lbEncodeBatch: typeof encodeBatch;
  }
}
window.lb = letterbox;
window.badInput = badInput;
window.lbEncodeBatch = encodeBatch;
document.body.dataset['ready'] = 'true';

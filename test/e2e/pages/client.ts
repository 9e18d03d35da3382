// Puts the ES client (src/client, served by Vite) on window for the end-to-end tests.
import * as letterbox from '../../../src/client';
import * as badInput from './bad-input';

declare global {
  interface Window {
    lb: typeof letterbox;
    badInput: typeof badInput;
  }
}
window.lb = letterbox;
window.badInput = badInput;
document.body.dataset['ready'] = 'true';

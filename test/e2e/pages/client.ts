// Puts the ES client (src/client, served by Vite) on window for the end-to-end tests.
import * as letterbox from '../../../src/client';

declare global {
  interface Window {
    lb: typeof letterbox;
  }
}
window.lb = letterbox;
document.body.dataset['ready'] = 'true';

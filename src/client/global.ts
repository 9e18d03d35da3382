// Entry of the script-tag build: `window.Letterbox` is the class itself, with the rest of
// the API (CompressionTypes, the error classes) as its properties.
import * as api from './index';

export default Object.assign(api.Letterbox, api);

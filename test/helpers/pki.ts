export { makePki, type Pki } from '../../envoy/pki.js';

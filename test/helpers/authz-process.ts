export { startAuthzProcess, type AuthzProcess } from '../../demo/authz-process.js';

export { startEnvoy, validateEnvoyConfig, envoyBinary, type EnvoyHandle } from '../../envoy/envoy-process.js';

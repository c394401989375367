export { mtlsRequest, type ClientCert, type Reply } from '../../demo/mtls-client.js';

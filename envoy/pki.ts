import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A throwaway PKI for local Envoy: a CA, a server certificate and client
 * certificates whose only URI SAN is the workload's SPIFFE ID (an X.509-SVID
 * carries exactly one). Made with the openssl CLI; EC P-256 keys keep it fast.
 */
export interface Pki {
  readonly dir: string;
  readonly caCert: string;
  readonly caKey: string;
  readonly serverCert: string;
  readonly serverKey: string;
  client(name: string): { cert: string; key: string; spiffeId: string };
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('openssl is missing: apt-get install openssl');
    throw new Error(`openssl ${args[0]} failed: ${stderr.trim()}`);
  }
}

function issue(dir: string, name: string, subject: string, extensions: string[]): void {
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, extensions.join('\n') + '\n');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${name}.key`], dir);
  openssl(['req', '-new', '-key', `${name}.key`, '-subj', subject, '-out', `${name}.csr`], dir);
  openssl(
    ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '30', '-sha256', '-extfile', ext, '-out', `${name}.crt`],
    dir,
  );
}

/**
 * Creates (or reuses, if already present) the CA, a server certificate for
 * `localhost`/127.0.0.1 and one client certificate per entry of `clients`.
 */
export function makePki(dir: string, clients: Record<string, string>, serverId = 'spiffe://cluster.local/ns/ml/sa/model-server'): Pki {
  mkdirSync(dir, { recursive: true });
  if (!existsSync(join(dir, 'ca.crt'))) {
    openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
    openssl(
      ['req', '-x509', '-new', '-key', 'ca.key', '-subj', '/O=infergate/CN=infergate local CA', '-days', '30', '-sha256',
        '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', 'ca.crt'],
      dir,
    );
  }
  if (!existsSync(join(dir, 'server.crt'))) {
    issue(dir, 'server', '/O=infergate/CN=localhost', [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth,clientAuth',
      `subjectAltName=DNS:localhost,IP:127.0.0.1,URI:${serverId}`,
    ]);
  }
  for (const [name, id] of Object.entries(clients)) {
    if (existsSync(join(dir, `${name}.crt`))) continue;
    issue(dir, name, `/O=infergate/CN=${name}`, [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=clientAuth',
      `subjectAltName=URI:${id}`,
    ]);
  }
  return {
    dir,
    caCert: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    serverCert: join(dir, 'server.crt'),
    serverKey: join(dir, 'server.key'),
    client(name: string) {
      const id = clients[name];
      if (id === undefined) throw new Error(`no client certificate named ${name}`);
      return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`), spiffeId: id };
    },
  };
}

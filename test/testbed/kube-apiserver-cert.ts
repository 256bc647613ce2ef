import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { tempDir } from '../unit/helpers';

/**
 * A self-signed certificate for a loopback Kubernetes API server (CN kube-apiserver, IP SAN 127.0.0.1), valid one
 * day: the tests' API servers answer over TLS, as a cluster's does, and the client trusts `cert` as the cluster CA.
 */
export function kubeApiserverCert(): { key: Buffer; cert: Buffer } {
  const dir = tempDir('imagevault-k8s-');
  const [key, cert] = [path.join(dir, 'key.pem'), path.join(dir, 'cert.pem')];
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=kube-apiserver',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: 'ignore' },
  );
  return { key: readFileSync(key), cert: readFileSync(cert) };
}

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../../lib/registry/client';
import { RegistryError } from '../../../lib/registry/errors';

/**
 * A TCP server on 127.0.0.1 that notes how every connection opens (a TLS ClientHello starts with byte 0x16) and
 * answers plain HTTP requests with `answer`. TLS handshakes are cut off: only the attempt matters here.
 */
async function listen(answer: string): Promise<{ host: string; opened: string[]; server: Server }> {
  const opened: string[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.once('data', (first) => {
      if (first[0] === 0x16) {
        opened.push('tls');
        socket.destroy();
        return;
      }
      opened.push('http');
      socket.end(answer);
    });
  });
  server.on('close', () => sockets.forEach((s) => s.destroy()));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { host: `127.0.0.1:${(server.address() as AddressInfo).port}`, opened, server };
}

const REGISTRY_ANSWER =
  'HTTP/1.1 200 OK\r\nDocker-Distribution-Api-Version: registry/2.0\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}';
// What a Go TLS server (a registry serving TLS) answers to a plain-HTTP request.
const TLS_SERVER_ANSWER =
  'HTTP/1.0 400 Bad Request\r\nContent-Length: 48\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n';

describe('Class: Transport (scheme of a loopback registry)', () => {
  const servers: Server[] = [];
  afterAll(() => servers.forEach((s) => s.close()));

  it('speaks plain HTTP to a loopback registry without trying a TLS handshake first', async () => {
    // Prepare
    const { host, opened, server } = await listen(REGISTRY_ANSWER);
    servers.push(server);
    const client = new RegistryClient(host, {
      credentials: async () => undefined,
      retry: { maxAttempts: 1 },
    });
    // Act
    const found = await client.repository('app').exists({
      mediaType: 'application/octet-stream',
      digest: `sha256:${'0'.repeat(64)}`,
      size: 1,
    });
    await client.close();
    // Assess: the ping and the HEAD, both plain
    expect(found).toBe(true);
    expect(opened).toEqual(['http', 'http']);
  });

  it('tries TLS when the plain answer on a loopback port is not a registry', async () => {
    // Prepare
    const { host, opened, server } = await listen(TLS_SERVER_ANSWER);
    servers.push(server);
    const client = new RegistryClient(host, {
      credentials: async () => undefined,
      retry: { maxAttempts: 1 },
    });
    // Act
    const attempt = client.repository('app').exists({
      mediaType: 'application/octet-stream',
      digest: `sha256:${'0'.repeat(64)}`,
      size: 1,
    });
    // Assess: the TLS handshake was tried after the plain answer (it fails here: the server cuts it off)
    await expect(attempt).rejects.toThrow(RegistryError);
    await client.close();
    expect(opened.slice(0, 2)).toEqual(['http', 'tls']);
  });
});

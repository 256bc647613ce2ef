import { existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { DirectoryObjectStore, ObjectExistsError, ObjectNotFoundError, readAll } from '../../../lib/content';
import { Digest, DigestMismatchError } from '../../../lib/oci';
import { tempDir } from '../helpers';

describe('Class: DirectoryObjectStore', () => {
  it('round-trips streams and bytes', async () => {
    const s = new DirectoryObjectStore(tempDir());
    await s.putStream('a/b/c', Readable.from([Buffer.from('hello '), Buffer.from('world')]));
    expect((await readAll(await s.get('a/b/c'), 100)).toString()).toBe('hello world');
    expect(await s.head('a/b/c')).toEqual({ key: 'a/b/c', size: 11 });
    await s.putBytes('x.json', Buffer.from('{}'));
    expect((await s.getBytes('x.json'))?.toString()).toBe('{}');
  });

  it('publishes nothing when the body stream fails, and leaves no temp file', async () => {
    const root = tempDir();
    const s = new DirectoryObjectStore(root);
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(1024));
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(s.putStream('blobs/x', body)).rejects.toThrow('connection reset');
    expect(await s.head('blobs/x')).toBeUndefined();
    expect(readdirSync(path.join(root, 'blobs'))).toEqual([]);
  });

  it('refuses to overwrite with ifNoneMatch', async () => {
    const s = new DirectoryObjectStore(tempDir());
    await s.putBytes('h/1', Buffer.from('first'), { ifNoneMatch: true });
    await expect(s.putBytes('h/1', Buffer.from('second'), { ifNoneMatch: true })).rejects.toThrow(
      ObjectExistsError,
    );
    expect((await s.getBytes('h/1'))?.toString()).toBe('first');
  });

  it('refuses a retention it cannot enforce, and writes nothing', async () => {
    const s = new DirectoryObjectStore(tempDir());
    await expect(
      s.putBytes('log/1.json', Buffer.from('{}'), {
        retention: { mode: 'COMPLIANCE', until: new Date(Date.now() + 86_400_000) },
      }),
    ).rejects.toThrow(/cannot lock log\/1\.json: a directory has no Object Lock/);
    expect(await s.head('log/1.json')).toBeUndefined();
  });

  it('reports missing objects', async () => {
    const s = new DirectoryObjectStore(tempDir());
    expect(await s.head('nope')).toBeUndefined();
    expect(await s.getBytes('nope')).toBeUndefined();
    await expect(s.get('nope')).rejects.toThrow(ObjectNotFoundError);
  });

  it('lists by prefix in key order and lists directories', async () => {
    const s = new DirectoryObjectStore(tempDir());
    for (const k of ['p/b/2', 'p/a/1', 'p/b/1', 'q/z', 'p/bb']) await s.putBytes(k, Buffer.from(k));
    const keys = [];
    for await (const o of s.list('p/b')) keys.push(o.key);
    expect(keys).toEqual(['p/b/1', 'p/b/2', 'p/bb']);
    expect(await s.listDirs('p/')).toEqual(['a', 'b']);
    expect(await s.listDirs('missing/')).toEqual([]);
  });

  it('refuses keys that escape the root', async () => {
    const root = tempDir();
    const s = new DirectoryObjectStore(root);
    await expect(s.putBytes('../escape', Buffer.from('x'))).rejects.toThrow(/escapes the store/);
    expect(existsSync(path.join(root, '..', 'escape'))).toBe(false);
  });

  it('syncs the directory after every write; durable: false (unsafe, for the bench only) syncs nothing', async () => {
    // Prepare: count the directories opened (a directory is opened only to sync it)
    const open = jest.spyOn(fsp, 'open');
    const dirOpens = () => open.mock.calls.filter(([p]) => statSync(p as string).isDirectory()).length;
    try {
      // Act
      const durable = new DirectoryObjectStore(tempDir());
      await durable.putStream('a/b', Readable.from([Buffer.from('x')]));
      await durable.putBytes('c', Buffer.from('y'));
      const synced = dirOpens();
      open.mockClear();
      const unsafe = new DirectoryObjectStore(tempDir(), { durable: false });
      await unsafe.putStream('a/b', Readable.from([Buffer.from('x')]));
      await unsafe.putBytes('c', Buffer.from('y'), { ifNoneMatch: true });
      // Assess
      expect(synced).toBe(2);
      expect(dirOpens()).toBe(0);
      expect((await unsafe.getBytes('a/b'))?.toString()).toBe('x');
    } finally {
      open.mockRestore();
    }
  });
});

describe('Class: DirectoryObjectStore, putVerified', () => {
  const blob = (n: number, seed = 1) =>
    Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed) % 251));
  const chunked = (b: Buffer, size = 4096) =>
    Readable.from(
      Array.from({ length: Math.ceil(b.length / size) }, (_, i) => b.subarray(i * size, (i + 1) * size)),
    );
  const descOf = (b: Buffer, algorithm: 'sha256' | 'sha512' = 'sha256') => ({
    digest: Digest.of(b, algorithm).toString(),
    size: b.length,
  });
  // Everything off the main thread, however small, so these tests exercise the hashing thread.
  const offThread = (root: string) => new DirectoryObjectStore(root, { hashOffThreadFrom: 0 });

  it('stores content that is what its descriptor names, hashed on the second thread, several at once', async () => {
    const root = tempDir();
    const s = offThread(root);
    const blobs = [blob(300_000, 1), blob(1, 2), blob(70_000, 3), blob(2_000_000, 4), blob(5, 5)];
    await Promise.all(blobs.map((b, i) => s.putVerified(`blobs/${i}`, chunked(b), descOf(b), 'ctx: ')));
    for (const [i, b] of blobs.entries()) expect((await s.getBytes(`blobs/${i}`))?.equals(b)).toBe(true);
    const big = blob(100_000, 9);
    await s.putVerified('blobs/512', chunked(big), descOf(big, 'sha512'), 'ctx: ');
    expect((await s.getBytes('blobs/512'))?.equals(big)).toBe(true);
    expect(readdirSync(path.join(root, 'blobs')).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
  });

  it('refuses content of another digest and leaves nothing behind, on either thread', async () => {
    for (const hashOffThreadFrom of [0, 1024 * 1024]) {
      const root = tempDir();
      const s = new DirectoryObjectStore(root, { hashOffThreadFrom });
      const good = blob(200_000);
      const bad = Buffer.from(good);
      bad[150_000] ^= 1;
      const err = await s.putVerified('blobs/x', chunked(bad), descOf(good), 'file:///v: refusing x: ').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect((err as Error).message).toBe(
        `file:///v: refusing x: digest mismatch: expected ${descOf(good).digest}, content hashes to ${descOf(bad).digest}`,
      );
      expect(await s.head('blobs/x')).toBeUndefined();
      expect(readdirSync(path.join(root, 'blobs'))).toEqual([]);
    }
  });

  it('fails content that is too long within a write buffer (1 MiB), and content that is too short at its end', async () => {
    const root = tempDir();
    const s = offThread(root);
    const expected = blob(10_000);
    let pulled = 0;
    const endless = new Readable({
      highWaterMark: 1,
      read() {
        pulled++;
        this.push(blob(4096, pulled));
      },
    });
    await expect(s.putVerified('blobs/long', endless, descOf(expected), 'c: ')).rejects.toThrow(
      /^c: size mismatch for sha256:[0-9a-f]{64}: expected 10000 bytes, got [0-9]+$/,
    );
    // An endless body is cut off after the write buffer, not read to its end.
    expect(pulled * 4096).toBeLessThanOrEqual(10_000 + 1024 * 1024 + 2 * 4096);
    await expect(
      s.putVerified('blobs/short', chunked(expected.subarray(0, 9_999)), descOf(expected), 'c: '),
    ).rejects.toThrow('c: size mismatch for');
    expect(readdirSync(path.join(root, 'blobs'))).toEqual([]);
  });

  it('keeps a failing body its own error, leaves no temp file, and hashes the next write as before', async () => {
    const root = tempDir();
    const s = offThread(root);
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(64 * 1024));
        this.destroy(new Error('connection reset'));
      },
    });
    await expect(s.putVerified('blobs/x', body, descOf(blob(1_000_000)), 'c: ')).rejects.toThrow(
      'connection reset',
    );
    expect(readdirSync(path.join(root, 'blobs'))).toEqual([]);
    const next = blob(123_456, 7);
    await s.putVerified('blobs/y', chunked(next), descOf(next), 'c: ');
    expect((await s.getBytes('blobs/y'))?.equals(next)).toBe(true);
  });
});

describe('Class: DirectoryObjectStore, getVerified', () => {
  const blob = (n: number, seed = 1) =>
    Buffer.from(Array.from({ length: n }, (_, i) => (i * 7 + seed) % 253));
  const descOf = (b: Buffer) => ({ digest: Digest.of(b).toString(), size: b.length });

  it('streams content that is what its descriptor names, the digest taken on the second thread', async () => {
    const s = new DirectoryObjectStore(tempDir(), { hashOffThreadFrom: 0 });
    const blobs = [blob(3_000_000, 1), blob(10, 2), blob(500_000, 3)];
    for (const [i, b] of blobs.entries()) await s.putBytes(`blobs/${i}`, b);
    const read = await Promise.all(
      blobs.map(async (b, i) => readAll(await s.getVerified(`blobs/${i}`, descOf(b), 'c: '), 10_000_000)),
    );
    for (const [i, b] of blobs.entries()) expect(read[i].equals(b)).toBe(true);
  });

  it('fails a file that rotted, or is shorter or longer than named, before its stream ends', async () => {
    for (const hashOffThreadFrom of [0, 1024 * 1024]) {
      const root = tempDir();
      const s = new DirectoryObjectStore(root, { hashOffThreadFrom });
      const good = blob(200_000);
      const rotten = Buffer.from(good);
      rotten[100] ^= 0x20;
      await s.putBytes('blobs/rot', rotten);
      await s.putBytes('blobs/short', good.subarray(0, 199_999));
      await s.putBytes('blobs/long', Buffer.concat([good, Buffer.from('x')]));
      const ended: string[] = [];
      const read = async (key: string) => {
        const stream = await s.getVerified(key, descOf(good), 'file:///v: blob is corrupt: ');
        stream.on('end', () => ended.push(key));
        return readAll(stream, 1_000_000);
      };
      await expect(read('blobs/rot')).rejects.toThrow(
        `file:///v: blob is corrupt: digest mismatch: expected ${descOf(good).digest}, content hashes to ${Digest.of(rotten).toString()}`,
      );
      await expect(read('blobs/short')).rejects.toThrow(/size mismatch .* expected 200000 bytes, got 199999/);
      await expect(read('blobs/long')).rejects.toThrow(/size mismatch .* expected 200000 bytes, got 200001/);
      expect(ended).toEqual([]);
    }
  });
});

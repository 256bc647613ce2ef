import { existsSync, promises as fsp, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { DirectoryObjectStore, ObjectExistsError, ObjectNotFoundError, readAll } from '../../../lib/content';
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

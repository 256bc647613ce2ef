import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Readable } from 'node:stream';
import { DigestMismatchError, MediaType } from '../../../lib/oci';
import { NotInVaultError, Vault, readAll } from '../../../lib/content';
import { descOf, putImage, tempVault } from '../helpers';

describe('Class: Vault', () => {
  describe('Method: push', () => {
    it('stores a blob under its digest in OCI layout form', async () => {
      const vault = await tempVault();
      const data = Buffer.from('layer bytes');
      const d = descOf(MediaType.OciLayer, data);
      await vault.push(d, Readable.from([data]));
      const file = path.join(fileURLToPath(vault.url), 'blobs', 'sha256', d.digest.slice(7));
      expect(readFileSync(file)).toEqual(data);
      expect(JSON.parse(readFileSync(path.join(fileURLToPath(vault.url), 'oci-layout'), 'utf8'))).toEqual({
        imageLayoutVersion: '1.0.0',
      });
    });

    it('refuses content that does not hash to its descriptor and stores nothing under that digest', async () => {
      // Prepare
      const vault = await tempVault();
      const d = descOf(MediaType.OciLayer, Buffer.from('the real bytes'));
      // Act
      const p = vault.push(d, Readable.from([Buffer.from('forged bytes!!')]));
      // Assess
      await expect(p).rejects.toThrow(DigestMismatchError);
      expect(await vault.exists(d)).toBe(false);
    });

    it('refuses content longer than its descriptor without reading it all', async () => {
      const vault = await tempVault();
      const d = descOf(MediaType.OciLayer, Buffer.from('short'));
      let pulled = 0;
      const endless = new Readable({
        read() {
          pulled++;
          this.push(Buffer.alloc(64 * 1024));
        },
      });
      await expect(vault.push(d, endless)).rejects.toThrow(/size mismatch/);
      expect(pulled).toBeLessThan(50);
      expect(await vault.exists(d)).toBe(false);
    });

    it('indexes a manifest with a subject as a referrer of that subject', async () => {
      const vault = await tempVault();
      const image = await putImage(vault, [Buffer.from('a')]);
      const sig = await putImage(vault, [Buffer.from('signature')], {
        artifactType: 'application/vnd.test.sig',
        subject: image.manifest,
      });
      const refs = await vault.referrers(image.manifest);
      expect(refs).toEqual([{ ...sig.manifest, artifactType: 'application/vnd.test.sig' }]);
    });
  });

  describe('Method: fetch', () => {
    it('fails reading a blob that rotted on disk, naming the digest', async () => {
      const vault = await tempVault();
      const data = Buffer.from('original content');
      const d = descOf(MediaType.OciLayer, data);
      await vault.push(d, Readable.from([data]));
      writeFileSync(
        path.join(fileURLToPath(vault.url), 'blobs', 'sha256', d.digest.slice(7)),
        'corrupted conten',
      );
      await expect(readAll(await vault.fetch(d), 1000)).rejects.toThrow(`blob ${d.digest} is corrupt`);
    });
  });

  describe('Method: history', () => {
    const desc = (s: string) => descOf(MediaType.OciManifest, Buffer.from(s));
    const obs = (digest: string, observedAt: string) => ({
      repository: 'team/app',
      tag: 'prod',
      action: 'push' as const,
      descriptor: desc(digest),
      observedAt,
      source: { kind: 'test' },
    });

    it('keeps every observation in time order, never overwriting', async () => {
      const vault = await tempVault();
      await vault.recordTag(obs('two', '2026-01-02T00:00:00Z'));
      await vault.recordTag(obs('one', '2026-01-01T00:00:00Z'));
      await vault.recordTag(obs('three', '2026-01-03T00:00:00.5Z'));
      const h = await vault.history('team/app', 'prod');
      expect(h.map((e) => e.descriptor.digest)).toEqual([
        desc('one').digest,
        desc('two').digest,
        desc('three').digest,
      ]);
      expect(h[2].observedAt).toBe('2026-01-03T00:00:00.500Z');
    });

    it('reads each entry once, and still lists which entries exist every time', async () => {
      // Prepare: entries another Vault wrote (a concurrent writer), one this Vault wrote
      const vault = await tempVault();
      const other = new Vault(vault.store);
      await other.recordTag(obs('one', '2026-01-01T00:00:00Z'));
      await other.recordTag(obs('two', '2026-01-02T00:00:00Z'));
      await vault.recordTag(obs('three', '2026-01-03T00:00:00Z'));
      const reads: string[] = [];
      const getBytes = vault.store.getBytes.bind(vault.store);
      vault.store.getBytes = async (key: string) => (reads.push(key), getBytes(key));

      // Act
      await vault.history('team/app', 'prod');
      await vault.latest('team/app', 'prod');
      await other.recordTag(obs('four', '2026-01-04T00:00:00Z'));
      const h = await vault.history('team/app', 'prod');

      // Assess: the two it had not read, once each; the one written since, found by the listing
      expect(reads.filter((k) => k.includes('/_tags/'))).toHaveLength(3);
      expect(h.map((e) => e.descriptor.digest)).toEqual(
        ['one', 'two', 'three', 'four'].map((d) => desc(d).digest),
      );
    });

    it('resolves a tag at a point in time', async () => {
      const vault = await tempVault();
      await vault.recordTag(obs('one', '2026-01-01T00:00:00Z'));
      await vault.recordTag(obs('two', '2026-01-02T00:00:00Z'));
      expect(
        (await vault.resolveTag('team/app', 'prod', new Date('2026-01-01T12:00:00Z'))).descriptor.digest,
      ).toBe(desc('one').digest);
      expect((await vault.resolveTag('team/app', 'prod')).descriptor.digest).toBe(desc('two').digest);
      await expect(vault.resolveTag('team/app', 'prod', new Date('2025-12-31T00:00:00Z'))).rejects.toThrow(
        NotInVaultError,
      );
      await expect(vault.resolveTag('team/app', 'prod', new Date('2025-12-31T00:00:00Z'))).rejects.toThrow(
        /first: 2026-01-01/,
      );
    });

    it('refuses an invalid time', async () => {
      const vault = await tempVault();
      await expect(vault.recordTag(obs('x', 'yesterday'))).rejects.toThrow(
        /observedAt "yesterday" is not a valid time/,
      );
    });

    it('lists repositories with several path segments', async () => {
      const vault = await tempVault();
      await vault.recordTag(obs('one', '2026-01-01T00:00:00Z'));
      await vault.recordTag({ ...obs('x', '2026-01-01T00:00:00Z'), repository: 'team/app/worker' });
      await vault.recordTag({ ...obs('y', '2026-01-01T00:00:00Z'), repository: 'solo' });
      expect(await vault.repositories()).toEqual(['solo', 'team/app', 'team/app/worker']);
      expect(await vault.tags('team/app')).toEqual(['prod']);
    });

    it('writes index.json naming the latest push of each tag', async () => {
      const vault = await tempVault();
      await vault.recordTag(obs('one', '2026-01-01T00:00:00Z'));
      await vault.recordTag(obs('two', '2026-01-02T00:00:00Z'));
      await vault.writeLayoutIndex();
      const index = JSON.parse(readFileSync(path.join(fileURLToPath(vault.url), 'index.json'), 'utf8'));
      expect(index.manifests).toEqual([
        expect.objectContaining({
          digest: desc('two').digest,
          annotations: expect.objectContaining({ 'org.opencontainers.image.ref.name': 'team/app:prod' }),
        }),
      ]);
    });

    it('names in index.json what the whole history ends on, ties in observation time broken by record time', async () => {
      // Prepare: two observations in the same millisecond (the later recorded one wins), an older one recorded last,
      // and a second tag whose newest observation is a delete
      const vault = await tempVault();
      await vault.recordTag({ ...obs('a', '2026-01-03T00:00:00Z'), recordedAt: '2026-01-03T00:00:02Z' });
      await vault.recordTag({ ...obs('b', '2026-01-03T00:00:00Z'), recordedAt: '2026-01-03T00:00:03Z' });
      await vault.recordTag({ ...obs('c', '2026-01-02T00:00:00Z'), recordedAt: '2026-01-04T00:00:00Z' });
      await vault.recordTag({ ...obs('d', '2026-01-01T00:00:00Z'), tag: 'gone' });
      await vault.recordTag({ ...obs('d', '2026-01-02T00:00:00Z'), tag: 'gone', action: 'delete' });
      // Act
      await vault.writeLayoutIndex();
      // Assess
      const index = JSON.parse(readFileSync(path.join(fileURLToPath(vault.url), 'index.json'), 'utf8'));
      expect((await vault.latest('team/app', 'prod'))?.descriptor.digest).toBe(desc('b').digest);
      expect(index.manifests.map((m: { digest: string }) => m.digest)).toEqual([desc('b').digest]);
    });
  });
});

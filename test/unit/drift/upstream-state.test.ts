import { DirectoryObjectStore } from '../../../lib/content';
import { UpstreamLog } from '../../../lib/drift/upstream-state';
import { Digest } from '../../../lib/oci';
import { tempDir } from '../helpers';

const digest = (s: string) => Digest.of(Buffer.from(s)).toString();
const RUBY = 'docker.io/library/ruby:2.7';
const built = { index: digest('index-1'), manifest: digest('amd64-1') };

describe('Method: UpstreamLog.statusOf', () => {
  let state: UpstreamLog;

  beforeEach(() => {
    state = new UpstreamLog(new DirectoryObjectStore(tempDir()));
  });

  const observe = (d: string, observedAt: string, platforms?: Record<string, string>) =>
    state.record({
      reference: RUBY,
      digest: d,
      observedAt,
      via: 'head',
      ...(platforms ? { platforms } : {}),
    });

  it('is unchecked before the watcher recorded the tag', async () => {
    expect(await state.statusOf(RUBY, 'linux/amd64', built)).toEqual({
      reference: RUBY,
      status: 'unchecked',
      detail: expect.stringMatching(/^the upstream check has not recorded this tag yet/),
    });
  });

  it('is unchanged while the tag points at the index the image was built on', async () => {
    await observe(built.index, '2026-01-01T00:00:00.000Z');
    expect(await state.statusOf(RUBY, 'linux/amd64', built)).toMatchObject({
      status: 'unchanged',
      digest: built.index,
      observedAt: '2026-01-01T00:00:00.000Z',
    });
  });

  it('is platform-unchanged when the index moved for another platform only', async () => {
    await observe(built.index, '2026-01-01T00:00:00.000Z');
    await observe(digest('index-2'), '2026-02-01T00:00:00.000Z', {
      'linux/amd64': built.manifest,
      'linux/arm64': digest('arm64-2'),
    });
    expect(await state.statusOf(RUBY, 'linux/amd64', built)).toMatchObject({
      status: 'platform-unchanged',
      digest: digest('index-2'),
      detail: 'the tag moved, but its linux/amd64 manifest is still the one the image was built on',
    });
  });

  it('is moved, with the platform manifest now and what to do, when the platform changed', async () => {
    await observe(digest('index-2'), '2026-02-01T00:00:00.000Z', { 'linux/amd64': digest('amd64-2') });
    expect(await state.statusOf(RUBY, 'linux/amd64', built)).toEqual({
      reference: RUBY,
      status: 'moved',
      digest: digest('index-2'),
      observedAt: '2026-02-01T00:00:00.000Z',
      platformDigest: digest('amd64-2'),
      detail: `the tag moved since the image was built: rebuild on it, or pin FROM docker.io/library/ruby@${built.index}`,
    });
  });

  it('is pinned for a base named by digest only, and checks the tag of a tag@digest name', async () => {
    expect(await state.statusOf(`docker.io/library/ruby@${built.index}`, 'linux/amd64', built)).toMatchObject(
      {
        status: 'pinned',
      },
    );
    await observe(built.index, '2026-01-01T00:00:00.000Z');
    expect(await state.statusOf(`${RUBY}@${built.index}`, 'linux/amd64', built)).toMatchObject({
      reference: RUBY,
      status: 'unchanged',
    });
  });
});

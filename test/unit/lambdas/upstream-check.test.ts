import {
  ecrRegistryFromFunctionArn,
  summarise,
  upstreamMovedAlertOf,
} from '../../../lib/services/upstream-check';

describe('Function: ecrRegistryFromFunctionArn', () => {
  it.each([
    ['arn:aws:lambda:eu-west-1:123456789012:function:up', '123456789012.dkr.ecr.eu-west-1.amazonaws.com'],
    [
      'arn:aws:lambda:eu-west-1:123456789012:function:up:live',
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
    ],
    [
      'arn:aws-cn:lambda:cn-north-1:123456789012:function:up',
      '123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn',
    ],
    ['not an arn', undefined],
    [undefined, undefined],
  ])('%s → %s', (arn, host) => {
    expect(ecrRegistryFromFunctionArn(arn)).toBe(host);
  });
});

describe('Function: upstreamMovedAlertOf', () => {
  const moved = {
    reference: 'docker.io/library/ruby:2.7',
    oldDigest: 'sha256:' + '1'.repeat(64),
    newDigest: 'sha256:' + '2'.repeat(64),
    platforms: [{ platform: 'linux/amd64', oldManifest: 'sha256:' + '3'.repeat(64) }],
    affected: [
      { repository: 'app', digest: 'sha256:' + '4'.repeat(64), tags: ['1.0'], platforms: ['linux/amd64'] },
    ],
    detectedAt: '2026-03-03T06:00:00.000Z',
  };

  it('maps every field, with registry and store; diff only when there is one', () => {
    expect(upstreamMovedAlertOf(moved, { registry: 'r.example', store: 's3://b/p' })).toEqual({
      kind: 'upstream-moved',
      ...moved,
      registry: 'r.example',
      store: 's3://b/p',
    });
    const diff = [{ platform: 'linux/amd64', layers: [], history: ['- a', '+ b'] }];
    const alert = upstreamMovedAlertOf({ ...moved, diff }, { store: 's3://b' });
    expect(alert.diff).toEqual(diff);
    expect('registry' in alert).toBe(false);
  });
});

describe('Function: summarise', () => {
  it('counts results per status and alerts per outcome', () => {
    const move = (alert: 'sent' | 'already-sent' | 'not-sent') => ({
      reference: 'x',
      oldDigest: 'a',
      newDigest: 'b',
      platforms: [],
      affected: [],
      detectedAt: 't',
      alert,
    });
    expect(
      summarise({
        checkedAt: 't',
        requests: { head: 4, get: 1 },
        results: [
          { status: 'current', reference: 'a', digest: 'd', otherPlatformsChanged: false },
          { status: 'moved', reference: 'b', digest: 'd', moves: [move('sent'), move('already-sent')] },
          { status: 'deferred', reference: 'c', reason: 'rate limited' },
          { status: 'failed', reference: 'e', error: 'boom' },
        ],
      }),
    ).toEqual({
      checkedAt: 't',
      references: 4,
      current: 1,
      moved: 1,
      deferred: 1,
      failed: 1,
      alerts: { sent: 1, alreadySent: 1, notSent: 0 },
      requests: { head: 4, get: 1 },
    });
  });
});

import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { vaultStack } from './support';

/** The README's cost table counts what the stacks create; these tests keep the counts honest. */
describe('README cost table', () => {
  const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
  const table = readme.slice(readme.indexOf('### What it costs'), readme.indexOf('### Restore (on-call)'));
  const count = (type: string, replica: boolean) =>
    Object.keys(vaultStack({}, replica).template().findResources(type)).length;

  it('counts every alarm, with and without a replica', () => {
    // GIVEN the CloudWatch row: "<n> alarms (<m> without a replica)"
    const row = /\| CloudWatch \s*\| (\d+) alarms \((\d+) without a replica[;)]/.exec(table);
    expect(row).not.toBeNull();
    // THEN
    expect(Number(row![1])).toBe(count('AWS::CloudWatch::Alarm', true));
    expect(Number(row![2])).toBe(count('AWS::CloudWatch::Alarm', false));
  });

  it('counts every KMS key of the vault and its replica', () => {
    const row = /\| KMS \s*\| (\d+) keys/.exec(table);
    expect(row).not.toBeNull();
    const { app } = vaultStack({}, true);
    const keys = app
      .synth()
      .stacks.flatMap((s) =>
        Object.values((s.template as { Resources: Record<string, { Type: string }> }).Resources).filter(
          (r) => r.Type === 'AWS::KMS::Key',
        ),
      );
    expect(Number(row![1])).toBe(keys.length);
  });
});

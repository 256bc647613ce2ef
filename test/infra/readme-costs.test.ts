import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { vaultStack } from './support';

/** Lambda's published figures: one full vCPU at 1,769 MB; arm64 price per GB-second (us-east-1). */
const MB_PER_VCPU = 1769;
const ARM_PRICE_PER_GB_S = 0.0000133334;

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

/**
 * The snapshot Lambda's sizing: the README states a measured throughput per vCPU and derives from it, for each memory
 * setting, the projected throughput, seconds and cost per GiB, and marks the configured one. These tests redo that
 * arithmetic and hold the configured row (and every other mention of the memory) to what the construct synthesizes.
 */
describe('README snapshot Lambda sizing', () => {
  const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
  const sizing = readme.slice(readme.indexOf('### Lambda sizing'), readme.indexOf('### Alerts'));
  const costs = readme.slice(readme.indexOf('### What it costs'), readme.indexOf('### Restore (on-call)'));
  const num = (s: string) => Number(s.replace(/,/g, ''));
  const snapshotFunction = () => {
    const fns = Object.values(vaultStack({}, false).template().findResources('AWS::Lambda::Function')).filter(
      (r) =>
        String((r as { Properties: { Description?: string } }).Properties.Description).startsWith(
          'Snapshots',
        ),
    );
    expect(fns).toHaveLength(1);
    return (fns[0] as { Properties: { MemorySize: number; Architectures: string[] } }).Properties;
  };
  /** "one CPU copies **85 MiB/s**": the measured figure everything else derives from. */
  const measured = () => {
    const m = /one CPU copies \*\*(\d+) MiB\/s\*\*/.exec(sizing);
    expect(m).not.toBeNull();
    return Number(m![1]);
  };
  const rows = () =>
    [
      ...sizing.matchAll(
        /^\| ([\d,]+) MB( \(configured\))?\s*\| ([\d.]+)\s*\| (\d+)\s*\| ([\d.]+)\s*\| \$([\d.]+)\s*\|$/gm,
      ),
    ].map((m) => ({
      memoryMb: num(m[1]),
      configured: Boolean(m[2]),
      share: Number(m[3]),
      mibPerS: Number(m[4]),
      secondsPerGiB: Number(m[5]),
      dollarsPerGiB: Number(m[6]),
    }));

  it('states the memory and architecture the snapshot function is synthesized with', () => {
    // GIVEN
    const fn = snapshotFunction();
    // THEN the sentence, the configured row and the price all speak of that function
    expect(num(/The snapshot Lambda has \*\*([\d,]+) MB\*\*/.exec(sizing)![1])).toBe(fn.MemorySize);
    expect(
      rows()
        .filter((r) => r.configured)
        .map((r) => r.memoryMb),
    ).toEqual([fn.MemorySize]);
    expect(fn.Architectures).toEqual(['arm64']);
    expect(sizing).toContain(`$${ARM_PRICE_PER_GB_S} per GB-s (arm64)`);
  });

  it('derives every row from the measured throughput per vCPU', () => {
    const perVcpu = measured();
    expect(rows().length).toBeGreaterThanOrEqual(3);
    for (const r of rows()) {
      // THEN (a single-threaded copy: time grows as 1 / share below one vCPU and gains nothing above it)
      const share = r.memoryMb / MB_PER_VCPU;
      const mibPerS = perVcpu * Math.min(1, share);
      const seconds = 1024 / mibPerS;
      expect(r.share).toBeCloseTo(share, 2);
      expect(r.mibPerS).toBe(Math.round(mibPerS));
      expect(r.secondsPerGiB).toBeCloseTo(seconds, 1);
      expect(r.dollarsPerGiB).toBeCloseTo(seconds * (r.memoryMb / 1024) * ARM_PRICE_PER_GB_S, 5);
    }
  });

  it('configures the cheapest setting per GiB, and the fastest among the cheapest', () => {
    const all = rows();
    const configured = all.find((r) => r.configured)!;
    const cheapest = Math.min(...all.map((r) => r.dollarsPerGiB));
    expect(configured.dollarsPerGiB).toBe(cheapest);
    for (const r of all.filter((x) => x.dollarsPerGiB === cheapest))
      expect(configured.secondsPerGiB).toBeLessThanOrEqual(r.secondsPerGiB);
  });

  it('quotes the same throughput and memory in the cost table, the start margin and the largest layer', () => {
    // GIVEN
    const perVcpu = measured();
    const memoryMb = snapshotFunction().MemorySize;
    const seconds = 1024 / (perVcpu * Math.min(1, memoryMb / MB_PER_VCPU));
    // THEN the cost table's row
    const row =
      /\| Snapshot Lambda\s*\| per GiB copied: 1 GiB ÷ (\d+) MiB\/s = ([\d.]+) s × ([\d.]+) GB × \$([\d.]+)\/GB-s ≈ \$([\d.]+)/.exec(
        costs,
      );
    expect(row).not.toBeNull();
    expect(Number(row![1])).toBe(perVcpu);
    expect(Number(row![2])).toBeCloseTo(seconds, 1);
    expect(Number(row![3])).toBeCloseTo(memoryMb / 1024, 2);
    expect(Number(row![4])).toBe(ARM_PRICE_PER_GB_S);
    expect(Number(row![5])).toBeCloseTo(seconds * (memoryMb / 1024) * ARM_PRICE_PER_GB_S, 5);
    // the start margin (3 minutes) and the largest layer in 15 minutes (900 s), in GiB
    const margin = /3 minutes copy ~(\d+) GiB at the (\d+) MiB\/s below/.exec(sizing);
    expect(margin).not.toBeNull();
    expect(Number(margin![2])).toBe(perVcpu);
    expect(Number(margin![1])).toBe(Math.round((180 * perVcpu) / 1024));
    const largest = /900 s × (\d+) MiB\/s ≈ \*\*(\d+) GiB\*\*/.exec(sizing);
    expect(largest).not.toBeNull();
    expect(Number(largest![1])).toBe(perVcpu);
    expect(Number(largest![2])).toBe(Math.floor((900 * perVcpu) / 1024));
  });
});

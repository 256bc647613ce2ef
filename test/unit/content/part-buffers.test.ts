import { PartBuffers } from '../../../lib/content/s3-upload';

describe('Class: PartBuffers', () => {
  it('makes at most max buffers, then hands back the ones given, first come first served', async () => {
    // Prepare
    const pool = new PartBuffers(16, 2);
    const a = await pool.take();
    const b = await pool.take();
    const order: string[] = [];

    // Act: two more wait, and are served in the order they asked
    const third = pool.take().then((buf) => (order.push('third'), buf));
    const fourth = pool.take().then((buf) => (order.push('fourth'), buf));
    await Promise.resolve();
    expect(order).toEqual([]);
    pool.give(b);
    pool.give(a);

    // Assess
    expect(await third).toBe(b);
    expect(await fourth).toBe(a);
    expect(order).toEqual(['third', 'fourth']);
    expect(a.length).toBe(16);
  });

  it('reuses a given buffer rather than making another', async () => {
    const pool = new PartBuffers(16, 3);
    const a = await pool.take();
    pool.give(a);
    expect(await pool.take()).toBe(a);
  });

  it('a discarded buffer is replaced by a new one, for a waiter or for later', async () => {
    // Prepare
    const pool = new PartBuffers(16, 1);
    const a = await pool.take();
    const waiter = pool.take();

    // Act
    pool.discard();

    // Assess: the waiter gets a buffer that is not the discarded one, and the pool still makes at most one
    const b = await waiter;
    expect(b).not.toBe(a);
    pool.discard();
    const c = await pool.take();
    expect(c).not.toBe(a);
    expect(c).not.toBe(b);
    let served = false;
    void pool.take().then(() => (served = true));
    await new Promise((r) => setImmediate(r));
    expect(served).toBe(false);
  });

  it('refuses a pool with no buffers', () => {
    expect(() => new PartBuffers(16, 0)).toThrow('max must be at least 1, got 0');
  });
});

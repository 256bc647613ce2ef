import { TimeoutSettingError, parseSeconds, timeoutsFromEnv } from '../../../lib/content/timeouts';

describe('Function: timeoutsFromEnv', () => {
  it('reads IMAGEVAULT_TIMEOUT and IMAGEVAULT_IDLE_TIMEOUT in seconds, fractions allowed', () => {
    expect(timeoutsFromEnv({ IMAGEVAULT_TIMEOUT: '900', IMAGEVAULT_IDLE_TIMEOUT: '0.5' })).toEqual({
      requestTimeoutMs: 900_000,
      idleTimeoutMs: 500,
    });
  });

  it('leaves the defaults to the clients when unset or empty', () => {
    expect(timeoutsFromEnv({})).toEqual({});
    expect(timeoutsFromEnv({ IMAGEVAULT_TIMEOUT: '', IMAGEVAULT_IDLE_TIMEOUT: '' })).toEqual({});
  });

  it('throws naming the variable and the value when it is not a positive number of seconds', () => {
    for (const bad of ['0', '-1', 'soon', ' ', 'Infinity']) {
      expect(() => timeoutsFromEnv({ IMAGEVAULT_TIMEOUT: bad })).toThrow(
        new TimeoutSettingError('IMAGEVAULT_TIMEOUT', bad),
      );
    }
    expect(() => timeoutsFromEnv({ IMAGEVAULT_IDLE_TIMEOUT: 'soon' })).toThrow(
      'IMAGEVAULT_IDLE_TIMEOUT must be a number of seconds greater than 0, got "soon"',
    );
  });
});

describe('Function: parseSeconds', () => {
  it('names the setting it read', () => {
    expect(parseSeconds('2.5', '--timeout')).toBe(2.5);
    expect(() => parseSeconds('0', '--timeout')).toThrow(/^--timeout must be a number of seconds/);
  });
});

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  globalSetup: '<rootDir>/test/testbed/global-setup.ts',
  globalTeardown: '<rootDir>/test/testbed/global-teardown.ts',
  testTimeout: 120000,
};

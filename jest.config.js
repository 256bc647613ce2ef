/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  // The consumer fixture imports the constructs by their package name (test/consumer/app.ts); here that is the
  // sources, test/consumer/package.test.ts runs it against the packed package.
  moduleNameMapper: { '^imagevault/constructs$': '<rootDir>/lib/infra/constructs' },
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
    // ESM-only packages, loaded by the Kubernetes adapter: made CommonJS as the CLI bundle makes them.
    '^.+\\.js$': '<rootDir>/test/esm-transform.js',
  },
  transformIgnorePatterns: ['/node_modules/(?!(@kubernetes/client-node|openid-client|oauth4webapi|jose)/)'],
  // Records the AWS calls of the Lambda handlers and the CLI's reader paths, and checks them against the deployed
  // IAM policies (test/contract).
  setupFilesAfterEnv: ['<rootDir>/test/contract/setup.ts'],
  globalSetup: '<rootDir>/test/testbed/global-setup.ts',
  globalTeardown: '<rootDir>/test/testbed/global-teardown.ts',
  testTimeout: 120000,
};

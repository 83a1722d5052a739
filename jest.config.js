/** Unit and integration tests. Integration tests expect the stack that scripts/test.sh starts. */
module.exports = {
  testEnvironment: 'node',
  rootDir: '.',
  testMatch: ['<rootDir>/test/**/*.spec.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60_000,
  // Integration tests share one stack; running files in parallel would only fight over 2 cores.
  maxWorkers: 2,
};

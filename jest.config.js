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
  // A worker that has grown past this after a file (big test buffers, modules of earlier files)
  // is replaced before the next one, so the suite's memory stays flat over ~95 files.
  workerIdleMemoryLimit: '1GB',
};

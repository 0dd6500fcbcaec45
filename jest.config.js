/**
 * Jest + ts-jest. Test files are transpiled one by one (ts.transpileModule via
 * `isolatedModules: true`, no type information) for speed; type checking is
 * `npm run typecheck` (tsc --noEmit), which `npm test` runs first.
 *
 * ts-jest 29.4's own `isolatedModules` option is deprecated (it warns), so the
 * flag is passed as a tsconfig override instead; everything else comes from
 * tsconfig.json.
 *
 * @type {import('jest').Config}
 */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: { isolatedModules: true } }],
    // bull-board's @fastify/static requires content-disposition, which ships only as an ES
    // module: Node 20.19+ loads that natively, jest's module runtime does not, so tests get
    // it compiled to CommonJS.
    '/node_modules/content-disposition/.+\\.js$': ['ts-jest', { tsconfig: { allowJs: true, isolatedModules: true } }],
  },
  transformIgnorePatterns: ['/node_modules/(?!content-disposition/)'],
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 120000,
};

/**
 * Jest + ts-jest, in three projects by what a test needs on the machine:
 *
 * - `unit` (test/unit): nothing at all, no server, no global set-up; runs in seconds.
 * - `component` (test/component): real redis-server instances the tests start themselves
 *   (test/support/redis-server.ts), never Elasticsearch.
 * - `integration` (test/integration): the global search-engine set-up (test/support/global-setup.ts:
 *   the default Elasticsearch and the engine matrix of test/support/engines.ts, once per run)
 *   and often the built CLI in dist/.
 *
 * `npm test` runs all three; `npm run test:unit` (and :component, :integration) one of them.
 * Under test/unit and test/component, a test's folder mirrors the source folder it tests.
 *
 * Test files are transpiled one by one (ts.transpileModule via `isolatedModules: true`, no type
 * information) for speed; type checking is `npm run typecheck` (tsc --noEmit), which `npm test`
 * runs first. ts-jest 29.4's own `isolatedModules` option is deprecated (it warns), so the flag
 * is passed as a tsconfig override instead; everything else comes from tsconfig.json.
 *
 * @type {import('jest').Config}
 */
const TIMEOUT_MS = 120000;

/**
 * Packages that ship only as ES modules: Node 24 require()s them natively, jest's module runtime
 * does not, so tests get them compiled to CommonJS: content-disposition (under bull-board's
 * @fastify/static), commander 15, nock 15 with @mswjs/interceptors and two of its dependencies.
 */
const ESM_ONLY = `(${['content-disposition', 'commander', 'nock', '@mswjs/interceptors', '@open-draft/until', 'rettime'].join('|')})`;

/** @type {import('jest').Config} */
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: { isolatedModules: true } }],
    [`/node_modules/${ESM_ONLY}/.+\\.m?js$`]: [
      '<rootDir>/test/support/esm-to-cjs-transform.js',
      { tsconfig: { allowJs: true, isolatedModules: true } },
    ],
  },
  transformIgnorePatterns: [`/node_modules/(?!${ESM_ONLY}/)`],
  testMatch: ['**/*.test.ts'],
  testTimeout: TIMEOUT_MS,
};

module.exports = {
  testTimeout: TIMEOUT_MS,
  projects: [
    { ...common, displayName: 'unit', roots: ['<rootDir>/test/unit'] },
    { ...common, displayName: 'component', roots: ['<rootDir>/test/component'] },
    {
      ...common,
      displayName: 'integration',
      roots: ['<rootDir>/test/integration'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};

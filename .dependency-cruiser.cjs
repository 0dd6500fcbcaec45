// Import boundaries and cycles (issue 11). `npm run deps:check` runs this; `npm test` runs that.
//
// The layers, low to high; each imports only from layers below it (and from its own):
//   shared/platform  config, logger, errors, redis connections, lifecycle, retry, metrics, tls
//   shared/core      the job contract (queue.ts), bytes, key-state, versions, mapping, source
//   shared/sink      the sink port (port.ts) and one folder per search engine's adapter
//   features/        search, http, maintenance (verify, replay, repair): only shared/*
//   producers/, workers/   only shared/*; never each other, never features/
//   cli/, bench/, scripts/ on top: anything. test/: anything.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment:
        'An import cycle means neither module can be understood, tested or loaded without the other (and CommonJS ' +
        'hands one of them a half-initialised module). Move the shared piece down a layer or invert the dependency.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'producers-not-workers',
      severity: 'error',
      comment: 'Producers and workers run as separate processes and meet only through the job contract in shared/.',
      from: { path: '^producers/' },
      to: { path: '^workers/' },
    },
    {
      name: 'workers-not-producers',
      severity: 'error',
      comment: 'Producers and workers run as separate processes and meet only through the job contract in shared/.',
      from: { path: '^workers/' },
      to: { path: '^producers/' },
    },
    {
      name: 'capture-and-index-not-features',
      severity: 'error',
      comment:
        'The pipeline (producers, workers) must not depend on features (search, HTTP, maintenance); a feature that ' +
        "needs to react to a write gets an injected hook instead (e.g. the worker's after-write hook for the search cache).",
      from: { path: '^(producers|workers)/' },
      to: { path: '^features/' },
    },
    {
      name: 'capture-modes-apart',
      severity: 'error',
      comment:
        'A capture mode is a plugin: it builds on shared/ and the capture contract, never on another mode, so a ' +
        'mode can be added or removed as one folder.',
      from: { path: '^producers/capture/([^/]+)/' },
      to: { path: '^producers/capture/[^/]+/', pathNot: '^producers/capture/$1/' },
    },
    {
      name: 'capture-modes-not-host',
      severity: 'error',
      comment: 'The host runs a mode and the registry names it; a mode that reached back into either would be a cycle.',
      from: { path: '^producers/capture/[^/]+/' },
      to: { path: '^producers/capture/(host|registry)\\.ts$' },
    },
    {
      name: 'only-the-registry-names-modes',
      severity: 'error',
      comment: 'The registry is the one place that lists the modes; everything else asks it (tests may load a plugin).',
      from: {
        path: '^(shared|features|producers|workers|cli|bench|scripts)/',
        pathNot: '^producers/capture/registry\\.ts$',
      },
      to: { path: '^producers/capture/[^/]+/plugin\\.ts$' },
    },
    {
      name: 'features-only-shared',
      severity: 'error',
      comment: 'Features build on shared/ only; they must not reach into the pipeline or the entry points.',
      from: { path: '^features/' },
      to: { path: '^(producers|workers|cli|bench|scripts)/' },
    },
    {
      name: 'shared-not-up',
      severity: 'error',
      comment: 'shared/ is the bottom of the house: it never imports a feature, the pipeline or an entry point.',
      from: { path: '^shared/' },
      to: { path: '^(producers|workers|features|cli|bench|scripts|test)/' },
    },
    {
      name: 'platform-not-core-or-sink',
      severity: 'error',
      comment: 'shared/platform knows nothing of the product: no job contract, mapping or Elasticsearch specifics.',
      from: { path: '^shared/platform/' },
      to: { path: '^shared/(core|sink)/' },
    },
    {
      name: 'core-not-sink',
      severity: 'error',
      comment: "shared/core is the product's contract, independent of where documents are written (shared/sink).",
      from: { path: '^shared/core/' },
      to: { path: '^shared/sink/' },
    },
    {
      name: 'elasticsearch-client-only-in-its-adapter',
      severity: 'error',
      comment:
        'Everything engine-specific lives behind the sink port (shared/sink/port.ts): only the Elasticsearch adapter ' +
        'imports its clients. Exceptions: bench/support.ts, whose baseline harnesses (a bulk loader, the probes that ' +
        'read documents back) measure the engine itself, beside the pipeline under test; and test/, which arranges ' +
        'and inspects indices with calls the port deliberately does not offer.',
      from: { pathNot: ['^shared/sink/elasticsearch/', '^bench/support\\.ts$', '^test/'] },
      to: { path: '(^|/)node_modules/(@elastic/elasticsearch|elasticsearch9)/' },
    },
    {
      name: 'opensearch-client-only-in-its-adapter',
      severity: 'error',
      comment:
        'Everything engine-specific lives behind the sink port (shared/sink/port.ts): only the OpenSearch adapter ' +
        "imports its client. Exceptions: bench/baseline-opensearch.ts, the bench's OpenSearch bulk-limit baseline and " +
        'probes (as bench/support.ts is for Elasticsearch); and test/, which arranges and inspects indices with calls ' +
        'the port does not offer.',
      from: { pathNot: ['^shared/sink/opensearch/', '^bench/baseline-opensearch\\.ts$', '^test/'] },
      to: { path: '(^|/)node_modules/@opensearch-project/opensearch/' },
    },
    {
      name: 'product-not-test',
      severity: 'error',
      comment: 'Shipped code must not load test helpers (test/ is not in the Docker image).',
      from: { path: '^(shared|features|producers|workers|cli)/' },
      to: { path: '^test/' },
    },
    {
      name: 'product-not-dev-dependencies',
      severity: 'error',
      comment:
        'The Docker image prunes devDependencies (npm prune --omit=dev): shipped code that imports one fails at run ' +
        'time in production only. Type-only imports are erased and allowed.',
      from: { path: '^(shared|features|producers|workers|cli)/' },
      to: { dependencyTypes: ['npm-dev'], dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'declared-packages-only',
      severity: 'error',
      comment:
        "A package that is only installed as somebody else's dependency can vanish or change major with any " +
        'upgrade: declare it in package.json.',
      from: {},
      to: { dependencyTypes: ['npm-no-pkg', 'npm-unknown'] },
    },
    {
      name: 'resolvable',
      severity: 'error',
      comment: 'An import that does not resolve to a file or package is a broken build waiting for a code path.',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-orphans',
      severity: 'error',
      comment:
        'A module nothing imports and that imports nothing of ours is dead code or a forgotten entry point. Entry ' +
        'points (tests, jest transformers, scripts/ run by npm scripts, config files, examples) are exempt.',
      from: {
        orphan: true,
        pathNot: [
          '(^|/)\\.[^/]+\\.(c|m)?js$',
          '\\.d\\.ts$',
          '(^|/)[^/]+\\.config\\.(c|m)?js$',
          '^examples/',
          '^scripts/',
          '\\.test\\.ts$',
          // A jest transformer: jest.config.js names it by path, nothing imports it.
          '^test/support/[^/]+-transform\\.js$',
        ],
      },
      to: {},
    },
  ],
  options: {
    // Build output, installed packages and local stacks are not source.
    exclude: { path: '^(dist|coverage|node_modules|\\.cache|\\.stack[^/]*)/' },
    doNotFollow: { path: 'node_modules' },
    // Type-only imports count: a layer violation through a type is still a violation (and cycles
    // through types were found this way).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['main', 'types', 'typings'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};

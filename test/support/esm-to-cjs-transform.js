/**
 * ts-jest for the ESM-only packages jest.config.js lists: compiled to CommonJS, with
 * `import.meta.url` (which CommonJS has no syntax for; @mswjs/interceptors, under nock 15,
 * reads it to find its WASM parser) turned into the same URL built from __filename.
 */
const { TsJestTransformer } = require('ts-jest');

const IMPORT_META_URL = /\bimport\.meta\.url\b/g;
const CJS_URL = "require('node:url').pathToFileURL(__filename).href";
const rewrite = (source) => source.replace(IMPORT_META_URL, CJS_URL);

module.exports = {
  createTransformer(options) {
    const tsJest = new TsJestTransformer(options);
    return {
      canInstrument: false,
      process: (source, path, transformOptions) => tsJest.process(rewrite(source), path, transformOptions),
      getCacheKey: (source, path, transformOptions) => tsJest.getCacheKey(rewrite(source), path, transformOptions),
    };
  },
};

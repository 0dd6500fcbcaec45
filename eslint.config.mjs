// ESLint flat config. TypeScript files are linted with type information (typescript-eslint's
// project service reads tsconfig.json), so the rules that need types — floating and misused
// promises, exhaustive switches, the no-unsafe-* family — see what tsc sees.
// Every override below carries the reason it exists; a new one must too.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    // Build output, installed packages, local stacks and caches: nothing hand-written.
    ignores: ['dist/', 'coverage/', '.cache/', '.stack/', '.stack-test/', '.stack-bench/', 'bench/results/'],
  },
  {
    // An `eslint-disable` comment that no longer suppresses anything is stale; report it so it
    // goes away with the code it excused.
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  eslint.configs.recommended,
  tseslint.configs.strictTypeChecked,
  tseslint.configs.stylisticTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: {
          // The root config files are outside tsconfig.json's include; they are linted with the
          // default project instead of widening the product's tsconfig.
          allowDefaultProject: ['*.js', '*.mjs', '*.cjs', 'examples/*.js'],
        },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      // Named in issue 11 as must-haves. strictTypeChecked already has no-floating-promises; it is
      // spelled out so that nobody drops it with a preset change.
      '@typescript-eslint/no-floating-promises': 'error',
      // A switch over a union must handle every member; `default` does not excuse a missing case
      // (a new capture mode or job kind must be handled everywhere, not fall into a default).
      '@typescript-eslint/switch-exhaustiveness-check': [
        'error',
        { considerDefaultExhaustiveForUnions: false, requireDefaultForNonUnion: false },
      ],
      // Type-only imports are erased under isolatedModules and never load a module at run time
      // (no accidental import cycles through types). Mechanical: `eslint --fix` rewrites them.
      // `typeof import('x')` stays allowed: it is the only way to type jest.requireActual inside a
      // hoisted jest.mock factory, which cannot see the file's imports.
      '@typescript-eslint/consistent-type-imports': [
        'error',
        { prefer: 'type-imports', fixStyle: 'separate-type-imports', disallowTypeAnnotations: false },
      ],
      // Numbers and booleans in template literals are how this code builds log lines, keys and
      // index names; forcing String(n) everywhere adds noise without catching bugs. Objects,
      // arrays, null/undefined and unknown stay forbidden (they print as [object Object] / "undefined").
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // `() => this.flush()` handed to a timer or event emitter is idiomatic and returns nothing
      // anyone reads; void in a condition, an assignment or a value-returning function is still reported.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true }],
      // Conflicts with strict's no-non-null-assertion: its fix rewrites `x as Buffer` into `x!`,
      // which the strict set then forbids. Which of the two a line needs is decided by hand.
      '@typescript-eslint/non-nullable-type-assertion-style': 'off',
      // `async` on a method that implements a Promise-returning interface (stop(), start(), a
      // test double) but awaits nothing is deliberate: a throw inside still becomes a rejection,
      // which is what callers handle. The hazards on the calling side (promises dropped or passed
      // where a void callback is expected) stay covered by no-floating-promises and no-misused-promises.
      '@typescript-eslint/require-await': 'off',
      // `_`-prefixed parameters and destructured leftovers are deliberate (callback signatures,
      // omitting a field with a rest pattern); tsc's noUnusedLocals/Parameters follow the same rule.
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tests assert on values they just built; non-null assertions after `expect(...).toBeDefined()`
    // or on fixture arrays are the readable way to say so. Product code must handle the undefined case.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      // jest's asymmetric matchers (expect.stringContaining(), expect.any(), …) are typed `any`
      // by @types/jest; every `toEqual({ error: expect.stringMatching(...) })` would be reported.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      // Fixtures are declared `let server: RedisServerHandle;` and set in beforeAll; afterAll's
      // `server?.stop()` is for the run where beforeAll failed, which the declared type hides.
      '@typescript-eslint/no-unnecessary-condition': 'off',
    },
  },
  {
    // Plain JavaScript (jest.config.js, the transform example, this file): CommonJS with no types
    // to check; the type-aware rules would only report `any` from require().
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      globals: {
        module: 'writable',
        require: 'readonly',
        __dirname: 'readonly',
        process: 'readonly',
        console: 'readonly',
      },
    },
    rules: {
      // CommonJS files must use require(); that is what they are.
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
);

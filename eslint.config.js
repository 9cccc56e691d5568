// ESLint flat config. The layer rules (DESIGN.md §3) are exported on their own so a test can prove
// that a forbidden import is refused without type information.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import importPlugin from 'eslint-plugin-import';

// server/dashboard is browser code inside server/: its own layer, listed after server so its rules win.
const layers = ['shared', 'agent', 'server', 'server/dashboard', 'main', 'renderer'];
const nodeBuiltins = [
  'node:*', 'fs', 'fs/*', 'path', 'os', 'child_process', 'crypto', 'net', 'http', 'https', 'tls',
  'dgram', 'dns', 'util', 'stream', 'events', 'worker_threads', 'process', 'url', 'zlib', 'module',
];

/** Which layers each layer may not import from (import/no-restricted-paths zones). */
const forbiddenSources = {
  shared: ['agent', 'server', 'main', 'renderer', 'test', 'build'],
  agent: ['server', 'main', 'renderer', 'test', 'build'],
  server: ['agent', 'main', 'renderer', 'test', 'build'],
  main: ['agent', 'server', 'renderer', 'test', 'build'],
  renderer: ['agent', 'server', 'main', 'test', 'build'],
  // The rest of server/ is forbidden to it below (a zone with an exception for the dashboard itself).
  'server/dashboard': ['agent', 'main', 'renderer', 'test', 'build'],
};

/** Extra zones: the dashboard may not import the server around it (only shared/ and itself). */
const extraZones = [
  {
    target: './server/dashboard',
    from: './server',
    except: ['./dashboard'],
    message: 'server/dashboard/ is browser code: it may import shared/ and itself, not the server (layers: DESIGN.md §3).',
  },
];

const restricted = (patterns, message) => ({ group: patterns, message });

/** Per-folder package bans (no-restricted-imports). */
const packageBans = {
  shared: [
    restricted(nodeBuiltins, 'shared/ runs in every process, including sandboxed pages: no Node built-ins.'),
    restricted(['electron', 'electron/*'], 'electron is only for main/.'),
    restricted(['winston', 'fastify', 'better-sqlite3', 'usb', 'systeminformation', 'electron-store'], 'shared/ may use only its allow-listed packages (zod).'),
  ],
  agent: [
    restricted(['electron', 'electron/*', 'electron-store'], 'the agent is a Node service: electron is only for main/.'),
    restricted(['fastify', 'better-sqlite3'], 'server packages belong to server/.'),
  ],
  server: [
    restricted(['electron', 'electron/*', 'electron-store'], 'electron is only for main/.'),
    restricted(['usb', 'systeminformation'], 'device access belongs to agent/.'),
  ],
  main: [
    restricted(['fastify', 'better-sqlite3', 'usb'], 'main/ talks to the agent over IPC; it never touches devices or the database.'),
  ],
  'server/dashboard': [
    restricted(nodeBuiltins, 'dashboard pages run in a browser: no Node built-ins.'),
    restricted(['electron', 'electron/*'], 'electron is only for main/.'),
    restricted(['zod', 'winston', 'fastify', 'better-sqlite3', 'usb', 'systeminformation', 'electron-store', 'otpauth', 'qrcode'], 'dashboard pages load no packages (a page cannot resolve a bare import); types from shared/ only with `import type`.'),
  ],
  renderer: [
    restricted(nodeBuiltins, 'renderer pages are sandboxed: no Node built-ins.'),
    restricted(['electron', 'electron/*'], 'renderer pages reach the app only through the preload API.'),
    restricted(['winston', 'fastify', 'better-sqlite3', 'usb', 'systeminformation', 'electron-store'], 'renderer pages are sandboxed.'),
  ],
};

/** The layer rules alone (no type information needed). */
export const layerConfig = [
  {
    // .cts: the sandboxed preload is CommonJS (main/preload.cts) and obeys the same layers.
    files: ['**/*.ts', '**/*.cts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { import: importPlugin },
    settings: {
      'import/resolver': { typescript: { alwaysTryTypes: true, project: ['./*/tsconfig.json', './server/dashboard/tsconfig.json'], noWarnOnMultipleProjects: true }, node: true },
    },
    rules: {
      'import/no-restricted-paths': [
        'error',
        {
          zones: [
            ...Object.entries(forbiddenSources).flatMap(([target, from]) =>
              from.map((source) => ({
                target: `./${target}`,
                from: `./${source}`,
                message: `${target}/ may not import from ${source}/ (layers: DESIGN.md §3).`,
              })),
            ),
            ...extraZones,
          ],
        },
      ],
    },
  },
  ...layers.map((layer) => ({
    files: [`${layer}/**/*.ts`, `${layer}/**/*.cts`],
    rules: { 'no-restricted-imports': ['error', { patterns: packageBans[layer] }] },
  })),
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**', '**/*.d.ts', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['*.js'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['**/*.js'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Tests poke at internals and untyped JSON on purpose.
    files: ['test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  ...layerConfig,
);

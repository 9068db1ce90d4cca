// @ts-check
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', 'libs/testkit/kinds/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        // node:test's describe and it return promises the runner awaits itself.
        { allowForKnownSafeCalls: [{ from: 'package', name: ['describe', 'it'], package: 'node:test' }] },
      ],
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['amqplib', 'amqplib/*'],
              message: 'Only libs/broker talks to amqplib: import from @vigil/broker.',
            },
            {
              group: ['../../libs/*', '../../apps/*', '**/libs/*/src/*'],
              message: 'Import workspaces by package name (@vigil/...).',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['libs/broker/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // Contracts are schemas only: no I/O, so nothing from Node or the broker.
    files: ['libs/contracts/**'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['node:*', '@vigil/*', 'amqplib', 'pg', 'typeorm'],
              message: 'libs/contracts holds zod schemas only.',
            },
          ],
        },
      ],
    },
  },
  {
    // The dashboard's scripts run in the browser as plain ES modules, outside any TypeScript project.
    files: ['apps/manager/public/**/*.js'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      sourceType: 'module',
      globals: globals.browser,
    },
  },
  {
    files: ['**/*.mjs', '**/*.cjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: globals.node },
  },
);

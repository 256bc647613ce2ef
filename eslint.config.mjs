import js from '@eslint/js';
import jsdoc from 'eslint-plugin-jsdoc';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'cdk.out/', 'coverage/', '**/*.js', '**/*.mjs'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      'no-constant-condition': ['error', { checkLoops: false }],
      // zod's named `z` is a namespace re-export the bundler cannot trim: it carries all of zod and every locale
      // into the CLI and each Lambda (454 KB against 85 KB), and the CLI parses it on every start.
      'no-restricted-syntax': [
        'error',
        {
          selector: "ImportDeclaration[source.value='zod'] > ImportSpecifier[imported.name='z']",
          message: "Use `import * as z from 'zod'` (see eslint.config.mjs).",
        },
      ],
    },
  },
  {
    // The constructs are a library for other teams' CDK apps: every export, and every prop and public member of an
    // exported construct or interface, carries its documentation comment (TSDoc).
    files: ['lib/infra/**/*.ts'],
    plugins: { jsdoc },
    rules: {
      'jsdoc/require-jsdoc': [
        'error',
        {
          publicOnly: true,
          require: {
            ArrowFunctionExpression: true,
            ClassDeclaration: true,
            FunctionDeclaration: true,
            FunctionExpression: true,
            MethodDefinition: true,
          },
          checkConstructors: false,
          contexts: [
            'TSInterfaceDeclaration',
            'TSTypeAliasDeclaration',
            'TSInterfaceBody > TSPropertySignature',
            'TSEnumDeclaration',
            'ExportNamedDeclaration > VariableDeclaration',
            'PropertyDefinition:not([accessibility="private"])',
          ],
        },
      ],
    },
  },
);

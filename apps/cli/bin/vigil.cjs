#!/usr/bin/env node
// The command's entry, there from `npm ci` on (npm links it then), before `npm run build` makes dist/.
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS entry loading the compiled command
require('../dist/main.js');

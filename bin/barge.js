#!/usr/bin/env node
'use strict';
// `npx barge ...` runs this shim; the CLI itself is TypeScript compiled into dist/.
const path = require('node:path');
const fs = require('node:fs');

const entry = path.join(__dirname, '..', 'dist', 'src', 'cli', 'barge.js');
if (!fs.existsSync(entry)) {
  console.error('barge: the CLI is not built yet; run `npm run build` first.');
  process.exit(1);
}
require(entry);

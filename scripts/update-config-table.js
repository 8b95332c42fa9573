// Rewrites the README's table of configuration settings from the schema
// (src/config/schema.ts); test/config/docs.test.ts checks they agree.
// Run after `make ts`: node scripts/update-config-table.js
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { settingsTable } = require('../dist/src/config/schema');

const file = path.join(__dirname, '..', 'README.md');
const readme = fs.readFileSync(file, 'utf8');
const re = /(<!-- config-table:begin -->\n)[\s\S]*?(\n<!-- config-table:end -->)/;
if (!re.test(readme)) throw new Error('README.md has no config-table markers');
fs.writeFileSync(file, readme.replace(re, (_, a, b) => a + settingsTable() + b));

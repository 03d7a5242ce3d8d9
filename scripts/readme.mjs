#!/usr/bin/env node
// Renders README.md's generated sections (commands, exit codes, inventory fields)
// from the command table and reference text in dist/ (`npm run build` first).
// `node scripts/readme.mjs` rewrites README.md; a unit test checks that it agrees.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderReadme } from '../dist/cli/reference.js';

const file = join(import.meta.dirname, '..', 'README.md');
writeFileSync(file, renderReadme(readFileSync(file, 'utf8')));

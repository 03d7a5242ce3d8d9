#!/usr/bin/env node
'use strict';
// A CommonJS launcher (bin/package.json): node starts it without its ES module
// loader, which `enssib --help` then never needs. It prints the help the build
// wrote (dist/cli/help.json) when it was rendered for this terminal's width;
// anything else (or a missing or unreadable file) loads the CLI.
const { readFileSync } = require('node:fs');
const { join } = require('node:path');

function cachedHelp(argv) {
  if (argv.length !== 1 || (argv[0] !== '--help' && argv[0] !== '-h')) return null;
  try {
    const help = JSON.parse(readFileSync(join(__dirname, '..', 'dist', 'cli', 'help.json'), 'utf8'));
    const width = process.stdout.isTTY ? process.stdout.columns : 80;
    return width === 80 || (help.anyWidth && width > 80) ? help.text : null;
  } catch {
    return null;
  }
}

const argv = process.argv.slice(2);
const help = cachedHelp(argv);
if (help !== null) {
  process.stdout.write(help);
} else {
  import('../dist/cli/main.js').then(({ main }) =>
    main(argv).then((code) => {
      process.exitCode = code;
    }),
  );
}

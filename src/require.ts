import { createRequire } from 'node:module';

/**
 * Loads a CommonJS package (commander, ignore, ipaddr.js, yaml) with `require`
 * rather than `import`. Node 20 imports a CommonJS module only after scanning
 * its source for the names it exports (cjs-module-lexer), which costs more than
 * loading the module itself: importing commander, ignore and ipaddr.js took
 * about 60 ms of an unchanged `image push`, requiring them a few. Types still
 * come from `import type`.
 */
export const requireCjs = createRequire(import.meta.url);

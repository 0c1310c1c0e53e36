import { resolve } from 'node:path';

/**
 * How tests start the `gatehouse` CLI: `node --import tsx src/cli.ts …`, the sources under test.
 * `bin/gatehouse.js` runs the compiled dist/ (npm run build), which a test must not depend on
 * being fresh; test/cli/build.test.ts builds and starts the artifact itself.
 */
export const CLI_SOURCE = resolve(import.meta.dirname, '../../src/cli.ts');
/** tsx by absolute URL: the tests start the CLI in temporary directories, outside this checkout. */
const TSX = import.meta.resolve('tsx');
export const cliArgs = (...args: string[]): string[] => ['--import', TSX, CLI_SOURCE, ...args];

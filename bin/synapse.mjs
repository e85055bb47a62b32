#!/usr/bin/env node
// The `synapse` command: runs the built JavaScript in dist/ (made by `npm install` in a clone,
// through the `prepare` script, and shipped in the package). `--version` reads package.json and
// loads nothing else; every other command loads only the modules it uses.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
if (args.length === 1 && (args[0] === '--version' || args[0] === '-V')) {
  process.stdout.write(`${JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version}\n`);
} else {
  let cli;
  try {
    cli = await import('../dist/engine/cli/main.js');
  } catch (err) {
    if (err?.code !== 'ERR_MODULE_NOT_FOUND' || !String(err.message).includes('dist/engine/cli/main.js')) throw err;
    process.stderr.write('synapse: dist/ is missing: run `npm install` (or `npm run build`) in the repository\n');
    process.exit(1);
  }
  await cli.main(process.argv);
}

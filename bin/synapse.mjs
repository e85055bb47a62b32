#!/usr/bin/env node
// The `synapse` command. The engine is TypeScript run through tsx's loader, so the
// package needs no build step: `npm install` and it runs.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../engine/cli/main.ts');
await main(process.argv);

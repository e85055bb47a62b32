// The `synapse` command from the sources, for `npm run mutation` (tests/helpers/mutation.ts): the
// mutated sources run in the child instead of dist/, which Stryker never mutates.
import { main } from '../../engine/cli/main.ts';

await main(process.argv);

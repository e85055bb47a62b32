// Tests spawn the `synapse` command, which runs dist/, and open the console of dist/console:
// build the sources first when any is newer than the build, so `npm test` after an edit tests
// the edit (about 5–10 s when stale, nothing when dist/ is current).
// @ts-expect-error -- a plain .mjs script, without declarations
import { build } from '../scripts/build.mjs';

export default async function setup(): Promise<void> {
  await build();
}

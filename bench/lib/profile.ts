import { writeFile } from 'node:fs/promises';

/**
 * With BENCH_PROFILE=PREFIX, a CPU profile of each side's timed run (from its first read to its
 * last acknowledgement) goes to PREFIX.<side>.cpuprofile, for Chrome DevTools or any profile reader.
 * Returns what stops it and writes the file, or undefined when no profile was asked for.
 */
export async function startProfile(side: string): Promise<(() => Promise<void>) | undefined> {
  const prefix = process.env.BENCH_PROFILE;
  if (!prefix) return undefined;
  const { Session } = await import('node:inspector/promises');
  const session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.start');
  return async () => {
    const { profile } = await session.post('Profiler.stop');
    await writeFile(`${prefix}.${side}.cpuprofile`, JSON.stringify(profile));
    session.disconnect();
  };
}

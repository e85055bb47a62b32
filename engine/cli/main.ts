import { Command, Option } from 'commander';
import { ConfigInvalidError, SynapseError, errorMessage } from '../errors.ts';
import { settingErrors } from '../settings.ts';
import { packageVersion } from '../version.ts';

// Each command's module is imported when the command runs: `synapse validate` need not load
// Fastify, BullMQ and the whole runtime.
const dryRunCommand: typeof import('./commands/dry-run.ts').dryRunCommand = async (...a) => (await import('./commands/dry-run.ts')).dryRunCommand(...a);
const publishCommand: typeof import('./commands/publish.ts').publishCommand = async (...a) => (await import('./commands/publish.ts')).publishCommand(...a);
const schemaCommand: typeof import('./commands/schema.ts').schemaCommand = async (...a) => (await import('./commands/schema.ts')).schemaCommand(...a);
const runCommand: typeof import('./commands/run.ts').runCommand = async (...a) => (await import('./commands/run.ts')).runCommand(...a);
const dlqCommand: typeof import('./commands/streams.ts').dlqCommand = async (...a) => (await import('./commands/streams.ts')).dlqCommand(...a);
const replayCommand: typeof import('./commands/streams.ts').replayCommand = async (...a) => (await import('./commands/streams.ts')).replayCommand(...a);
const tailCommand: typeof import('./commands/streams.ts').tailCommand = async (...a) => (await import('./commands/streams.ts')).tailCommand(...a);
const tapCommand: typeof import('./commands/tap.ts').tapCommand = async (...a) => (await import('./commands/tap.ts')).tapCommand(...a);
const topCommand: typeof import('./commands/top.ts').topCommand = async (...a) => (await import('./commands/top.ts')).topCommand(...a);
const testCommand: typeof import('./commands/test.ts').testCommand = async (...a) => (await import('./commands/test.ts')).testCommand(...a);
const validateCommand: typeof import('./commands/validate.ts').validateCommand = async (...a) => (await import('./commands/validate.ts')).validateCommand(...a);

/** Builds the `synapse` command line. Each action resolves with the process exit code. */
export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('synapse')
    .description('Declarative event-flow engine for Redis Streams')
    .version(packageVersion(), '-V, --version', 'print the version')
    .showHelpAfterError()
    .addOption(new Option('--schemas <dir>', 'schema directory (default ./schemas, or SYNAPSE_SCHEMAS)'));

  const common = (cmd: Command) => ({ ...program.opts(), ...cmd.opts() });
  // Every command refuses a setting it cannot take before it does anything (engine/settings.ts).
  program.hook('preAction', () => {
    const bad = settingErrors();
    if (bad.length > 0) throw new SynapseError(bad.join('\n'));
  });

  program.command('validate')
    .description('lint pipelines, pipeline tests and schemas; exit 1 on any error')
    .argument('[paths...]', 'files or directories (default ./pipelines)')
    .option('--schemas <dir>', 'schema directory')
    .option('--strict', 'count warnings (type hints from the input schema) as errors')
    .action(async (paths: string[], _o, cmd: Command) => setExit(await validateCommand(paths, common(cmd))));

  program.command('test')
    .description('run pipeline test files (*.test.yaml); exit 1 on a failure')
    .argument('[paths...]', 'test files or directories (default ./pipelines)')
    .option('--schemas <dir>', 'schema directory')
    .option('--fuzz <n>', 'also feed N valid events generated from each pipeline\'s input schema through it')
    .option('--seed <n>', 'the fuzz seed, to replay a run (default: random, printed)')
    .option('--coverage', 'say which outcomes and expression branches of each pipeline its test cases reach')
    .option('--junit <file>', 'also write the results as JUnit XML to this file, for CI servers')
    .action(async (paths: string[], _o, cmd: Command) => setExit(await testCommand(paths, common(cmd))));

  program.command('dry-run')
    .description('feed events from a JSON Lines file through a pipeline, without Redis; one JSON line per event')
    .argument('<pipeline>', 'pipeline name (in ./pipelines) or file')
    .requiredOption('--input <file>', 'JSON Lines file of events (- for stdin)')
    .option('--pipelines <dir>', 'pipeline directory')
    .option('--schemas <dir>', 'schema directory')
    .action(async (ref: string, _o, cmd: Command) => setExit(await dryRunCommand(ref, common(cmd) as { input: string })));

  program.command('run')
    .description('run every pipeline against Redis (starts a redis-server of its own when none is found)')
    .option('--pipelines <dir>', 'pipeline directory (default ./pipelines)')
    .option('--schemas <dir>', 'schema directory')
    .option('--redis <url>', 'Redis URL (default REDIS_URL, else redis://127.0.0.1:6379)')
    .option('--port <n>', 'admin API port (default 8080, or SYNAPSE_ADMIN_PORT)')
    .option('--host <addr>', 'admin API address (default 127.0.0.1, or SYNAPSE_ADMIN_HOST)')
    .option('--no-watch', 'do not hot-reload pipelines/ and schemas/')
    .action(async (_o, cmd: Command) => {
      const code = await runCommand(common(cmd));
      setExit(code);
      // Stopped. Whatever still holds the process — a request to a sink that never answered, cut
      // short by the shutdown time-out — must not keep it alive.
      setTimeout(() => process.exit(code), 1000).unref();
    });

  program.command('publish')
    .description("validate events against their schemas (chosen by the event's type), then XADD them")
    .argument('<stream>', 'stream key')
    .argument('[json]', 'one event as JSON')
    .option('--file <file>', 'JSON Lines file of events')
    .option('--schema <id>', 'validate against this schema $id instead of choosing by type')
    .option('--no-validate', 'skip schema validation')
    .option('--maxlen <n>', 'cap the stream near this length')
    .option('--fields', 'write flat field maps (for codec: fields pipelines) instead of a payload field')
    .option('--source <name>', 'source of events that name none (default synapse-cli); a missing timestamp is now')
    .option('--redis <url>', 'Redis URL')
    .option('--schemas <dir>', 'schema directory')
    .action(async (stream: string, json: string | undefined, _o, cmd: Command) => setExit(await publishCommand(stream, json, common(cmd))));

  program.command('tail')
    .description('print the last entries of a stream, then each new one, as JSON lines (like tail -f)')
    .argument('<stream>', 'stream key')
    .option('--last <n>', 'how many of the latest entries to show first (default 10; 0: only new ones)')
    .option('--from <id>', 'start after this entry id instead')
    .option('--schemas <dir>', 'schema directory (accepted by every command)')
    .option('--redis <url>', 'Redis URL')
    .action(async (stream: string, _o, cmd: Command) => setExit(await tailCommand(stream, common(cmd))));

  program.command('dlq')
    .description('inspect a DLQ stream, or run its entries again through the pipelines that failed them (via the running engine)')
    .argument('<action>', 'list | redrive')
    .argument('<stream>', 'DLQ stream key (e.g. platform-events:dlq)')
    .option('--ids <ids>', 'redrive: only these entry ids (comma-separated)')
    .option('--count <n>', 'list/redrive at most N entries (default 100)')
    .option('--from <id>', 'list: from this id or ISO time')
    .option('--admin <url>', 'redrive: admin API of the running engine (default SYNAPSE_ADMIN_URL or http://127.0.0.1:8080)')
    .option('--schemas <dir>', 'schema directory (accepted by every command)')
    .option('--redis <url>', 'Redis URL')
    .action(async (action: string, stream: string, _o, cmd: Command) => setExit(await dlqCommand(action, stream, common(cmd))));

  program.command('replay')
    .description('re-feed a time range of a stream into another stream, or through a pipeline of the running engine')
    .argument('<stream>', 'stream key')
    .requiredOption('--from <time>', 'stream id or ISO 8601 time')
    .option('--to <time>', 'stream id or ISO 8601 time (default: now)')
    .option('--types <types>', 'only these event types (comma-separated)')
    .option('--to-stream <stream>', 'copy into this stream')
    .option('--pipeline <name>', 'run through this pipeline of the running engine (via its admin API)')
    .option('--admin <url>', 'admin API of the running engine (default SYNAPSE_ADMIN_URL or http://127.0.0.1:8080)')
    .option('--schemas <dir>', 'schema directory (accepted by every command)')
    .option('--redis <url>', 'Redis URL')
    .action(async (stream: string, _o, cmd: Command) => setExit(await replayCommand(stream, common(cmd) as { from: string; to?: string })));

  program.command('top')
    .description('live per-pipeline view of the running engine: rate in/out, filtered, DLQ, lag, p99 stage time, generation')
    .option('--admin <url>', 'admin API of the running engine (default SYNAPSE_ADMIN_URL or http://127.0.0.1:8080)')
    .option('--interval <s>', 'seconds between refreshes (default 2)')
    .option('--once', 'print one table (rates over one interval) and exit')
    .option('--json', 'print each refresh as one JSON line')
    .option('--schemas <dir>', 'schema directory (accepted by every command)')
    .action(async (_o, cmd: Command) => setExit(await topCommand(common(cmd))));

  program.command('tap')
    .description("follow a pipeline of the running engine: one line per event with its path through the stages")
    .argument('<pipeline>', 'pipeline name')
    .option('--admin <url>', 'admin API of the running engine (default SYNAPSE_ADMIN_URL or http://127.0.0.1:8080)')
    .option('--count <n>', 'exit after N events')
    .option('--json', 'print each trace as JSON')
    .option('--schemas <dir>', 'schema directory (accepted by every command)')
    .action(async (pipeline: string, _o, cmd: Command) => setExit(await tapCommand(pipeline, common(cmd))));

  program.command('schema')
    .description('print the JSON Schema (draft-07) of a pipeline file or a pipeline test file, for editors (docs/editing.md)')
    .argument('<kind>', 'pipeline | test')
    .option('--schemas <dir>', 'schema directory (accepted by every command)')
    .action(async (kind: string) => setExit(await schemaCommand(kind)));

  return program;
}

/** Entry point of the `synapse` bin. */
export async function main(argv: string[]): Promise<void> {
  let exitCode = 0;
  const program = buildProgram((code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    // Config problems print as FILE:LINE:COL lines; other known errors as one line; the rest with a stack.
    if (err instanceof ConfigInvalidError || err instanceof SynapseError) process.stderr.write(`${err.message}\n`);
    else process.stderr.write(`synapse: ${errorMessage(err)}\n${(err as Error)?.stack ?? ''}\n`);
    exitCode = 1;
  }
  process.exitCode = exitCode;
}

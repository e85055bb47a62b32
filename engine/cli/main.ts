import { Command, Option } from 'commander';
import { ConfigInvalidError, SynapseError, errorMessage } from '../errors.ts';
import { dryRunCommand } from './commands/dry-run.ts';
import { testCommand } from './commands/test.ts';
import { validateCommand } from './commands/validate.ts';

/** Builds the `synapse` command line. Each action resolves with the process exit code. */
export function buildProgram(setExit: (code: number) => void): Command {
  const program = new Command('synapse')
    .description('Declarative event-flow engine for Redis Streams')
    .showHelpAfterError()
    .addOption(new Option('--schemas <dir>', 'schema directory (default ./schemas, or SYNAPSE_SCHEMAS)'));

  const common = (cmd: Command) => ({ ...program.opts(), ...cmd.opts() });

  program.command('validate')
    .description('lint pipelines, pipeline tests and schemas; exit 1 on any error')
    .argument('[paths...]', 'files or directories (default ./pipelines)')
    .option('--schemas <dir>', 'schema directory')
    .action(async (paths: string[], _o, cmd: Command) => setExit(await validateCommand(paths, common(cmd))));

  program.command('test')
    .description('run pipeline test files (*.test.yaml); exit 1 on a failure')
    .argument('[paths...]', 'test files or directories (default ./pipelines)')
    .option('--schemas <dir>', 'schema directory')
    .action(async (paths: string[], _o, cmd: Command) => setExit(await testCommand(paths, common(cmd))));

  program.command('dry-run')
    .description('feed events from a JSON Lines file through a pipeline, without Redis; one JSON line per event')
    .argument('<pipeline>', 'pipeline name (in ./pipelines) or file')
    .requiredOption('--input <file>', 'JSON Lines file of events (- for stdin)')
    .option('--pipelines <dir>', 'pipeline directory')
    .option('--schemas <dir>', 'schema directory')
    .action(async (ref: string, _o, cmd: Command) => setExit(await dryRunCommand(ref, common(cmd) as { input: string })));

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

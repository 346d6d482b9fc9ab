// `pullthrough config check [FILE]`: loads the configuration as `serve` would (the same errors,
// exit 2), then prints it as YAML with every default filled in and secrets masked, followed by
// the rpardini variables of the environment: which key each set, or why it was ignored.
import { Argument, Command } from 'commander';
import { stringify } from 'yaml';
import { effectiveConfig } from '../config/effective.ts';
import { loadConfig } from '../config/load.ts';
import { rpardiniEnv } from '../config/rpardini.ts';

export function configCommand(): Command {
  return new Command('config').description('look at the configuration').addCommand(
    new Command('check')
      .description(
        'validate FILE (else the defaults) with the environment over it, and print the result with ' +
          'secrets masked; exit 2 on an error',
      )
      .addArgument(new Argument('[file]', 'config.yaml to check'))
      .action((file: string | undefined) => check(file)),
  );
}

async function check(file: string | undefined): Promise<void> {
  const config = await loadConfig({ file });
  const { mapped, ignored } = rpardiniEnv(process.env);
  const lines = [
    `# pullthrough configuration: ${file ?? 'the defaults'}, with the environment over it`,
    '# (every key, defaults included; secrets masked; paths resolved)',
    stringify(effectiveConfig(config)).trimEnd(),
  ];
  if (mapped.length > 0 || ignored.length > 0) {
    lines.push('# rpardini/docker-registry-proxy variables in the environment:');
    for (const { env, key } of mapped) lines.push(`#   ${env}: sets ${key}`);
    for (const { env, why } of ignored) lines.push(`#   ${env}: ignored, ${why}`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

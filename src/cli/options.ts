// Options more than one command takes: `-c/--config FILE` (serve, ca rotate).
import { Option } from 'commander';

/** The parsed options of a command that takes only --config. */
export interface ConfigOptions {
  readonly config?: string;
}

export function configOption(): Option {
  return new Option(
    '-c, --config <file>',
    'read settings from this YAML file, else the built-in defaults; environment variables override both',
  );
}

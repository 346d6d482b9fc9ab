// UsageError: the command line cannot be used as given (unknown command or option, a missing or
// malformed value). run.ts prints it as one line and exits 2.

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

// The requests a CNCF distribution registry answered, from its text log: one "response completed"
// line each. The e2e upstream and the bench's pull-through mirror both count what they served.

export interface CompletedResponse {
  readonly method: string;
  readonly uri: string;
  readonly status: number;
  /** Body bytes sent. */
  readonly written: number;
}

export function completedResponses(log: string): CompletedResponse[] {
  return log
    .split('\n')
    .filter((line) => line.includes('msg="response completed"'))
    .map((line) => ({
      method: /http\.request\.method=(\S+)/.exec(line)?.[1] ?? '',
      uri: /http\.request\.uri="?([^"\s]+)"?/.exec(line)?.[1] ?? '',
      status: Number(/http\.response\.status=(\d+)/.exec(line)?.[1] ?? 0),
      written: Number(/http\.response\.written=(\d+)/.exec(line)?.[1] ?? 0),
    }));
}

// The seams tests use to start the app with fakes: name resolution, the sockets opened for
// clients and upstream, and the clock of mirror back-offs.
import { type Resolver } from '../net/guard.ts';
import { type Connector } from '../proxy/tunnel.ts';
import { type UpstreamOptions } from '../upstream/client.ts';

/** Seams for tests: name resolution and the sockets opened for clients and upstream. */
export interface AppSeams {
  readonly resolve?: Resolver;
  readonly connect?: Connector;
  readonly wrapUpstreamConnector?: UpstreamOptions['wrapConnector'];
  /** The clock of mirror back-offs (tests move it instead of sleeping). */
  readonly mirrorClock?: () => number;
}

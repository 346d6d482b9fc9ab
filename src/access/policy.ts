// A registry's policy (config `registries[].policy`, config/registries.ts): who may be served
// what the cache holds. verify: the upstream decides per client (authorize.ts). share: everyone
// gets everything, fetched with the configured credentials (upstream/login.ts). no-cache:
// relayed, never stored.
import type { Policy } from '../config/registries.ts';
import type { Destination } from '../http/destination.ts';

export type { Policy };

export type PolicyOf = (destination: Destination) => Policy;

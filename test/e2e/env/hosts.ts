// The e2e world's names in /etc/hosts, under its own tag (see test/helpers/etc-hosts.ts).
import { TaggedHosts } from '../../helpers/etc-hosts.ts';

export type { HostEntry } from '../../helpers/etc-hosts.ts';

export const hosts = new TaggedHosts('# pullthrough-e2e');

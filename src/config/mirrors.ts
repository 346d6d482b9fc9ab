// Mirror entries of a registry (`registries[].mirrors`), as containerd's hosts.toml and
// registries.conf users write them: `host[:port]`, a URL (`http://cache.internal:5000`, plain
// HTTP like a pullthrough mirror listener), an optional path prefix (`host/prefix`, as a
// registries.conf location), or `{host, tags, ns}`. Pure: parsing and the parsed shape only.

/** One mirror, parsed: where requests go and how its paths are written. */
export interface MirrorEntry {
  /** `https://host[:port]` or `http://host[:port]`. */
  readonly origin: string;
  /** `host:port`, as logs and metrics name the mirror. */
  readonly name: string;
  /** Path prefix put before the repository (`/v2/<prefix>/<name>/…`); empty: none. */
  readonly prefix: string;
  /** Tags may be resolved here (containerd's `resolve` capability, registries.conf `pull-from-mirror: all`). */
  readonly tags: boolean;
  /** Send `?ns=<registry>`, as containerd does to its mirrors (and a pullthrough mirror reads). */
  readonly ns: boolean;
}

const ENTRY =
  /^(?:(https?):\/\/)?(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?((?:\/[a-z0-9._-]+)*)\/?$/i;

/** `[http(s)://]host[:port][/prefix]`, or undefined when it is none. */
export function parseMirrorLocation(
  location: string,
): Pick<MirrorEntry, 'origin' | 'name' | 'prefix'> | undefined {
  const match = ENTRY.exec(location.trim());
  if (!match?.[2]) return undefined;
  const scheme = (match[1] ?? 'https').toLowerCase();
  const host = match[2].toLowerCase();
  const port = match[3] === undefined ? (scheme === 'https' ? 443 : 80) : Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  const defaultPort = scheme === 'https' ? 443 : 80;
  return {
    origin: `${scheme}://${host}${port === defaultPort ? '' : `:${port}`}`,
    name: `${host}:${port}`,
    prefix: (match[4] ?? '').replace(/^\//, ''),
  };
}

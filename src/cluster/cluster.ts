// One replica's part in a cluster (config `cluster`): the Redis link, its membership, the fill
// leases and the fills built on them, the internal endpoint the other replicas stream from, and
// the shared access answers, and the admin requests sent on to the bookkeeper. Built only when
// cluster.redis is set; app.ts wires it in.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { hostname } from 'node:os';
import type { AccessAnswer } from '../access/access.ts';
import type { BlobStore } from '../cache/blobs.ts';
import type { FillsOptions } from '../cache/fills.ts';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../log.ts';
import type { Keep } from '../cache/open.ts';
import { AdminForward } from './admin.ts';
import { ClusterBook } from './book.ts';
import { startEndpoint, type Endpoint } from './endpoint.ts';
import { ClusterFills } from './fills.ts';
import { Leases } from './leases.ts';
import { Members, type Member } from './members.ts';
import { RedisLink, redacted } from './redis.ts';
import { Remote } from './remote.ts';
import { SharedAccess } from './shared-access.ts';
import { RedisTags } from './tags.ts';

export type ClusterConfig = Config['cluster'];

export class Cluster {
  readonly me: Member;
  readonly #link: RedisLink;
  readonly #members: Members;
  readonly #leases: Leases;
  readonly #remote: Remote;
  readonly #access: SharedAccess;
  /** Tag records shared between replicas (cache/manifests.ts shareTags). */
  readonly tags: RedisTags;
  readonly #endpoint: Endpoint;
  readonly #log: Logger;
  #fills: ClusterFills | undefined;
  #book: ClusterBook | undefined;
  readonly #config: ClusterConfig;
  readonly #forward: AdminForward;
  /** The admin API for requests another replica authenticated (serveAdmin). */
  #admin: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  private constructor(parts: {
    me: Member;
    link: RedisLink;
    endpoint: Endpoint;
    secret: string;
    config: ClusterConfig;
    log: Logger;
  }) {
    const { me, link, config } = parts;
    this.me = me;
    this.#link = link;
    this.#endpoint = parts.endpoint;
    this.#log = parts.log;
    this.#config = config;
    const prefix = config.keyPrefix;
    this.#members = new Members(link.client, { prefix, me, heartbeatMs: config.heartbeat });
    this.#leases = new Leases(link.client, { prefix, me, ttlMs: config.leaseTtl });
    this.#remote = new Remote(parts.secret);
    this.tags = new RedisTags(link.client, prefix);
    this.#access = new SharedAccess(link.client, link.connection(), { prefix, me: me.id });
    this.#forward = new AdminForward({
      redis: link.client,
      prefix,
      me,
      secret: parts.secret,
      leaseTtlMs: config.leaseTtl,
      members: () => this.#members.known,
    });
    // A heartbeat as soon as Redis is back, so that /readyz and the others see us at once.
    link.onChange((up) => void (up ? this.#members.beat() : undefined));
  }

  /** Connects to Redis (or starts degraded without it) and opens the internal endpoint. */
  static async start(config: ClusterConfig, log: Logger, store: () => BlobStore): Promise<Cluster> {
    const { redis, secret } = config;
    if (redis === null || secret === null)
      throw new TypeError('cluster.redis and cluster.secret are required');
    const clusterLog = log.child({ module: 'cluster' });
    const late: { cluster?: Cluster } = {};
    const endpoint = await startEndpoint(config.listen.host, config.listen.port, {
      secret,
      localFill: (digest) => late.cluster?.localFill(digest),
      store: store(),
      members: () => late.cluster?.members ?? [],
      admin: () => late.cluster?.adminHandler,
      log: clusterLog,
    });
    const id = config.id ?? `${hostname()}-${process.pid}`;
    const { host } = config.listen;
    const reachable =
      host === '0.0.0.0' || host === '::' ? hostname() : host.includes(':') ? `[${host}]` : host;
    const url = config.advertise ?? `http://${reachable}:${endpoint.address.port}`;
    const link = new RedisLink(redis, clusterLog);
    const cluster = new Cluster({
      me: { id, url, since: Date.now() },
      link,
      endpoint,
      secret,
      config,
      log: clusterLog,
    });
    late.cluster = cluster;
    await link.start();
    cluster.#members.start();
    clusterLog.info({ id, url, redis: redacted(redis), up: link.up }, 'cluster member');
    return cluster;
  }

  /** The fills of this replica, coordinated with the others. */
  fills(store: BlobStore, options: FillsOptions): ClusterFills {
    this.#fills = new ClusterFills(store, {
      ...options,
      leases: this.#leases,
      remote: this.#remote,
      log: this.#log,
    });
    return this.#fills;
  }

  /** The cache's books kept by one replica for all (book.ts): `keep` opens them on the keeper. */
  book(keep: Keep, options: { maxSize: number }): ClusterBook {
    const config = this.#config;
    this.#book = new ClusterBook({
      redis: this.#link.client,
      prefix: config.keyPrefix,
      me: this.me,
      leaseTtlMs: config.leaseTtl,
      heartbeatMs: config.heartbeat,
      members: () => this.#members.known,
      keep,
      maxSize: options.maxSize,
      log: this.#log,
    });
    this.#book.start();
    return this.#book;
  }

  /** The fill of `digest` running on this replica (what the internal endpoint serves). */
  localFill(digest: string): ReturnType<ClusterFills['local']> {
    return this.#fills?.local(digest);
  }

  /**
   * The admin API's cluster-wide requests on a replica that does not keep the books: the
   * bookkeeper's answer (admin.ts), or a rejection saying why none can answer.
   */
  get adminForward(): { send: AdminForward['send']; retryAfterSeconds: number } {
    return {
      send: (req, res) => this.#forward.send(req, res),
      retryAfterSeconds: Math.ceil(this.#config.leaseTtl / 1000),
    };
  }

  /** Where the internal endpoint hands the admin requests other replicas send here. */
  serveAdmin(handler: (req: IncomingMessage, res: ServerResponse) => void): void {
    this.#admin = handler;
  }

  get adminHandler(): ((req: IncomingMessage, res: ServerResponse) => void) | undefined {
    return this.#admin;
  }

  /** Shares access answers: `onAnswer` for the Access options, then `learnInto` the Access. */
  readonly onAnswer = (answer: AccessAnswer): void => this.#access.publish(answer);

  learnInto(access: { learn(answer: AccessAnswer): void }): Promise<void> {
    return this.#access.start((answer) => {
      access.learn(answer);
      this.#log.debug({ kind: answer.kind }, 'access answer learnt from another replica');
    });
  }

  get members(): readonly Member[] {
    return this.#members.known;
  }

  get endpointPort(): number {
    return this.#endpoint.address.port;
  }

  /** What /readyz adds: degraded while Redis is down, and who is in the cluster. */
  readiness(): { degraded: string[]; info: string[] } {
    const degraded = this.#link.up ? [] : ['redis unreachable: fills coordinated on this replica only'];
    const ids = this.#members.known.map((member) => member.id);
    const keeper = this.#book?.keeper;
    return {
      degraded,
      info: [
        `cluster: ${ids.length} replicas (${ids.join(', ')}); this one: ${this.me.id}`,
        ...(this.#book ? [`cache bookkeeper: ${keeper ?? 'none (the book lease is vacant)'}`] : []),
      ],
    };
  }

  async close(): Promise<void> {
    await this.#book?.close();
    await this.#members.stop();
    this.#access.stop();
    await this.#endpoint.close();
    await this.#remote.close();
    await this.#forward.close();
    await this.#link.stop();
  }
}

// What the deployments (deploy/) expect of the pullthrough image, in one place: the e2e container
// test holds the built image to it, and test/integration/deploy.test.ts holds the Dockerfile and
// every manifest to it, so a change on one side fails until the other follows.
export const IMAGE_CONTRACT = {
  /** USER, numeric: Kubernetes checks runAsNonRoot only against a uid. */
  uid: 1000,
  gid: 1000,
  port: 3128,
  /** The CA (must persist) and the cache. */
  caDir: '/ca',
  cacheDir: '/cache',
  /** Where a config.yaml is mounted over the shipped one. */
  configFile: '/etc/pullthrough/config.yaml',
  liveness: '/healthz',
  readiness: '/readyz',
  /** The proxy's default shutdownTimeout: a stop must allow more than this. */
  drainSeconds: 10,
} as const;

// Which Node runs pullthrough: 24 or later (package.json "engines"; node:sqlite, undici 8 and
// zlib's zstd need it). main.ts asks before it loads anything else, so this file may use only
// what every Node since 14 can run, and imports nothing.

/** The oldest Node major that runs pullthrough; test/unit/node-version.test.ts holds it to "engines". */
export const REQUIRED_NODE_MAJOR = 24;

/** One line saying what to do when `version` (`process.version`, "v20.20.2") is too old, else undefined. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1]);
  if (major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `Node.js ${REQUIRED_NODE_MAJOR} or later is needed, this is Node.js ${version}: ` +
    `run it with \`npm start\` or \`npx pullthrough\` in its directory (both use the Node ` +
    `${REQUIRED_NODE_MAJOR} of its \`node\` devDependency), or install Node.js ` +
    `${REQUIRED_NODE_MAJOR} (https://nodejs.org/en/download)`
  );
}

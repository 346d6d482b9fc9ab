// One piece of the hardware floor of a cold fill, measured alone in its own process so that
// nothing else it does is counted: `node floor-probe.ts socket|file BYTES DIR` prints the CPU
// seconds (user + system, this process) that moving BYTES cost. Large buffers, reused.
import { openSync, closeSync, writeSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { once } from 'node:events';

const CHUNK = 2 ** 20;
const [kind, bytesArg, dir] = process.argv.slice(2);
const bytes = Number(bytesArg);
const buffer = Buffer.alloc(CHUNK, 0x5a);

function cpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

/** A loopback TCP copy: the kernel's send on one side and receive on the other, both counted. */
async function socketCopy(): Promise<void> {
  const server = net.createServer((socket) => {
    let sent = 0;
    const pump = () => {
      while (sent < bytes) {
        sent += CHUNK;
        if (!socket.write(buffer)) return void socket.once('drain', pump);
      }
      socket.end();
    };
    pump();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const receive = Buffer.alloc(CHUNK);
  let received = 0;
  const client = net.connect({
    port,
    host: '127.0.0.1',
    onread: {
      buffer: receive,
      callback: (n: number) => {
        received += n;
        return true;
      },
    },
  });
  await once(client, 'close');
  server.close();
  if (received !== bytes) throw new Error(`received ${received} of ${bytes} bytes`);
}

/** A write into the page cache of the filesystem under DIR (no fsync: a fill does not either). */
function fileWrite(): void {
  const file = path.join(dir ?? '.', `floor-${process.pid}`);
  const fd = openSync(file, 'w');
  try {
    for (let written = 0; written < bytes; written += CHUNK) writeSync(fd, buffer);
  } finally {
    closeSync(fd);
    unlinkSync(file);
  }
}

const before = cpuSeconds();
if (kind === 'socket') await socketCopy();
else if (kind === 'file') fileWrite();
else throw new Error(`unknown probe ${String(kind)}`);
process.stdout.write(`${cpuSeconds() - before}\n`);

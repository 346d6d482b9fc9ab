import { describe, expect, it } from 'vitest';
import { DeferredBook, NoBook, type CacheBook, type Readers } from '../../../src/cache/book.ts';

/** A book that writes down what it is told (readers and admission as a NoBook's). */
class Recorder implements CacheBook {
  readonly calls: string[] = [];
  readonly #plain: NoBook;
  constructor(readers: Readers | undefined) {
    this.#plain = new NoBook(readers);
  }
  reading = (digest: string) => this.#plain.reading(digest);
  inUse = (digest: string) => this.#plain.inUse(digest);
  admit = () => this.#plain.admit();
  close = () => this.#plain.close();
  usage = () => this.#plain.usage();
  used(digest: string): void {
    this.calls.push(`used ${digest}`);
  }
  storedBlob(digest: string, size: number): void {
    this.calls.push(`stored ${digest} ${size}`);
  }
  storedManifest(digest: string): void {
    this.calls.push(`stored manifest ${digest}`);
  }
  tagged(host: string, repository: string, tag: string, digest: string): void {
    this.calls.push(`tagged ${host}/${repository}:${tag} ${digest}`);
  }
}

describe('DeferredBook', () => {
  it('queues what happens while the index opens, hands it over, and counts readers throughout', async () => {
    let open: (book: CacheBook) => void = () => undefined;
    let shared: Readers | undefined;
    const book = new DeferredBook((readers) => {
      shared = readers;
      return new Promise((resolve) => (open = resolve));
    });
    const release = book.reading('sha256:a');
    book.storedBlob('sha256:b', 10, { host: 'r:443' });
    book.tagged('r:443', 'lib/x', 'v1', 'sha256:m');
    book.used('sha256:m');
    expect(book.inUse('sha256:a')).toBe(true);
    expect(await book.admit(1e15, 'r:443')).toBeUndefined(); // nothing is refused before the index

    const recorder = new Recorder(shared);
    open(recorder);
    await book.close();
    expect(recorder.calls).toEqual(['stored sha256:b 10', 'tagged r:443/lib/x:v1 sha256:m', 'used sha256:m']);
    expect(recorder.inUse('sha256:a')).toBe(true); // the reader counted before is known to the index's book
    release();
    expect(book.inUse('sha256:a')).toBe(false);
    book.used('sha256:n');
    expect(recorder.calls.at(-1)).toBe('used sha256:n');
  });

  it('drops the queue when the index never opens', async () => {
    const book = new DeferredBook(() => Promise.resolve(undefined));
    book.storedBlob('sha256:b', 10, { host: 'r:443' });
    await book.close();
    expect(await book.admit(10, 'r:443')).toBeUndefined();
  });
});

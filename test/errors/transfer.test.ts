import { expose, wrap } from 'comlink';
import { describe, expect, it } from 'vitest';
import { LetterboxError, OffsetOutOfRangeError, StorageFullError } from '../../src/errors';
import { registerErrorTransfer } from '../../src/errors';

registerErrorTransfer();

describe('errors crossing a Comlink boundary', () => {
  const { port1, port2 } = new MessageChannel();
  expose(
    {
      outOfRange: () => {
        throw new OffsetOutOfRangeError('orders', 3, 99, 10, 50);
      },
      full: async () => {
        throw new StorageFullError();
      },
      plain: () => {
        throw new TypeError('just a TypeError');
      },
      notAnError: () => {
        throw 'a string';
      },
    },
    port1,
  );
  const remote = wrap<{ outOfRange(): void; full(): Promise<void>; plain(): void; notAnError(): void }>(port2);

  it('keeps the class, code, retriable and the error’s own fields', async () => {
    const error = await remote.outOfRange().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OffsetOutOfRangeError);
    expect(error).toBeInstanceOf(LetterboxError);
    expect(error).toMatchObject({ name: 'OffsetOutOfRangeError', code: 'OFFSET_OUT_OF_RANGE', retriable: false, topic: 'orders', partition: 3, offset: 99 });
    expect((error as Error).message).toMatch(/offset 99 of orders-3/);
    const full = await remote.full().catch((e: unknown) => e);
    expect(full).toBeInstanceOf(StorageFullError);
    expect(full).toMatchObject({ code: 'KAFKA_STORAGE_ERROR', retriable: true });
  });

  it('passes other errors and thrown values through', async () => {
    const plain = await remote.plain().catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(Error);
    expect(plain).toMatchObject({ name: 'TypeError', message: 'just a TypeError' });
    await expect(remote.notAnError()).rejects.toBe('a string');
    port2.close();
  });
});

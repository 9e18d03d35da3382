// The peer bodies of the data path (FORMATS.md § produce, § fetch, § listOffsets): a broker
// forwards requests for partitions another broker leads to that broker, worker to worker.
// Each decoder returns exactly what was encoded (absent optional fields stay absent) or
// throws FrameError('CORRUPT_MESSAGE'); each encoder throws FrameError('INVALID_REQUEST') for
// a value its field cannot carry (a negative partition or byte count, acks 2, an offset
// below -1). Record batches travel as opaque bytes: the leader checks them as it checks a
// local producer's.
//
// Version 1 adds each partition's `leaderEpoch` to requests (KIP-320): the epoch of the
// partition's leadership as the sender's metadata knows it, -1 for unchecked (version 0 reads
// as -1). A leader whose epoch differs refuses the partition, so a sender with stale metadata
// never writes to or reads from a leadership that has moved on.
//
// Decoded batches are copies, not views of the frame (FieldReader.bytes): a view would keep
// its whole stream chunk (up to 1 MiB on the local transport) alive in a log's tail cache,
// structured clone (IndexedDB, postMessage) would copy the whole chunk, and transferring a
// fetched batch's buffer to the page would detach every other view of that chunk, such as a
// produce request from the same chunk still being appended. One memcpy per batch is cheap
// next to the network it came over.

import { FrameError, type LetterboxError } from '../errors';
import { readError, writeError } from './error-field';
import { FieldReader, FieldWriter, optional, tagReader } from './fields';
import type { MessageType } from './frame';

/** One partition's record batch (RecordBatch v2 bytes), for the leader of `leaderEpoch` (-1: unchecked). */
export interface PartitionBatch {
  readonly topic: string;
  readonly partition: number;
  readonly leaderEpoch: number;
  readonly bytes: Uint8Array;
}

export interface ProducePartitionResult {
  readonly topic: string;
  readonly partition: number;
  /** -1 with acks 0, or with an error. */
  readonly baseOffset: number;
  readonly logStartOffset: number;
  readonly error?: LetterboxError;
}

/** `produce` body: batches for partitions the receiver leads, or its results in the same order. */
export type ProduceMessage =
  | { readonly kind: 'request'; readonly clusterId: string; readonly acks: -1 | 0 | 1; readonly timeoutMs: number; readonly batches: readonly PartitionBatch[] }
  | { readonly kind: 'response'; readonly results: readonly ProducePartitionResult[] };

export interface FetchPartition {
  readonly topic: string;
  readonly partition: number;
  /** The leadership's epoch as the sender knows it; -1: unchecked. */
  readonly leaderEpoch: number;
  readonly fetchOffset: number;
  readonly maxBytes: number;
}

export type FetchErrorCode = 'OFFSET_OUT_OF_RANGE' | 'UNKNOWN_TOPIC_OR_PARTITION' | 'NOT_LEADER_OR_FOLLOWER' | 'FENCED_LEADER_EPOCH' | 'UNKNOWN_LEADER_EPOCH';

export interface FetchedPartitionBody {
  readonly topic: string;
  readonly partition: number;
  /** -1 where the partition could not be read. */
  readonly highWatermark: number;
  readonly logStartOffset: number;
  readonly batches: readonly Uint8Array[];
  readonly errorCode?: FetchErrorCode;
}

/** `fetch` body: partitions to read at the receiver, or what it read, in the same order. */
export type FetchMessage =
  | { readonly kind: 'request'; readonly clusterId: string; readonly maxWaitMs: number; readonly minBytes: number; readonly maxBytes: number; readonly partitions: readonly FetchPartition[] }
  | { readonly kind: 'response'; readonly partitions: readonly FetchedPartitionBody[] };

export type OffsetQueryBody = 'earliest' | 'latest' | { readonly timestamp: number };

/** `listOffsets` body: queries to the receiver, or each answer (an offset, none, or an error) in the same order. */
export type ListOffsetsMessage =
  | { readonly kind: 'request'; readonly clusterId: string; readonly queries: ReadonlyArray<{ readonly topic: string; readonly partition: number; readonly leaderEpoch: number; readonly query: OffsetQueryBody }> }
  | { readonly kind: 'response'; readonly results: ReadonlyArray<{ readonly offset: number | undefined } | { readonly error: LetterboxError }> };

const KIND_TAGS = { request: 0, response: 1 } as const;
const readKind = tagReader(KIND_TAGS, 'message kind');
const ACKS = [-1, 0, 1] as const;
/** Least offset a field may hold: -1 stands for none (acks 0, an error, an unreadable partition). */
const OFFSET_OR_NONE = -1;
const FETCH_ERRORS = { OFFSET_OUT_OF_RANGE: 0, UNKNOWN_TOPIC_OR_PARTITION: 1, NOT_LEADER_OR_FOLLOWER: 2, FENCED_LEADER_EPOCH: 3, UNKNOWN_LEADER_EPOCH: 4 } as const satisfies Record<FetchErrorCode, number>;
const readFetchError = tagReader(FETCH_ERRORS, 'fetch error code');
const QUERY_TAGS = { earliest: 0, latest: 1, timestamp: 2 } as const;
const readQueryKind = tagReader(QUERY_TAGS, 'offset query');

/** Encodes or decodes one body (versions 0 and 1), requiring every byte to be read. */
function messageType<Body>(id: number, what: string, write: (w: FieldWriter, body: Body, version: number) => void, read: (r: FieldReader, version: number) => Body): MessageType<Body> {
  return {
    id,
    versions: [0, 1],
    encode(body, version) {
      const w = new FieldWriter();
      write(w, body, version);
      return w.done();
    },
    decode(bytes, version) {
      const r = new FieldReader(bytes);
      const body = read(r, version);
      r.end(what);
      return body;
    },
  };
}

const writePartitionId = (w: FieldWriter, topic: string, partition: number) => w.string(topic).varint(partition, 'partition', 0);
const readPartitionId = (r: FieldReader) => ({ topic: r.string('topic'), partition: r.varint('partition', 0) });
/** A request's partition: its id, and from version 1 the leader epoch it is meant for. */
const writeRequestPartition = (w: FieldWriter, version: number, topic: string, partition: number, leaderEpoch: number) => {
  writePartitionId(w, topic, partition);
  return version >= 1 ? w.varint(leaderEpoch, 'leaderEpoch', -1) : w;
};
const readRequestPartition = (r: FieldReader, version: number) => ({ ...readPartitionId(r), leaderEpoch: version >= 1 ? r.varint('leaderEpoch', -1) : -1 });

/** `produce` (id 7). */
export const produceType = messageType<ProduceMessage>(
  7,
  'produce',
  (w, body, version) => {
    w.int8(KIND_TAGS[body.kind]);
    if (body.kind === 'request') {
      if (!ACKS.includes(body.acks)) throw new FrameError('INVALID_REQUEST', `acks ${body.acks} is not -1, 0 or 1`);
      w.string(body.clusterId).varint(body.acks, 'acks').varint(body.timeoutMs, 'timeoutMs', 0);
      w.array(body.batches, ({ topic, partition, leaderEpoch, bytes }) => writeRequestPartition(w, version, topic, partition, leaderEpoch).bytes(bytes));
      return;
    }
    w.array(body.results, ({ topic, partition, baseOffset, logStartOffset, error }) => {
      writePartitionId(w, topic, partition).varlong(baseOffset, 'baseOffset', OFFSET_OR_NONE).varlong(logStartOffset, 'logStartOffset', OFFSET_OR_NONE);
      if (w.present(error)) writeError(w, error);
    });
  },
  (r, version) => {
    if (readKind(r) === 'request') {
      const clusterId = r.string('clusterId');
      const acks = r.varint('acks', -1);
      if (!ACKS.includes(acks as -1 | 0 | 1)) throw new FrameError('CORRUPT_MESSAGE', `acks ${acks} is not -1, 0 or 1`);
      const timeoutMs = r.varint('timeoutMs', 0);
      const batches = r.array('batches', () => ({ ...readRequestPartition(r, version), bytes: r.bytes('batch') }));
      return { kind: 'request', clusterId, acks: acks as -1 | 0 | 1, timeoutMs, batches };
    }
    const results = r.array('results', () => {
      const result = { ...readPartitionId(r), baseOffset: r.varlong('baseOffset', OFFSET_OR_NONE), logStartOffset: r.varlong('logStartOffset', OFFSET_OR_NONE) };
      const error = optional(r, 'error', () => readError(r));
      return error === undefined ? result : { ...result, error };
    });
    return { kind: 'response', results };
  },
);

/** `fetch` (id 8). */
export const fetchType = messageType<FetchMessage>(
  8,
  'fetch',
  (w, body, version) => {
    w.int8(KIND_TAGS[body.kind]);
    if (body.kind === 'request') {
      w.string(body.clusterId).varint(body.maxWaitMs, 'maxWaitMs', 0).varint(body.minBytes, 'minBytes', 0).varint(body.maxBytes, 'maxBytes', 0);
      w.array(body.partitions, ({ topic, partition, leaderEpoch, fetchOffset, maxBytes }) => writeRequestPartition(w, version, topic, partition, leaderEpoch).varlong(fetchOffset, 'fetchOffset', 0).varint(maxBytes, 'maxBytes', 0));
      return;
    }
    w.array(body.partitions, ({ topic, partition, highWatermark, logStartOffset, batches, errorCode }) => {
      writePartitionId(w, topic, partition).varlong(highWatermark, 'highWatermark', OFFSET_OR_NONE).varlong(logStartOffset, 'logStartOffset', OFFSET_OR_NONE);
      w.array(batches, (batch) => w.bytes(batch));
      if (w.present(errorCode)) w.int8(FETCH_ERRORS[errorCode]);
    });
  },
  (r, version) => {
    if (readKind(r) === 'request') {
      const clusterId = r.string('clusterId');
      const maxWaitMs = r.varint('maxWaitMs', 0);
      const minBytes = r.varint('minBytes', 0);
      const maxBytes = r.varint('maxBytes', 0);
      const partitions = r.array('partitions', () => ({ ...readRequestPartition(r, version), fetchOffset: r.varlong('fetchOffset', 0), maxBytes: r.varint('maxBytes', 0) }));
      return { kind: 'request', clusterId, maxWaitMs, minBytes, maxBytes, partitions };
    }
    const partitions = r.array('partitions', () => {
      const partition = { ...readPartitionId(r), highWatermark: r.varlong('highWatermark', OFFSET_OR_NONE), logStartOffset: r.varlong('logStartOffset', OFFSET_OR_NONE), batches: r.array('batches', () => r.bytes('batch')) };
      const errorCode = optional(r, 'errorCode', () => readFetchError(r));
      return errorCode === undefined ? partition : { ...partition, errorCode };
    });
    return { kind: 'response', partitions };
  },
);

/** `listOffsets` (id 9). */
export const listOffsetsType = messageType<ListOffsetsMessage>(
  9,
  'listOffsets',
  (w, body, version) => {
    w.int8(KIND_TAGS[body.kind]);
    if (body.kind === 'request') {
      w.string(body.clusterId);
      w.array(body.queries, ({ topic, partition, leaderEpoch, query }) => {
        writeRequestPartition(w, version, topic, partition, leaderEpoch);
        if (typeof query === 'string') w.int8(QUERY_TAGS[query]);
        else w.int8(QUERY_TAGS.timestamp).varlong(query.timestamp, 'timestamp');
      });
      return;
    }
    w.array(body.results, (result) => {
      // 0: an offset, 1: none (no record at or after the timestamp), 2: an error.
      if ('error' in result) writeError(w.int8(2), result.error);
      else if (result.offset === undefined) w.int8(1);
      else w.int8(0).varlong(result.offset, 'offset', 0);
    });
  },
  (r, version) => {
    if (readKind(r) === 'request') {
      const clusterId = r.string('clusterId');
      const queries = r.array('queries', () => {
        const id = readRequestPartition(r, version);
        const kind = readQueryKind(r);
        return { ...id, query: kind === 'timestamp' ? { timestamp: r.varlong('timestamp') } : kind };
      });
      return { kind: 'request', clusterId, queries };
    }
    const results = r.array('results', () => {
      const tag = r.int8('offset result');
      if (tag === 0) return { offset: r.varlong('offset', 0) };
      if (tag === 1) return { offset: undefined };
      if (tag === 2) return { error: readError(r) };
      throw new FrameError('CORRUPT_MESSAGE', `unknown offset result ${tag}`);
    });
    return { kind: 'response', results };
  },
);

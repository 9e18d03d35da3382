// Limits and timings of the page's network side, each with why.

/** libp2p protocol id of broker traffic between nodes (peer frames, FORMATS.md "Peer frame"). */
export const PEER_PROTOCOL = '/letterbox/peer/1.0.0';

/**
 * One WebRTC dial attempt. Most dials took 0.2–1.2 s here; about 1 in 6 had not finished
 * after 5 s (NOTES-browser.md: 1 in 4, failing at ~6 s) while the other side had succeeded,
 * and one retry then always worked. At 4 s, 5 of 11 attempts timed out (some slow dials
 * would have finished): 5 s is the measured sweet spot.
 */
export const DIAL_TIMEOUT_MS = 5_000;
/** Attempts per dial before waiting for the next reconcile round. A retry always worked in measurements. */
export const DIAL_ATTEMPTS_MAX = 4;
/** Connect times kept for dialStats(). */
export const DIAL_TIMES_KEPT = 100;
/** Pause before the n-th retry is n times this. */
export const DIAL_RETRY_STEP_MS = 250;
/**
 * The peer with the smaller id dials, so two tabs do not dial each other at once and end
 * with two connections. The other waits this long for that dial before dialling itself.
 */
export const PASSIVE_DIAL_WAIT_MS = DIAL_TIMEOUT_MS * 2;
/** How often the member list is compared with the open connections (redials lost peers). */
export const RECONCILE_INTERVAL_MS = 3_000;

/** Reconnecting to the relay: first wait, doubled per failure up to the max, with ±25 % jitter. */
export const RELAY_BACKOFF_INITIAL_MS = 250;
export const RELAY_BACKOFF_MAX_MS = 5_000;
/** One attempt to reach the relay (fetch its info, dial, register). */
export const RELAY_DIAL_TIMEOUT_MS = 10_000;
/** How long to wait for the relay reservation (our `/p2p-circuit` address) before registering: others can only dial us through it. */
export const RESERVATION_WAIT_MS = 5_000;
/** How often that address is looked for. */
export const RESERVATION_POLL_MS = 50;

/** Pause between pings on each connection (to a peer: also its connection-quality event). */
export const QUALITY_INTERVAL_MS = 2_000;
/** A ping slower than this counts as lost. */
export const PING_TIMEOUT_MS = 5_000;
/**
 * Pings lost in a row after which a connection is closed as dead (./liveness.ts). A page that
 * is itself frozen loses at most one (its in-flight ping), so this check never drops the links
 * of a page for its own freeze; a peer frozen for up to ~15 s passes it too (though the relay
 * drops a page silent for 8 s: src/relay/libp2p-node.ts).
 */
export const PINGS_LOST_MAX = 3;
/**
 * The longest a silent peer (crashed, or its network gone) keeps its connection open here:
 * 19 s. A closed tab is seen at once (its WebRTC stack aborts the SCTP association), and one
 * the relay saw leave is dropped on the relay's news.
 */
export const LINK_DEAD_AFTER_MS = PINGS_LOST_MAX * PING_TIMEOUT_MS + (PINGS_LOST_MAX - 1) * QUALITY_INTERVAL_MS;

/**
 * Bytes one peer's libp2p stream may hold unsent before the page stops writing and waits.
 * A naive send/onDrain loop starved the page (NOTES-browser.md); 1 MiB kept the channel busy
 * (larger high-water marks gave no gain).
 */
export const STREAM_WRITE_BUFFER_BYTES_MAX = 1024 * 1024;
/**
 * Bytes a peer's data channel may buffer before libp2p stops handing it more and waits for
 * its drain. Chromium refuses sends past 16 MiB buffered (`OperationError: send queue is
 * full`, NOTES-browser.md), which would abort the stream; @libp2p/webrtc 6 uses 2 MiB (its
 * docs say 16 MiB), set here so that a change of its default cannot come near the limit.
 * It overshoots by at most one message (16 KiB).
 */
export const DATA_CHANNEL_BUFFERED_BYTES_MAX = 2 * 1024 * 1024;
/**
 * The SCTP stream id of each peer connection's direct channel: a negotiated data channel
 * both pages create on libp2p's RTCPeerConnection and hand to their workers, so broker bytes
 * go worker to worker without crossing either page (FORMATS.md § Transport). Negotiated
 * channels reserve their id, so the ids Chromium picks for libp2p's streams skip it; it stays
 * below 1024, the stream count every WebRTC stack supports.
 */
export const DIRECT_CHANNEL_ID = 1000;
export const DIRECT_CHANNEL_LABEL = 'letterbox-direct';
/**
 * How long a worker waits for the peer's end of the direct channel to exist (its `hello` or
 * `ack`) before it sends through the page's libp2p stream instead. Both ends appear within a
 * round trip of each other when both pages adopt the connection at once; a page that learns
 * of the member late (the relay's news) adopts it up to a reconcile round later.
 */
export const DIRECT_HANDSHAKE_TIMEOUT_MS = RECONCILE_INTERVAL_MS + 2_000;
/** Bytes per message on the direct channel: a frame larger than this goes in several (Chromium accepts up to 256 KiB per message). */
export const DIRECT_MESSAGE_BYTES_MAX = 64 * 1024;
/** A stream whose reader lags by this much is reset rather than buffering without bound. */
export const STREAM_READ_BUFFER_BYTES_MAX = 16 * 1024 * 1024;
/**
 * Buffers smaller than this cross between page and worker copied by postMessage, larger ones
 * transferred: detaching a buffer costs more than copying a few KiB (a small RPC's round trip
 * measured ~1.14 ms with the copy against ~1.21 ms transferring, `net.rpc.rtt`, 4 runs each).
 */
export const BRIDGE_COPY_BYTES_MAX = 16 * 1024;
/** Bytes the worker may have handed the page for one peer and not yet seen written: bounds the page's queue per peer. */
export const BRIDGE_WINDOW_BYTES = 2 * 1024 * 1024;
/**
 * The writer yields to the page's event loop after this many bytes, so a bulk send cannot
 * starve it. One 64 KiB message per task: during a 16 MiB transfer a task queued on the
 * sender's page waited ~2–7 ms at p99, against 7–24 ms with 256 KiB, at the same throughput
 * (bench `net.rpc.throughput.probe`; needs the unclamped yield of page-bridge.ts).
 */
export const WRITER_YIELD_BYTES = 64 * 1024;

// Peer RPC (worker side, ./rpc.ts): bounds per peer, so one slow or hostile peer costs this
// node a fixed amount of memory and work however it behaves.

/** A request's timeout when the caller gives none: well past a WebRTC round trip (~1 ms) and a busy peer's queue. */
export const RPC_TIMEOUT_MS = 10_000;
/** Requests this node awaits answers to from one peer at once; further requests wait for a slot (within their timeout). */
export const RPC_IN_FLIGHT_REQUESTS_MAX = 128;
/**
 * A peer's requests whose handlers have not answered yet (synchronous answers hold no slot).
 * More are answered THROTTLING_QUOTA_EXCEEDED at once, instead of queued; one-way messages
 * over it are dropped. Equal to what a well-behaved sender keeps in flight, so only a peer
 * that ignores that bound is throttled.
 */
export const RPC_HANDLING_MAX = RPC_IN_FLIGHT_REQUESTS_MAX;
/**
 * Encoded frames queued for one peer before the bridge takes them. Requests and one-way
 * messages wait for room (a peer that stops reading makes its senders wait, then time out);
 * answers that do not fit are dropped, and their requester times out. With the bridge's own
 * window this bounds what the worker holds for a peer to about 6 MiB (plus one frame).
 */
export const RPC_SEND_QUEUE_BYTES_MAX = 4 * 1024 * 1024;
/**
 * Bytes this node may have sent a peer beyond what the peer's node has consumed (announced
 * by its `window` frames, FORMATS.md § Flow control). End to end, worker to worker: a peer
 * whose page or worker stops reading makes this node's senders wait — and time out — instead
 * of its bytes piling up in the peer's tab, which the data channel alone does not prevent (a
 * frozen page took 64 MiB without slowing the sender).
 * It also bounds what waits in the receiving page's task queue when that page is slower than
 * the wire, and so how long a task (input) queued there waits: during a 16 MiB transfer,
 * p99 ~15 ms at 1 MiB, ~30 ms at 2 MiB, 45–210 ms at 8 MiB, with the same throughput
 * (~23 MB/s between two tabs, 11–14 MB/s between two browser processes). 2 MiB still allows
 * 40 MB/s at a 50 ms round trip.
 */
export const PEER_WINDOW_BYTES = 2 * 1024 * 1024;
/** A node announces what it consumed of a peer's stream once this much has gathered: an eighth of the window, so the sender rarely waits for it. */
export const PEER_WINDOW_UPDATE_BYTES = 256 * 1024;
/**
 * Bytes of one peer the page may have handed its worker that the worker has not yet said it
 * consumed (it says so every PEER_WINDOW_UPDATE_BYTES). A peer that respects the window never
 * has more than the window plus one frame (DEFAULT_MAX_FRAME_BYTES, 8 MiB) unconsumed; one
 * that ignores it is cut off at this bound, so a hostile peer cannot pile its bytes up in the
 * receiving page's task queue faster than the worker reads them.
 */
export const RECEIVE_BACKLOG_BYTES_MAX = PEER_WINDOW_BYTES + 8 * 1024 * 1024 + 2 * PEER_WINDOW_UPDATE_BYTES;
/** Small frames queued together are written to the bridge as one chunk up to this size: one message per chunk instead of per frame. */
export const RPC_COALESCE_BYTES_MAX = 64 * 1024;
/**
 * Frames a peer may send per second, sustained and as a burst (a token bucket). Far above
 * what replication needs (a batch per partition per few ms); a flood past it is answered
 * THROTTLING_QUOTA_EXCEEDED without running handlers.
 */
export const RPC_FRAMES_PER_SECOND_MAX = 20_000;
/**
 * Corrupt or oversized frames from one peer before this node stops reading it until it
 * reconnects: a well-behaved peer sends none, and one that does is out of step or hostile.
 * Unknown types and versions do not count (a newer peer sends those, and they are answered).
 */
export const RPC_BAD_FRAMES_MAX = 64;
/** One admission challenge waits this long for its proof before it is sent again (a WebRTC round trip is ~1 ms; this allows a busy tab). */
export const ADMISSION_ATTEMPT_MS = 2_000;
/** Pause before a challenge is sent again after it was lost. */
export const ADMISSION_RETRY_MS = 250;

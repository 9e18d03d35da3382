// Admission to a cluster with a shared secret (FORMATS.md § Admission): each node challenges
// the other with a fresh nonce and checks an HMAC proof bound to both peer ids, so a peer that
// does not know the secret is refused before any of its frames is accepted or any is sent to it.

import { sleep, type Clock } from '../clock';
import { PeerError, TimeoutError } from '../errors';
import { ADMISSION_NONCE_BYTES, type AdmissionBody } from '../protocol';
import { ADMISSION_ATTEMPT_MS, ADMISSION_RETRY_MS } from './constants';
import { PeerNotConnectedError } from './peer-link';

/** Where one peer channel stands in the handshake; a reconnected peer starts afresh. */
export class AdmissionState {
  /** This node checked the peer's proof: its frames are accepted. */
  verified: boolean;
  /** The peer checked this node's proof: frames may be sent to it. */
  welcomed: boolean;
  refusal: PeerError | undefined = undefined;

  /** Without admission a peer is admitted from the start. */
  constructor(required: boolean) {
    this.verified = !required;
    this.welcomed = !required;
  }

  /** `admitted` once both peers proved the cluster secret to each other. */
  get status(): 'pending' | 'admitted' | 'refused' {
    return this.refusal !== undefined ? 'refused' : this.verified && this.welcomed ? 'admitted' : 'pending';
  }
}

/** What the handshake needs of a peer's current RPC channel. */
export interface AdmissionChannel {
  readonly state: AdmissionState;
  /** Answers the peer's admission request `requestId`. */
  answer(requestId: number, body: AdmissionBody): void;
  /** The state changed: senders waiting for admission check again. */
  changed(): void;
  /** Stops talking to the peer: fails what waits on it, and tells the RPC layer's listener. */
  refuse(error: PeerError): void;
}

/** What the handshake needs of the RPC layer: admission frames go before the peer is admitted. */
export interface AdmissionTransport {
  clock: Clock;
  /** Aborted when the RPC layer closes. */
  closed: AbortSignal;
  localPeerId(): string;
  isConnected(peerId: string): boolean;
  /** The peer's current channel, if it has one. */
  channel(peerId: string): AdmissionChannel | undefined;
  request(peerId: string, body: AdmissionBody, timeoutMs: number): Promise<AdmissionBody>;
  notify(peerId: string, body: AdmissionBody): Promise<void>;
}

export interface Admission {
  /**
   * Challenges a peer that joined; admits it when its proof checks, else refuses it and tells
   * it so. A challenge is repeated while unanswered and the peer connected: its answer is lost
   * when it raced the peer's own notice that this node joined (the peer's bridge then has no
   * stream to answer on), or late when the peer was busy; silence is never a refusal.
   */
  start(peerId: string): void;
  /** Takes the peer's admission frame: proves this node to its challenge, or learns it was welcomed or refused. */
  receive(peerId: string, channel: AdmissionChannel, requestId: number, body: AdmissionBody): void;
}

/**
 * The handshake for a cluster `secret` over `transport`.
 * @example const admission = createAdmission('s3cret', transport); admission.start(peerId);
 */
export function createAdmission(secret: string, transport: AdmissionTransport): Admission {
  const { clock, closed } = transport;
  const key = importAdmissionKey(secret);
  /** Peers whose admission handshake this node is running. */
  const admitting = new Set<string>();

  return {
    start(peerId) {
      if (closed.aborted || admitting.has(peerId)) return;
      admitting.add(peerId);
      const refused = new PeerError(peerId, 'CLUSTER_AUTHORIZATION_FAILED', `peer ${peerId} could not prove it knows the cluster secret: refused`);
      // Challenged until it answers, for as long as it is connected and not refused: a peer
      // that is only slow (a tab starting, a busy worker) must not be shut out for good, and one
      // that never answers is sent nothing but a challenge every few seconds.
      const waiting = () => !closed.aborted && transport.isConnected(peerId) && transport.channel(peerId)?.state.refusal === undefined;
      void (async () => {
        try {
          for (;;) {
            const nonce = crypto.getRandomValues(new Uint8Array(ADMISSION_NONCE_BYTES));
            let answer: AdmissionBody;
            try {
              answer = await transport.request(peerId, { kind: 'challenge', nonce }, ADMISSION_ATTEMPT_MS);
            } catch (error) {
              if (!waiting()) return;
              if (error instanceof TimeoutError || error instanceof PeerNotConnectedError) {
                await sleep(clock, ADMISSION_RETRY_MS);
                continue;
              }
              transport.channel(peerId)?.refuse(refused);
              return;
            }
            const ok = answer.kind === 'proof' && (await crypto.subtle.verify('HMAC', await key, answer.mac as Uint8Array<ArrayBuffer>, admissionMessage(peerId, transport.localPeerId(), nonce)));
            // The channel may have been replaced meanwhile (a send failed before the peer was listed): mark the current one.
            const channel = transport.channel(peerId);
            if (channel === undefined) return;
            if (!ok) {
              await transport.notify(peerId, { kind: 'refused' }).catch(() => undefined);
              return channel.refuse(refused);
            }
            channel.state.verified = true;
            channel.changed();
            await transport.notify(peerId, { kind: 'welcome' }).catch(() => undefined);
            return;
          }
        } finally {
          admitting.delete(peerId);
        }
      })();
    },

    receive(peerId, channel, requestId, body) {
      if (body.kind === 'challenge') {
        // Proving to the peer: over its fresh nonce, with this node as prover and the peer as verifier.
        // A peer challenging again after this node verified it has started afresh (its channel
        // was replaced: a reconnect, a switch of transport): it is told again that it is welcome,
        // as the welcome it had went with its old channel.
        void admissionMac(key, transport.localPeerId(), peerId, body.nonce).then((mac) => {
          channel.answer(requestId, { kind: 'proof', mac });
          if (channel.state.verified) void transport.notify(peerId, { kind: 'welcome' }).catch(() => undefined);
        });
      } else if (body.kind === 'welcome') {
        channel.state.welcomed = true;
        channel.changed();
      } else if (body.kind === 'refused') {
        channel.refuse(new PeerError(peerId, 'CLUSTER_AUTHORIZATION_FAILED', `peer ${peerId} refused this node: they do not share the cluster secret`));
      }
    },
  };
}

/** Domain separation of the admission MAC: a MAC made for anything else never passes as a proof. */
const ADMISSION_LABEL = 'letterbox/admission/1';

/** The HMAC key of a cluster secret: SHA-256 of it, so any secret (even empty) makes a full-length key. */
async function importAdmissionKey(secret: string): Promise<CryptoKey> {
  const material = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${ADMISSION_LABEL}\0${secret}`));
  return crypto.subtle.importKey('raw', material, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign', 'verify']);
}

/** What a proof signs: the label, the prover's and the verifier's peer ids and the verifier's nonce, so a proof made for one pair or one challenge is worthless for any other. */
function admissionMessage(proverId: string, verifierId: string, nonce: Uint8Array): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(`${ADMISSION_LABEL}\0${proverId}\0${verifierId}\0${[...nonce].map((b) => b.toString(16).padStart(2, '0')).join('')}`);
}

async function admissionMac(key: Promise<CryptoKey>, proverId: string, verifierId: string, nonce: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign('HMAC', await key, admissionMessage(proverId, verifierId, nonce)));
}

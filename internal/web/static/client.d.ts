// Types of wsdest's JavaScript client, /_wsdest/client.js.

/** A record as wsdest's envelope carries it. */
export interface WsdestRecord {
  topic: string;
  partition: number;
  offset: number;
  /** Kafka timestamp, milliseconds since the epoch. */
  timestamp: number;
  /** The Kafka key: a string, null, or {base64} when it is not UTF-8. */
  key: string | null | { base64: string };
  headers: Record<string, string | { base64: string }>;
  /**
   * The value: JSON as sent, a string, or {base64}. An integer top-level
   * Timestamp member (Quix rows: nanoseconds) is a BigInt, exact.
   */
  value: any;
  /** Where to resume after this record (the client does it by itself). */
  cursor: string;
}

/** A notice: the stream is not what was asked for (gap, reset, ...). */
export interface WsdestNotice {
  notice: string;
  [member: string]: unknown;
}

export type WsdestState = 'connecting' | 'live' | 'reconnecting' | 'closed';

export interface WsdestStateDetail {
  state: WsdestState;
  /** The URL of the (next) connection, without the token. */
  url?: string;
  /** Reconnects since the last steady connection. */
  attempt?: number;
  /** The close that ended the last connection (1006: none received). */
  code?: number;
  reason?: string;
  /** Whether that connection had opened (false: it could not connect). */
  opened?: boolean;
  /** Milliseconds until the next attempt: set when a connection has just ended, not when the attempt starts. */
  delay?: number;
}

export interface WsdestError extends Error {
  /** The WebSocket close code of a refusal; 0 otherwise. */
  code: number;
  reason: string;
}

export interface WsdestOptions {
  /**
   * The credential, sent as ?token= (browsers cannot set headers on a WebSocket): an API key or a
   * JWT, or a function returning one (or a promise of one), called before every connection. With a
   * function, a close 1008 "token expired" reconnects with the token it returns next, resuming from
   * the cursor; with a string it ends the stream like every other refusal.
   */
  token?: string | (() => string | Promise<string>);
  /** Keys or globs (sensor-*) to subscribe to, added as ?key=. */
  keys?: string | string[];
  /**
   * A CEL filter the server applies to each record (?where=), e.g. 'value.temperature > 30' or
   * 'headers["source"] == "plc-7"': only the records for which it is true are delivered.
   */
  where?: string;
  /** Members of the value to keep (?fields=), dotted paths into nested objects: ['temperature', 'Tags.location']. */
  fields?: string | string[];
  /** Where the first connection starts: latest (default), earliest, a cursor, an RFC 3339 time or -5m. */
  from?: string;
  /** Start with the N most recent records (first connection only). */
  last?: number | string;
  /**
   * At most this many records per key per second (0.1 to 1000), latest wins, as ?max_rate=: the
   * records in between are dropped by the server, the stream always ends at every key's latest
   * value, and resuming from the cursor stays exact. Every connection asks for it.
   */
  maxRate?: number | string;
  /**
   * Start with the latest record of every key subscribed to (each a record event, its cursor the
   * snapshot point), then the notice {"notice":"snapshot_end","keys":N,"cursor":...}, then live
   * records from that point: nothing lost, nothing twice. Taken on the first connection only (until
   * it delivered something): a reconnect resumes from the cursor. A connection that drops after
   * some of the snapshot and before snapshot_end resumes at the snapshot point, without the keys not
   * received yet: the stream then dispatches the notice {"notice":"snapshot_incomplete","cursor":...}
   * (made by the client). With from or last, connect throws a TypeError.
   */
  snapshot?: boolean;
  /** The WebSocket constructor; default globalThis.WebSocket (Node.js 20: the ws package). */
  WebSocket?: new (url: string) => any;
  /** Backoff between reconnects, ms: from minDelay (500) doubling up to maxDelay (15000), jittered. */
  minDelay?: number;
  maxDelay?: number;
  /** Keep stream.latest (default true); false for a stream of very many keys. */
  keepLatest?: boolean;
}

export class WsdestEvent<T> extends Event {
  readonly detail: T;
  /** The message exactly as received, for record, notice and a non-JSON error. */
  readonly text?: string;
}

export interface WsdestEventMap {
  record: WsdestEvent<WsdestRecord>;
  notice: WsdestEvent<WsdestNotice>;
  state: WsdestEvent<WsdestStateDetail>;
  error: WsdestEvent<WsdestError>;
}

export class WsdestStream extends EventTarget {
  /** The newest record of every key (binary keys as "base64:..."; no key: null). */
  readonly latest: Map<string | null, WsdestRecord>;
  readonly state: WsdestState;
  /** The cursor of the last record delivered; '' before the first. */
  readonly cursor: string;
  /** Ends the stream. */
  close(): void;
  addEventListener<K extends keyof WsdestEventMap>(type: K, listener: (ev: WsdestEventMap[K]) => void,
    options?: boolean | AddEventListenerOptions): void;
  addEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | AddEventListenerOptions): void;
  removeEventListener<K extends keyof WsdestEventMap>(type: K, listener: (ev: WsdestEventMap[K]) => void,
    options?: boolean | EventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrEventListenerObject | null,
    options?: boolean | EventListenerOptions): void;
}

/**
 * Opens a stream of url (ws:, wss:, http:, https:, or a path relative to the
 * page) and keeps it open: reconnects and resumes exactly, until close() or
 * a refusal.
 */
export function connect(url: string | URL, options?: WsdestOptions): WsdestStream;

// The push feed, kept connected: subscribe, resume after a reconnect, report the state.
//
// On every connection the feed says hello with its epoch. Same epoch as before: subscribe with
// "since" = the last seq received, and the feed replays exactly what was missed. A new epoch
// (the feed restarted, its seqs start over) or a "resync" error (the backlog no longer reaches
// back): subscribe with since=null for a fresh snapshot; the store drops what it already has
// (alerts by id, vitals by window), so nothing is missed and nothing doubled.
//
// A fresh start takes the snapshot, then (with `history`) subscribes again with since = the
// snapshot answer's last seq - history: the feed replays its recent backlog, so sparklines start with
// the last minutes instead of one point, and goes on live from there. If the backlog no longer
// reaches that far (a "resync" error) the snapshot's subscription simply stays.
//
// States: "connecting" (the first time), "live", "reconnecting" (lost, trying again), "stale"
// (no word from the feed for staleAfterMs: what the page shows is as of `since`), "refused"
// (the feed refused the subscription: a bug or a config mismatch, shown, retried slowly).

const DATA = new Set(["vital", "indicator", "alert", "incident", "incident_event", "report"]);

export class FeedConnection {
  /**
   * url: ws:// URL of the feed; subscription: {channels, districts, kinds} (empty: all);
   * onMessage(message) for data messages; onState(status) whenever the state changes.
   */
  constructor({ url, subscription = {}, onMessage, onState, history = 0, staleAfterMs = 15000,
                maxDelayMs = 5000 }) {
    this.url = url;
    this.subscription = { channels: [], districts: [], kinds: [], ...subscription };
    this.onMessage = onMessage;
    this.onState = onState || (() => {});
    this.history = history;
    this.phase = null; // fresh start: "snapshot" (waiting for `pending` messages), "history"
    this.pending = 0;
    this.historySince = null;
    this.staleAfterMs = staleAfterMs;
    this.maxDelayMs = maxDelayMs;
    this.epoch = null;
    this.lastSeq = null;
    this.state = "connecting";
    this.detail = "";
    this.lastFrameAt = null; // Date.now() of the last frame from the feed
    this.connections = 0;
    this.attempt = 0;
    this.ws = null;
    this.subscribed = false;
    this.timer = null;
    this.watchdog = null;
    this.stopped = false;
    this.offered = null; // the channels the feed's hello offers this client
  }

  start() {
    this.stopped = false;
    this.watchdog = setInterval(() => this.check(), 1000);
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.timer);
    if (this.ws) this.ws.close();
  }

  /** What the connection badge shows. */
  get status() {
    return { state: this.state, since: this.lastFrameAt, detail: this.detail, epoch: this.epoch,
             lastSeq: this.lastSeq, attempt: this.attempt };
  }

  connect() {
    clearTimeout(this.timer);
    this.subscribed = false;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (error) {
      this.setState("refused", `bad feed URL ${this.url}: ${error.message}`);
      return;
    }
    this.ws = ws;
    ws.onmessage = (event) => this.receive(ws, event.data);
    ws.onclose = () => this.lost(ws);
  }

  receive(ws, frame) {
    if (ws !== this.ws) return;
    this.lastFrameAt = Date.now();
    let message;
    try {
      message = JSON.parse(frame);
    } catch {
      return;
    }
    if (DATA.has(message.type)) {
      if (typeof message.seq === "number") this.lastSeq = Math.max(this.lastSeq ?? 0, message.seq);
      this.onMessage(message);
      if (this.phase === "snapshot" && this.subscribed && --this.pending === 0) this.replayHistory();
      if (this.state !== "live" && this.subscribed) this.setState("live");
    } else if (message.type === "hello") {
      this.hello(message);
    } else if (message.type === "subscribed") {
      this.subscribed = true;
      if (this.phase === "snapshot" && message.last_seq > 0) {
        this.historySince = Math.max(0, message.last_seq - this.history);
        this.pending = message.replay;
        if (this.pending === 0) this.replayHistory();
      } else {
        this.phase = null;
      }
      this.attempt = 0;
      this.setState("live");
    } else if (message.type === "heartbeat") {
      // every message up to last_seq that we want was sent before the heartbeat
      if (this.subscribed) this.lastSeq = Math.max(this.lastSeq ?? 0, message.last_seq);
      if (this.state !== "live" && this.subscribed) this.setState("live");
    } else if (message.type === "error") {
      this.refusal(message);
    }
  }

  hello(message) {
    let since = this.lastSeq;
    if (this.epoch !== null && message.epoch !== this.epoch) since = null; // seqs started over
    if (this.epoch === null) since = null;
    this.epoch = message.epoch;
    this.connections += 1;
    // ask only for channels this token may see (hello lists them): a viewer gets no raw alerts
    if (Array.isArray(message.channels) && this.subscription.channels.length) {
      this.offered = message.channels;
    }
    // a fresh start asks for a snapshot, then the backlog (decided when the snapshot is
    // answered: the feed may have read more by then than hello's last_seq says)
    this.phase = since === null && this.history > 0 ? "snapshot" : null;
    this.subscribe(since);
  }

  /** After the snapshot: the recent backlog, then live from there. */
  replayHistory() {
    this.phase = "history";
    this.subscribe(this.historySince);
  }

  subscribe(since) {
    this.subscribed = false;
    if (since === null) this.lastSeq = null;
    const op = { op: "subscribe", ...this.subscription, since };
    if (this.offered) op.channels = op.channels.filter((c) => this.offered.includes(c));
    this.ws.send(JSON.stringify(op));
  }

  refusal(message) {
    if (message.error === "resync") {
      // before "subscribed": the backlog no longer reaches back; after: we were too slow and
      // the feed closes the connection, and the reconnect resumes from lastSeq
      if (this.phase === "history" && !this.subscribed) {
        this.phase = null; // the backlog moved on: the snapshot's subscription goes on
        this.subscribed = true;
      } else if (!this.subscribed) {
        this.subscribe(null);
      }
      return;
    }
    this.setState("refused", `${message.error}: ${message.detail}`);
  }

  lost(ws) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.phase === "snapshot") this.lastSeq = null; // half a snapshot: start afresh
    this.phase = null;
    this.subscribed = false;
    if (this.stopped) return;
    if (this.state === "refused") {
      // keep saying why
    } else if (this.connections === 0) {
      this.setState("connecting", "the feed does not answer yet");
    } else {
      this.setState(this.stale() ? "stale" : "reconnecting");
    }
    const base = Math.min(this.maxDelayMs, 250 * 2 ** this.attempt);
    this.attempt += 1;
    const delay = this.state === "refused" ? 30000 : base * (0.8 + Math.random() * 0.4);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  /** Once a second: silence on an open connection means it is dead; say stale when it is. */
  check() {
    if (this.stopped) return;
    const silent = this.stale();
    if (this.ws && this.subscribed && silent) {
      this.ws.close(); // a half-open connection: no heartbeat for too long
      this.lost(this.ws);
    } else if (silent && this.state === "reconnecting") {
      this.setState("stale");
    }
  }

  stale() {
    return this.lastFrameAt !== null && Date.now() - this.lastFrameAt > this.staleAfterMs;
  }

  setState(state, detail = "") {
    if (state === this.state && detail === this.detail) return;
    this.state = state;
    this.detail = detail;
    this.onState(this.status);
  }
}

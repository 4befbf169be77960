// One IRC session over a WebSocket (IRCv3 WebSocket: one line per text
// frame): capability negotiation, SASL, REGISTER, PING, batches, and
// reconnection with exponential backoff. Emits "message", "batch",
// "registered", "status" and "failure" events; knows nothing of the page.

import { parse, serialize, nickOf, casefolder } from "./irc.js";
import { chooseMechanism, utf8ToBase64, base64ToUtf8 } from "./sasl.js";

/** Capabilities the client asks for when the server offers them. */
const WANTED = [
  "message-tags", "server-time", "echo-message", "batch", "multi-prefix",
  "away-notify", "account-notify", "draft/chathistory", "cap-notify",
];

const SASL_CHUNK = 400;
/** Attempts before a first connection that never succeeds is given up. */
const FIRST_ATTEMPTS = 3;

/** Delay before reconnect attempt *n* (1, 2, 4, ... seconds, at most 30). */
export function backoff(attempt, base = 1000, max = 30000) {
  return Math.min(max, base * 2 ** attempt);
}

export class Connection extends EventTarget {
  /**
   * @param {string} url the wss:// (or ws://) address
   * @param {{nick: string, account?: string, password?: string,
   *          register?: boolean, email?: string}} login
   */
  constructor(url, login) {
    super();
    this.url = url;
    this.login = login;
    this.nick = login.nick;
    this.caps = new Set();
    this.offered = new Map();
    this.isupport = new Map();
    this.casefold = casefolder("rfc1459");
    this.registered = false;
    this.account = null;
    this.socket = null;
    this.attempt = 0;
    this.closing = false;
    this.batches = new Map();
    this.retryTimer = null;
    this.everRegistered = false;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  start() {
    this.closing = false;
    this.open();
  }

  open() {
    this.caps = new Set();
    this.offered = new Map();
    this.registered = false;
    this.batches = new Map();
    this.nick = this.login.nick;
    this.emit("status", { state: "connecting", attempt: this.attempt });
    let socket;
    try {
      socket = new WebSocket(this.url, ["text.ircv3.net"]);
    } catch (error) {
      this.emit("failure", { text: `Cannot connect: ${error.message}`, fatal: true });
      return;
    }
    this.socket = socket;
    socket.addEventListener("open", () => {
      this.send("CAP", "LS", "302");
      this.send("NICK", this.nick);
      this.send("USER", this.login.account || this.nick, "0", "*", this.nick);
    });
    socket.addEventListener("message", (event) => {
      if (typeof event.data !== "string") return;
      for (const line of event.data.split(/\r?\n/)) {
        if (line) this.receive(parse(line));
      }
    });
    socket.addEventListener("close", (event) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.registered = false;
      if (this.closing) {
        this.emit("status", { state: "closed" });
        return;
      }
      if (!this.everRegistered && this.attempt + 1 >= FIRST_ATTEMPTS) {
        // Never got in: tell the user instead of retrying for ever.
        this.closing = true;
        this.emit("failure", { text: "Could not connect to the chat server. Try again later.", fatal: true });
        return;
      }
      const delay = backoff(this.attempt++);
      this.emit("status", { state: "waiting", delay, code: event.code });
      this.retryTimer = setTimeout(() => this.open(), delay);
    });
  }

  /** Close for good (no reconnect). */
  stop(reason = "Leaving") {
    this.closing = true;
    clearTimeout(this.retryTimer);
    if (this.socket) {
      if (this.socket.readyState === WebSocket.OPEN) this.send("QUIT", reason);
      this.socket.close(1000);
    }
  }

  /** Retry now instead of waiting for the backoff. */
  retryNow() {
    if (this.socket || this.closing) return;
    clearTimeout(this.retryTimer);
    this.open();
  }

  send(command, ...params) {
    this.sendTagged({}, command, ...params);
  }

  sendTagged(tags, command, ...params) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return false;
    if (!this.caps.has("message-tags")) tags = {};
    this.socket.send(serialize(command, params, tags));
    return true;
  }

  /** Send a raw line typed by the user (/quote). */
  sendRaw(line) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) {
      this.socket.send(line.replace(/[\r\n]/g, " "));
    }
  }

  isMe(nick) {
    return this.casefold(nick) === this.casefold(this.nick);
  }

  isChannel(name) {
    const types = this.isupport.get("CHANTYPES") ?? "#&";
    return name.length > 0 && types.includes(name[0]);
  }

  /** The PREFIX modes and symbols, e.g. {modes: "ov", symbols: "@+"}. */
  prefixes() {
    const match = /^\(([^)]*)\)(.*)$/.exec(this.isupport.get("PREFIX") ?? "(ov)@+");
    return match ? { modes: match[1], symbols: match[2] } : { modes: "ov", symbols: "@+" };
  }

  receive(msg) {
    const batchRef = msg.tags.batch;
    if (batchRef && this.batches.has(batchRef)) {
      this.batches.get(batchRef).messages.push(msg);
      return;
    }
    switch (msg.command) {
      case "PING":
        this.send("PONG", ...msg.params);
        return;
      case "CAP":
        this.onCap(msg);
        return;
      case "AUTHENTICATE":
        this.onAuthenticate(msg.params[0]);
        return;
      case "BATCH":
        this.onBatch(msg);
        return;
      case "REGISTER":
        if (msg.params[0] === "SUCCESS") {
          this.account = msg.params[1];
          this.emit("notice", { text: `Account ${msg.params[1]} created.` });
          this.endCap();
        }
        return;
      case "FAIL":
        if (!this.registered && (msg.params[0] === "REGISTER")) {
          this.emit("failure", { text: msg.params[msg.params.length - 1], fatal: true });
          this.stop();
          return;
        }
        break;
      case "001":
        this.nick = msg.params[0];
        this.registered = true;
        this.attempt = 0;
        this.emit("registered", { reconnect: this.everRegistered });
        this.everRegistered = true;
        break;
      case "005":
        for (const token of msg.params.slice(1, -1)) {
          const eq = token.indexOf("=");
          const key = eq < 0 ? token : token.slice(0, eq);
          this.isupport.set(key, eq < 0 ? "" : token.slice(eq + 1));
          if (key === "CASEMAPPING") this.casefold = casefolder(token.slice(eq + 1));
        }
        break;
      case "433":
      case "432":
        if (!this.registered) {
          this.nick = msg.command === "433" ? `${this.nick}_` : `Guest${Math.floor(Math.random() * 10000)}`;
          this.send("NICK", this.nick);
        }
        break;
      case "900":
        this.account = msg.params[2];
        break;
      case "903":
        this.endCap();
        break;
      case "902":
      case "904":
      case "905":
      case "906":
        this.emit("failure", { text: `Login failed: ${msg.params[msg.params.length - 1]}`, fatal: true });
        this.stop();
        return;
      case "NICK":
        if (this.isMe(nickOf(msg.source))) this.nick = msg.params[0];
        break;
      case "ERROR":
        this.emit("notice", { text: msg.params[0] ?? "Closing link" });
        break;
      default:
        break;
    }
    this.emit("message", msg);
  }

  onCap(msg) {
    const sub = msg.params[1];
    const more = msg.params[2] === "*";
    const list = msg.params[msg.params.length - 1];
    if (sub === "LS" || sub === "NEW") {
      for (const item of list.split(" ").filter(Boolean)) {
        const eq = item.indexOf("=");
        this.offered.set(eq < 0 ? item : item.slice(0, eq), eq < 0 ? "" : item.slice(eq + 1));
      }
      if (more) return;
      const want = WANTED.filter((c) => this.offered.has(c) && !this.caps.has(c));
      if (this.needsSasl() && this.offered.has("sasl")) want.push("sasl");
      if (want.length) this.send("CAP", "REQ", want.join(" "));
      else if (sub === "LS") this.afterCaps();
    } else if (sub === "ACK") {
      for (const cap of list.split(" ").filter(Boolean)) {
        if (cap.startsWith("-")) this.caps.delete(cap.slice(1));
        else this.caps.add(cap);
      }
      if (!this.registered) this.afterCaps();
    } else if (sub === "NAK") {
      if (!this.registered) this.afterCaps();
    } else if (sub === "DEL") {
      for (const cap of list.split(" ")) this.caps.delete(cap);
    }
  }

  needsSasl() {
    return Boolean(this.login.account && this.login.password && !this.login.register);
  }

  afterCaps() {
    if (this.registered) return;
    if (this.login.register) {
      if (!this.offered.has("draft/account-registration")) {
        this.emit("failure", { text: "This server does not offer account registration.", fatal: true });
        this.stop();
        return;
      }
      this.send("REGISTER", this.login.account || "*", this.login.email || "*", this.login.password);
      this.login = { ...this.login, register: false };
      return;
    }
    if (this.needsSasl()) {
      if (!this.caps.has("sasl")) {
        this.emit("failure", { text: "This server does not offer SASL login.", fatal: true });
        this.stop();
        return;
      }
      this.mechanism = chooseMechanism(this.offered.get("sasl"), this.login.account, this.login.password);
      this.send("AUTHENTICATE", this.mechanism.name);
      return;
    }
    this.endCap();
  }

  endCap() {
    if (!this.registered) this.send("CAP", "END");
  }

  async onAuthenticate(data) {
    if (!this.mechanism) return;
    let response;
    try {
      response = await this.mechanism.step(data === "+" ? "" : base64ToUtf8(data));
    } catch (error) {
      this.send("AUTHENTICATE", "*");
      this.emit("failure", { text: `Login failed: ${error.message}`, fatal: true });
      return;
    }
    const encoded = response ? utf8ToBase64(response) : "";
    for (let i = 0; i < encoded.length; i += SASL_CHUNK) {
      this.send("AUTHENTICATE", encoded.slice(i, i + SASL_CHUNK));
    }
    if (encoded.length % SASL_CHUNK === 0) this.send("AUTHENTICATE", "+");
  }

  onBatch(msg) {
    const ref = msg.params[0];
    if (ref.startsWith("+")) {
      this.batches.set(ref.slice(1), { type: msg.params[1], params: msg.params.slice(2), messages: [], tags: msg.tags });
    } else if (ref.startsWith("-")) {
      const batch = this.batches.get(ref.slice(1));
      this.batches.delete(ref.slice(1));
      if (batch) this.emit("batch", batch);
    }
  }
}

// Drawing the page from the state. All user-supplied text reaches the
// DOM through textContent or text nodes (see format.js), never as HTML.

import { GROUP_MS } from "./state.js";
import { appendText, el, mentionPattern, nickClass, clock } from "./format.js";
import { maybeLoadOlder } from "./incoming.js";
import { $, activeBuffer, app, keyOf } from "./model.js";
import { canTag, cancelReply, openQuery, react, startReply, stopTyping } from "./outgoing.js";

const REACTIONS = ["👍", "❤️", "😂", "🎉", "😮", "👀"];

export function scheduleRender() {
  if (app.renderQueued) return;
  app.renderQueued = true;
  queueMicrotask(() => {
    app.renderQueued = false;
    render();
  });
}

export function render() {
  const focused = document.activeElement;
  const list = focused && focused.dataset.name ? focused.closest("ul") : null;
  renderBuffers();
  renderHeader();
  renderMessages();
  renderMembers();
  if (list && !list.contains(focused)) {
    // the list was drawn anew: focus the new button of the same name
    const twin = [...list.querySelectorAll("button")].find((b) => b.dataset.name === focused.dataset.name);
    if (twin) twin.focus();
  }
  renderTyping();
  renderHistoryStatus();
  const unread = [...app.buffers.values()].reduce((n, b) => n + b.unread, 0);
  document.title = unread ? `(${unread}) Chat` : "Chat";
}

function renderBuffers() {
  const list = $("buffers");
  const elsewhere = [...app.buffers.values()].some((b) => keyOf(b) !== app.active && (b.unread || b.mention));
  $("toggle-sidebar").classList.toggle("has-unread", elsewhere);
  const order = { server: 0, channel: 1, query: 2 };
  const buffers = [...app.buffers.values()].sort(
    (a, b) => order[a.kind] - order[b.kind] || a.name.localeCompare(b.name),
  );
  list.replaceChildren(
    ...buffers.map((buffer) => {
      const item = el("li");
      const button = el("button", "buffer");
      button.type = "button";
      button.dataset.name = buffer.name;
      if (keyOf(buffer) === app.active) {
        button.classList.add("active");
        button.setAttribute("aria-current", "true");
      }
      if (buffer.kind === "channel" && !buffer.joined) button.classList.add("parted");
      button.append(el("span", "buffer-name", buffer.kind === "server" ? app.conn?.isupport.get("NETWORK") || "Server" : buffer.name));
      if (buffer.mention) button.append(el("span", "mention", "@"));
      if (buffer.unread) button.append(el("span", "unread", String(buffer.unread)));
      button.addEventListener("click", () => {
        switchTo(buffer);
        $("input").focus();
      });
      item.append(button);
      return item;
    }),
  );
}

function renderHeader() {
  const buffer = activeBuffer();
  $("buffer-name").textContent = buffer.kind === "server" ? app.conn?.isupport.get("NETWORK") || "Server" : buffer.name;
  const topic = $("topic");
  topic.replaceChildren();
  appendText(topic, buffer.kind === "channel" ? buffer.topic : "");
  $("network").textContent = app.conn?.isupport.get("NETWORK") || "Chat";
}

function renderMessages() {
  const container = $("messages");
  const list = $("message-list");
  const buffer = activeBuffer();
  const signature = `${app.active} ${buffer.version} ${app.conn ? app.conn.nick : ""} ${canTag()}`;
  if (signature === app.renderedSignature) {
    app.prependRender = false;
    return;
  }
  app.renderedSignature = signature;
  const focused = list.contains(document.activeElement) ? document.activeElement : null;
  const focusLine = focused && focused.closest(".line");
  const fromBottom = container.scrollHeight - container.scrollTop;
  const atBottom = fromBottom - container.clientHeight < 40;
  const previousTop = container.scrollTop;
  const highlight = app.conn ? mentionPattern(app.conn.nick) : null;
  const nodes = [];
  let group = null;
  let last = null;
  for (const entry of buffer.messages) {
    if (entry.kind === "event" || entry.kind === "error") {
      nodes.push(el("div", `event ${entry.kind}`, `${clock(entry.time)} · ${entry.text}`));
      group = null;
      last = null;
      continue;
    }
    if (entry.kind === "action") {
      // "* nick does something" stands alone, its time in a tooltip
      const alone = el("div", "group action-only");
      const actionLine = renderLine(buffer, entry, highlight);
      actionLine.title = new Date(entry.time).toLocaleString();
      alone.append(actionLine);
      nodes.push(alone);
      group = null;
      last = null;
      continue;
    }
    const joinable = last && last.nick === entry.nick && entry.time - last.time < GROUP_MS;
    if (!joinable) {
      group = el("div", "group");
      if (entry.self) group.classList.add("self");
      const head = el("div", "group-head");
      head.append(el("span", `nick ${nickClass(entry.nick)}`, entry.nick));
      const time = el("time", "time", clock(entry.time));
      time.dateTime = new Date(entry.time).toISOString();
      time.title = new Date(entry.time).toLocaleString();
      head.append(time);
      group.append(head);
      nodes.push(group);
    }
    group.append(renderLine(buffer, entry, highlight));
    last = entry;
  }
  list.replaceChildren(...nodes);
  if (focusLine) refocus(list, focusLine.dataset.msgid, focused);
  if (atBottom && !app.prependRender) container.scrollTop = container.scrollHeight;
  else if (app.prependRender) container.scrollTop = container.scrollHeight - fromBottom;
  else container.scrollTop = previousTop;
  app.prependRender = false;
}

/** Focus the new counterpart of *old*, a button of the line *msgid*. */
function refocus(list, msgid, old) {
  const line = [...list.querySelectorAll(".line")].find((l) => l.dataset.msgid === msgid);
  const twin = line && [...line.querySelectorAll("button")].find((b) => b.className === old.className && b.textContent === old.textContent);
  if (twin) twin.focus();
}

function renderLine(buffer, entry, highlight) {
  const line = el("div", `line ${entry.kind}`);
  line.dataset.msgid = entry.id;
  if (entry.mention) line.classList.add("mentioned");
  if (entry.replyTo) {
    const parent = buffer.ids.get(entry.replyTo);
    line.append(el("div", "reply-quote", parent ? `↪ ${parent.nick}: ${parent.text.slice(0, 100)}` : "↪ reply"));
  }
  const text = el("span", "text");
  if (entry.kind === "action") text.append(el("span", `nick ${nickClass(entry.nick)}`, `${entry.nick} `));
  appendText(text, entry.text, entry.self ? null : highlight);
  line.append(text);
  if (entry.reactions.size) {
    const reactions = el("div", "reactions");
    for (const [emoji, nicks] of entry.reactions) {
      const chip = el("span", "reaction", `${emoji} ${nicks.size}`);
      chip.title = [...nicks].join(", ");
      reactions.append(chip);
    }
    line.append(reactions);
  }
  if (canTag() && entry.fromServer && entry.id && !entry.id.startsWith("local-") && buffer.kind !== "server") {
    const actions = el("div", "actions");
    const replyButton = el("button", "action-reply", "Reply");
    replyButton.type = "button";
    replyButton.addEventListener("click", () => startReply(entry));
    actions.append(replyButton);
    for (const emoji of REACTIONS.slice(0, 3)) {
      const button = el("button", "action-react", emoji);
      button.type = "button";
      button.setAttribute("aria-label", `React ${emoji}`);
      button.addEventListener("click", () => react(buffer, entry, emoji));
      actions.append(button);
    }
    line.append(actions);
  }
  return line;
}

function renderMembers() {
  const buffer = activeBuffer();
  const list = $("member-list");
  const visible = buffer.kind === "channel";
  document.body.classList.toggle("no-members", !visible);
  if (!visible) {
    list.replaceChildren();
    $("member-count").textContent = "";
    return;
  }
  const symbols = app.conn ? app.conn.prefixes().symbols : "@+";
  const members = buffer.sortedMembers(symbols);
  $("member-count").textContent = `${members.length} ${members.length === 1 ? "person" : "people"}`;
  list.replaceChildren(
    ...members.map((member) => {
      const item = el("li");
      const button = el("button", "member");
      button.type = "button";
      button.dataset.name = member.nick;
      button.append(el("span", "prefix", member.prefix.slice(0, 1)));
      button.append(el("span", `nick ${nickClass(member.nick)}`, member.nick));
      button.addEventListener("click", () => openQuery(member.nick));
      item.append(button);
      return item;
    }),
  );
}

export function renderTyping() {
  const buffer = activeBuffer();
  const now = Date.now();
  for (const [nick, until] of buffer.typing) if (until < now) buffer.typing.delete(nick);
  const nicks = [...buffer.typing.keys()];
  let text = "";
  if (nicks.length === 1) text = `${nicks[0]} is typing…`;
  else if (nicks.length === 2) text = `${nicks[0]} and ${nicks[1]} are typing…`;
  else if (nicks.length > 2) text = "Several people are typing…";
  $("typing").textContent = text;
}

export function renderHistoryStatus() {
  const buffer = activeBuffer();
  let text = "";
  if (buffer.loading) text = "Loading history…";
  else if (buffer.historyComplete && buffer.kind !== "server") text = "Beginning of the conversation";
  $("history-status").textContent = text;
}

export function renderStatus(detail) {
  const status = $("status");
  status.dataset.state = detail.state;
  if (detail.state === "connecting") status.textContent = "Connecting…";
  else if (detail.state === "waiting") status.textContent = `Reconnecting in ${Math.round(detail.delay / 1000)} s…`;
  else if (detail.state === "online") status.textContent = "Online";
  else status.textContent = "Offline";
}

export function switchTo(buffer) {
  stopTyping();
  app.active = keyOf(buffer);
  buffer.unread = 0;
  buffer.mention = false;
  cancelReply();
  document.body.classList.remove("show-sidebar", "show-members");
  scheduleRender();
  requestAnimationFrame(() => {
    const list = $("messages");
    list.scrollTop = list.scrollHeight;
    maybeLoadOlder();
  });
}

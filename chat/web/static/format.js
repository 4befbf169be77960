// Turn user text into DOM nodes: text nodes only, plus <a> for http(s)
// links. Nothing here ever parses text as HTML.

import { stripFormatting } from "./irc.js";

const URL_PATTERN = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}]+$/;

/** A safe link element for *text*, or null when it is not http(s). */
export function safeLink(text) {
  let url;
  try {
    url = new URL(text);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  const a = document.createElement("a");
  a.href = url.href;
  a.textContent = text;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  return a;
}

/** Append *text* to *parent* as text nodes, with http(s) URLs as links. */
export function appendText(parent, text, highlight = null) {
  const clean = stripFormatting(text);
  let last = 0;
  for (const match of clean.matchAll(URL_PATTERN)) {
    let found = match[0];
    const trail = TRAILING.exec(found);
    if (trail) found = found.slice(0, -trail[0].length);
    appendPlain(parent, clean.slice(last, match.index), highlight);
    const link = safeLink(found);
    if (link) parent.append(link);
    else parent.append(document.createTextNode(found));
    last = match.index + found.length;
  }
  appendPlain(parent, clean.slice(last), highlight);
}

function appendPlain(parent, text, highlight) {
  if (!text) return;
  if (!highlight) {
    parent.append(document.createTextNode(text));
    return;
  }
  let last = 0;
  for (const match of text.matchAll(highlight)) {
    parent.append(document.createTextNode(text.slice(last, match.index)));
    const mark = document.createElement("mark");
    mark.textContent = match[0];
    parent.append(mark);
    last = match.index + match[0].length;
  }
  parent.append(document.createTextNode(text.slice(last)));
}

/** Create an element with a class and optional text (as text). */
export function el(tag, className = "", text = null) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== null) node.textContent = text;
  return node;
}

/** A regular expression matching *nick* as a whole word, case-insensitive. */
export function mentionPattern(nick) {
  const escaped = nick.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(?<![\\w\\-\\[\\]\\\\^{}|])${escaped}(?![\\w\\-\\[\\]\\\\^{}|])`, "gi");
}

/** A stable colour class (nick-c0 ... nick-c11) for a nick. */
export function nickClass(nick) {
  let hash = 0;
  for (const c of nick.toLowerCase()) hash = (hash * 31 + c.charCodeAt(0)) >>> 0;
  return `nick-c${hash % 12}`;
}

/** "14:05" for a time in milliseconds. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

// What the user typed -> one command object. Pure: no DOM, no network.

function words(text, count) {
  const parts = [];
  let rest = text.trim();
  while (parts.length < count - 1 && rest) {
    const space = rest.search(/\s/);
    if (space < 0) break;
    parts.push(rest.slice(0, space));
    rest = rest.slice(space).trim();
  }
  if (rest) parts.push(rest);
  return parts;
}

function channelName(name) {
  return /^[#&+!]/.test(name) ? name : `#${name}`;
}

/**
 * Parse one input line typed in the conversation *current* (a channel or
 * nick, null in the server buffer).
 */
export function parseInput(text, current) {
  if (!text.startsWith("/") || text.startsWith("//")) {
    return { type: "say", text: text.startsWith("//") ? text.slice(1) : text };
  }
  const space = text.search(/\s/);
  const name = (space < 0 ? text.slice(1) : text.slice(1, space)).toLowerCase();
  const rest = space < 0 ? "" : text.slice(space + 1);
  const usage = (u) => ({ type: "error", text: `Usage: ${u}` });
  switch (name) {
    case "me":
      return rest ? { type: "me", text: rest } : usage("/me <action>");
    case "join":
    case "j": {
      const [channels, key] = words(rest, 2);
      if (!channels) return usage("/join #channel [key]");
      return { type: "join", channels: channels.split(",").filter(Boolean).map(channelName), key: key || null };
    }
    case "part":
    case "leave": {
      const [first, ...others] = words(rest, 2);
      if (first && /^[#&+!]/.test(first)) return { type: "part", channel: first, reason: others.join(" ") };
      return { type: "part", channel: current, reason: rest.trim() };
    }
    case "msg":
    case "privmsg": {
      const [target, message] = words(rest, 2);
      if (!target) return usage("/msg <nick|#channel> <text>");
      return { type: "msg", target, text: message || "" };
    }
    case "query": {
      const [target] = words(rest, 2);
      return target ? { type: "query", target } : usage("/query <nick>");
    }
    case "nick": {
      const [nick] = words(rest, 2);
      return nick ? { type: "nick", nick } : usage("/nick <new nick>");
    }
    case "topic": {
      const [first] = words(rest, 2);
      let channel = current;
      let topic = rest;
      if (first && /^[#&]/.test(first)) {
        channel = first;
        topic = rest.trim().slice(first.length).trim();
      }
      if (!channel) return usage("/topic [#channel] [text]");
      return { type: "topic", channel, text: topic.trim() ? topic.trim() : null };
    }
    case "away":
      return { type: "away", text: rest.trim() };
    case "back":
      return { type: "away", text: "" };
    case "quote":
    case "raw":
      return rest.trim() ? { type: "quote", line: rest.trim() } : usage("/quote <IRC line>");
    case "close":
      return { type: "close" };
    case "help":
      return { type: "help" };
    default:
      return { type: "error", text: `Unknown command /${name}; try /help` };
  }
}

// Compiled by `npm run typecheck` only: the WebSocket constructors apps pass must fit the option.
import NodeWebSocket from "ws";

import { Herald } from "../../src/index.js";

export function withBrowserWebSocket(): Herald {
  return new Herald({ url: "https://h", token: "t", WebSocket: globalThis.WebSocket });
}

export function withNodeWebSocket(): Herald {
  return new Herald({ url: "https://h", token: "t", WebSocket: NodeWebSocket });
}

// The browser's own registration must fit what `subscribeWebPush` takes.
export async function withBrowserRegistration(herald: Herald): Promise<void> {
  const registration = await navigator.serviceWorker.register("/herald-sw.js");
  await herald.subscribeWebPush(registration);
}

// Keeping the mirror from proxying to itself. In DNS-spoof mode the registries' names point at the
// mirror; should the mirror host resolve them the same way (or an upstream's URL or address name the
// mirror), every pull would loop until sockets run out. Two guards: at start-up an upstream that is
// one of the mirror's own listen addresses is refused, and at run time every upstream request
// carries `Via: 1.1 ocimirror-<instance>` (RFC 9110 7.6.3) after the hops of the client request it
// serves, so a request that comes back, directly or through other mirrors (A -> B -> A), is answered
// 508 Loop Detected instead of being proxied again; every mirror on the way answers 508 in turn.

/** The received-by token this process adds to its upstream requests. */
export function viaPseudonym(instanceId: string): string {
  return `ocimirror-${instanceId}`;
}

export function viaHeader(instanceId: string): string {
  return `1.1 ${viaPseudonym(instanceId)}`;
}

/** Whether a Via header (a comma-separated list of "protocol received-by [comment]") names this process. */
export function carriesOwnVia(via: string | undefined, instanceId: string): boolean {
  if (!via) return false;
  const own = viaPseudonym(instanceId);
  return via.split(',').some((hop) => hop.trim().split(/\s+/)[1] === own);
}

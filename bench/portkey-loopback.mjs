// Preloaded into the Portkey gateway by bench/run.py (`node --import`):
// Portkey's start-server.js calls @hono/node-server's serve() with a port but
// no hostname, so it would listen on every interface. The benchmark must stay
// on loopback, so every server.listen() in that process is bound to
// PORTKEY_BIND_HOST (default 127.0.0.1). Nothing else is changed.
import net from 'node:net';

const host = process.env.PORTKEY_BIND_HOST || '127.0.0.1';
const listen = net.Server.prototype.listen;

net.Server.prototype.listen = function patchedListen(...args) {
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // listen(options[, callback]); a server handle ({fd} / {handle}) is left alone
    if (!('fd' in first) && !('handle' in first) && !('_handle' in first) && !('path' in first)) {
      args[0] = { ...first, host };
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback])
    if (typeof args[1] === 'function') {
      args.splice(1, 0, host);
    } else {
      args[1] = host;
    }
  }
  return listen.apply(this, args);
};

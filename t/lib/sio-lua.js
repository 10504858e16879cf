// t/070-lua-hooks.t: messages sent over Socket.IO (the unmodified
// socket.io-client) through the site's Lua message filter.  Input as
// sio-scenario.js's, with texts: [..]; output: {"1": what the ack said
// of the first text, ...}: "ok:<text stored>" or "<code>:<status>:<message>".

'use strict';

const path = require('path');
const { io } = require(path.join(process.env.CHAT_SIO_CLIENT,
                                 'node_modules', 'socket.io-client'));

const cfg = JSON.parse(process.argv[2]);
const out = {};

async function main() {
  const a = io(cfg.url, { path: '/socket.io/', reconnection: false,
                          transports: ['websocket'],
                          auth: { token: cfg.tokens.alice } });
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no authenticated')), 5000);
    a.once('authenticated', () => { clearTimeout(t); resolve(); });
  });

  let n = 0;
  for (const text of cfg.texts) {
    n++;
    const ack = await a.timeout(5000).emitWithAck('send_message', {
      chatId: cfg.chat, tempId: 'sio-lua-' + Date.now() + '-' + n,
      content: { type: 'text', text } });
    out[n] = ack.message ? 'ok:' + ack.message.content.text
                         : ack.error.code + ':' + ack.status + ':'
                           + ack.error.message;
  }
  a.disconnect();
}

main().then(() => console.log(JSON.stringify(out)),
            (e) => console.log(JSON.stringify({ failed: e.message })));

// A client written from the seed README's "Socket.IO Events" section
// alone, on the unmodified socket.io-client v4: what it emits and what it
// listens for are the seed's, with the fields the seed shows.  Input: one
// JSON argument {url, transports?, tokens, ids, chat}; output: one line of
// JSON, what the two clients saw.

'use strict';

const path = require('path');
const { io } = require(path.join(process.env.CHAT_SIO_CLIENT,
                                 'node_modules', 'socket.io-client'));

const cfg = JSON.parse(process.argv[2]);
const out = {};
const authenticated = { alice: 0, bob: 0 };
const t0 = Date.now();
// CHAT_SEED_TRACE=1: what each client saw, when, on stderr
function trace(...a) {
  if (process.env.CHAT_SEED_TRACE) {
    process.stderr.write('seed trace ' + (Date.now() - t0) + 'ms '
                         + a.join(' ') + '\n');
  }
}

function connect(name) {
  const o = { reconnection: false, timeout: 5000 };
  if (cfg.transports) o.transports = cfg.transports;
  const s = io(cfg.url, o);
  s.on('authenticated', () => {
    authenticated[name]++;
    const e = s.io.engine;
    trace(name, 'authenticated', e && e.id, e && e.transport.name);
  });
  s.on('connect', () => trace(name, 'connect', s.io.engine.id));
  s.on('disconnect', (r) => trace(name, 'disconnect', r));
  s.io.on('open', () => {
    trace(name, 'engine open', s.io.engine.id);
    s.io.engine.on('upgrade', () => trace(name, 'upgraded'));
  });
  s.io.on('reconnect_attempt', () => trace(name, 'reconnect_attempt'));
  // Connection: authenticate {token}
  s.on('connect', () => s.emit('authenticate', { token: cfg.tokens[name] }));
  return s;
}

// the next event that pred accepts, or a failure naming it
function until(sock, event, pred, ms = 5000) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('timeout: ' + event)), ms);
    const h = (data) => {
      if (pred(data)) {
        clearTimeout(t);
        sock.off(event, h);
        resolve(data);
      }
    };
    sock.on(event, h);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// the client's own upgrade from polling, when it makes one: the seed's
// client knows nothing of it, but a message sent during the handover may
// be lost (a known bug, see README "Socket.IO")
function upgraded(sock, ms = 3000) {
  return new Promise((resolve) => {
    const engine = sock.io.engine;
    if (!engine || engine.transport.name === 'websocket') {
      resolve();
      return;
    }
    const t = setTimeout(resolve, ms);
    engine.once('upgrade', () => { clearTimeout(t); resolve(); });
  });
}

const keys = (o) => Object.keys(o).sort().join(',');

async function run() {
  const a = connect('alice');
  const b = connect('bob');
  const alice = cfg.ids.alice;
  const bob = cfg.ids.bob;
  const chatId = cfg.chat;

  // -> authenticated {user}
  const authed = await Promise.all([
    until(a, 'authenticated', () => true),
    until(b, 'authenticated', () => true),
  ]);
  out.user_alice = authed[0].user.id === alice;
  out.user_bob = authed[1].user.id === bob;
  await Promise.all([upgraded(a), upgraded(b)]);

  // Chat events: join_chat {chatId}
  a.emit('join_chat', { chatId });
  b.emit('join_chat', { chatId });

  // typing_start/typing_stop -> user_typing {userId, isTyping}
  let typing = until(a, 'user_typing', (d) => d.isTyping === true);
  b.emit('typing_start', { chatId });
  let t = await typing;
  out.typing_start = (t.userId === bob) + ':' + t.isTyping;
  typing = until(a, 'user_typing', (d) => d.isTyping === false);
  b.emit('typing_stop', { chatId });
  t = await typing;
  out.typing_stop = (t.userId === bob) + ':' + t.isTyping;

  // send_message {chatId, content: {type, text}, tempId}
  //   -> new_message {message, tempId}
  const tempId = 'temp-id-' + cfg.run;
  const toBob = until(b, 'new_message', (d) => d.tempId === tempId);
  const toAlice = until(a, 'new_message', (d) => d.tempId === tempId);
  a.emit('send_message', {
    chatId,
    content: { type: 'text', text: 'Hello!' },
    tempId,
  });
  const nm = await toBob;
  const mine = await toAlice;
  const m = nm.message;
  out.new_message = keys(nm);
  out.message = [m.chatId === chatId, m.senderId === alice,
                 typeof m.id === 'string', keys(m.content),
                 m.content.type, m.content.text].join(':');
  out.sender_copy = mine.message.id === m.id && mine.message.content.text;

  // message_delivered {messageId}, message_read {messageId, chatId}
  //   -> message_status_update {messageId, status, userId}
  let status = until(a, 'message_status_update',
                     (d) => d.status === 'delivered');
  b.emit('message_delivered', { messageId: m.id });
  let st = await status;
  out.delivered = [st.messageId === m.id, st.status,
                   st.userId === bob].join(':');
  status = until(a, 'message_status_update', (d) => d.status === 'read');
  b.emit('message_read', { messageId: m.id, chatId });
  st = await status;
  out.read = [st.messageId === m.id, st.status, st.userId === bob].join(':');

  // add_reaction {messageId, emoji}
  const reaction = until(a, 'message_reaction', () => true);
  b.emit('add_reaction', { messageId: m.id, emoji: '\u{1F44D}' });
  const r = await reaction;
  const cp = (x) => 'U+' + x.codePointAt(0).toString(16);
  out.reaction = [r.message.id === m.id, r.userId === bob, cp(r.emoji),
                  r.message.reactions.map((x) => cp(x.emoji) + '*' + x.count)
                    .join(),
                  r.message.content.text].join(':');

  // edit_message {messageId, newContent}
  const edited = until(b, 'message_edited', () => true);
  a.emit('edit_message', { messageId: m.id, newContent: 'Edited text' });
  const e = (await edited).message;
  out.edited = [e.id === m.id, e.edited, keys(e.content), e.content.type,
                e.content.text].join(':');

  // delete_message {messageId, deleteForEveryone}
  const deleted = until(b, 'message_deleted', () => true);
  a.emit('delete_message', { messageId: m.id, deleteForEveryone: true });
  const d = (await deleted).message;
  out.deleted = [d.id === m.id, d.type, 'content' in d].join(':');

  // nothing said twice
  await sleep(300);
  out.authenticated = authenticated.alice + ',' + authenticated.bob;
  a.disconnect();
  b.disconnect();
}

(async () => {
  try {
    await run();
  } catch (e) {
    out.failed = e.message + ' at ' + (e.stack || '').split('\n')[1].trim();
  }
  process.stdout.write(JSON.stringify(out) + '\n');
  process.exit(0);
})();

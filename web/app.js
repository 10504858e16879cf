// ngx_chat's browser client: sign in with a phone number and its code,
// my chats, a private chat started with a number, a chat's messages, and
// over Socket.IO sending, receiving, typing and read receipts.  The shapes
// are the README's (REST, Socket.IO, Events).

'use strict';

const $ = (id) => document.getElementById(id);

const state = {
  token: sessionStorage.getItem('chat.token'),
  me: JSON.parse(sessionStorage.getItem('chat.me') || 'null'),
  socket: null,
  chats: new Map(),      // id -> chat as GET /api/chats gives it
  users: new Map(),      // id -> user, or a promise of one
  open: null,            // the open chat's id
  readBy: new Map(),     // chatId -> the highest seq another member read
  typingTimer: null,
  lastTyping: 0,
};

function showError(e) {
  $('error').textContent = e ? String(e.message || e) : '';
}

async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (state.token) headers.Authorization = 'Bearer ' + state.token;
  const r = await fetch(path, {
    method, headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    if (r.status === 401 && state.token) signOut();
    const err = data.error || {};
    throw new Error(err.message || err.code || ('HTTP ' + r.status));
  }
  return data;
}

/* signing in */

$('phone-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError();
  try {
    const r = await api('POST', '/api/auth/send-otp',
                        { phone: $('phone').value.trim() });
    $('phone').value = r.phone;
    $('code-form').hidden = false;
    $('code').focus();
  } catch (e) { showError(e); }
});

$('code-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError();
  try {
    const r = await api('POST', '/api/auth/verify-otp', {
      phone: $('phone').value, code: $('code').value.trim(),
      device: { name: navigator.userAgent.slice(0, 60), platform: 'web' },
    });
    state.token = r.accessToken;
    state.me = r.user;
    sessionStorage.setItem('chat.token', r.accessToken);
    sessionStorage.setItem('chat.me', JSON.stringify(r.user));
    start();
  } catch (e) { showError(e); }
});

$('logout').addEventListener('click', () => {
  api('POST', '/api/auth/logout', {}).catch(() => {});
  signOut();
});

function signOut() {
  if (state.socket) state.socket.close();
  state.socket = null;
  state.token = null;
  state.me = null;
  state.open = null;
  sessionStorage.clear();
  $('app').hidden = true;
  $('chat').hidden = true;
  $('logout').hidden = true;
  $('signin').hidden = false;
  $('code-form').hidden = true;
  $('me').textContent = '';
}

function start() {
  $('signin').hidden = true;
  $('app').hidden = false;
  $('logout').hidden = false;
  $('me').textContent = state.me.name || state.me.phone || '';
  connect();
  loadChats().catch(showError);
}

/* people: a name to show for an id */

function userName(id) {
  const u = state.users.get(id);
  if (u && !(u instanceof Promise)) {
    return u.name || u.username || u.phone || id.slice(-6);
  }
  if (!u) {
    state.users.set(id, api('GET', '/api/users/' + id).then((r) => {
      state.users.set(id, r.user || r);
      renderChats();
      if (state.open) renderTitle();
    }).catch(() => state.users.set(id, { id })));
  }
  return id.slice(-6);
}

function chatName(chat) {
  if (chat.type === 'group') return chat.name || 'Group';
  const other = (chat.members.ids || []).find((id) => id !== state.me.id);
  return other ? userName(other) : 'Saved messages';
}

/* my chats */

async function loadChats() {
  const r = await api('GET', '/api/chats?limit=50');
  state.chats.clear();
  for (const c of r.items) state.chats.set(c.id, c);
  renderChats();
}

function text(msg) {
  if (!msg) return '';
  const c = msg.content || {};
  if (msg.type === 'deleted') return 'deleted';
  return c.text !== undefined ? c.text : '[' + (c.type || msg.type) + ']';
}

function renderChats() {
  const ul = $('chats');
  ul.textContent = '';
  const chats = [...state.chats.values()]
      .sort((a, b) => String(b.updatedAt).localeCompare(a.updatedAt));
  for (const c of chats) {
    const li = document.createElement('li');
    li.dataset.id = c.id;
    if (c.id === state.open) li.className = 'open';
    const name = document.createElement('div');
    name.className = 'name';
    name.textContent = chatName(c);
    if (c.unreadCount > 0 && c.id !== state.open) {
      const n = document.createElement('span');
      n.className = 'unread';
      n.textContent = c.unreadCount;
      name.appendChild(n);
    }
    const last = document.createElement('div');
    last.className = 'last';
    last.textContent = text(c.lastMessage);
    li.append(name, last);
    li.addEventListener('click', () => openChat(c.id).catch(showError));
    ul.appendChild(li);
  }
}

$('new-chat').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  showError();
  try {
    const phone = $('new-phone').value.trim();
    const r = await api('POST', '/api/users/add-contact', { phone });
    // the number I typed, when their settings show me no name or number
    const other = r.contact;
    state.users.set(other.id, { ...other, phone: other.phone || phone });
    const c = await api('POST', '/api/chats/private', { userId: other.id });
    state.chats.set(c.chat.id, c.chat);
    $('new-phone').value = '';
    await openChat(c.chat.id);
  } catch (e) { showError(e); }
});

/* a chat */

function renderTitle() {
  const c = state.chats.get(state.open);
  $('chat-title').textContent = c ? chatName(c) : '';
}

async function openChat(id) {
  state.open = id;
  $('chat').hidden = false;
  $('typing').textContent = '';
  renderTitle();
  $('messages').textContent = '';
  const r = await api('GET', '/api/chats/' + id + '/messages?limit=50');
  if (state.open !== id) return;
  for (const m of r.items.slice().reverse()) addMessage(m);
  markRead();
  renderChats();
  $('text').focus();
}

function addMessage(m) {
  const ol = $('messages');
  let li = ol.querySelector('li[data-seq="' + m.seq + '"]');
  if (!li) {
    li = document.createElement('li');
    li.dataset.seq = m.seq;
    ol.appendChild(li);
  }
  li.dataset.id = m.id;
  li.textContent = text(m);
  if (m.senderId === state.me.id) {
    li.classList.add('mine');
    const st = document.createElement('span');
    st.className = 'status';
    li.appendChild(st);
    paintStatus(li);
  }
  ol.scrollTop = ol.scrollHeight;
}

function paintStatus(li) {
  const read = state.readBy.get(state.open) || 0;
  const st = li.querySelector('.status');
  if (!st) return;
  const isRead = Number(li.dataset.seq) <= read;
  li.classList.toggle('read', isRead);
  st.textContent = isRead ? '\u2713\u2713 read' : '\u2713';
}

function markRead() {
  const items = $('messages').querySelectorAll('li');
  if (!items.length || !state.socket) return;
  const seq = Number(items[items.length - 1].dataset.seq);
  const c = state.chats.get(state.open);
  if (c) c.unreadCount = 0;
  state.socket.emit('message_read', { chatId: state.open, upToSeq: seq });
}

$('composer').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const input = $('text');
  const body = input.value.trim();
  if (!body || !state.open || !state.socket) return;
  input.value = '';
  state.socket.emit('typing_stop', { chatId: state.open });
  state.lastTyping = 0;
  try {
    const ack = await state.socket.timeout(10000).emitWithAck(
        'send_message', {
          chatId: state.open,
          tempId: 'web-' + Date.now() + '-' + Math.random().toString(36)
              .slice(2, 8),
          content: { type: 'text', text: body },
        });
    if (ack.error) throw new Error(ack.error.message || ack.error.code);
    onMessage(ack.message);
  } catch (e) { showError(e); }
});

// at most one typing_start a second (the server drops the rest)
$('text').addEventListener('input', () => {
  if (!state.open || !state.socket) return;
  const now = Date.now();
  if (now - state.lastTyping < 1000) return;
  state.lastTyping = now;
  state.socket.emit('typing_start', { chatId: state.open });
});

/* live: Socket.IO */

function onMessage(m) {
  const c = state.chats.get(m.chatId);
  if (!c) {
    loadChats().catch(showError);
    return;
  }
  c.lastMessage = m;
  c.updatedAt = m.createdAt;
  if (m.chatId === state.open) {
    addMessage(m);
    if (m.senderId !== state.me.id) markRead();
  } else if (m.senderId !== state.me.id) {
    c.unreadCount = (c.unreadCount || 0) + 1;
  }
  renderChats();
}

function connect() {
  // the websocket first: no polling session to upgrade mid-send
  const s = io({ path: '/socket.io/', auth: { token: state.token },
                 transports: ['websocket', 'polling'] });
  state.socket = s;
  s.on('connect_error', (e) => showError(e));
  s.on('authenticated', () => showError());
  s.on('new_message', (d) => onMessage(d.message));
  s.on('chat_created', (d) => {
    state.chats.set(d.chat.id, d.chat);
    renderChats();
  });
  s.on('user_typing', (d) => {
    if (d.chatId !== state.open || d.userId === state.me.id) return;
    clearTimeout(state.typingTimer);
    if (!d.isTyping) {
      $('typing').textContent = '';
      return;
    }
    $('typing').textContent = userName(d.userId) + ' is typing\u2026';
    state.typingTimer = setTimeout(() => { $('typing').textContent = ''; },
                                   (d.expiresIn || 5000) + 500);
  });
  s.on('message_status_update', (d) => {
    if (d.status !== 'read' || d.userId === state.me.id) return;
    const seq = Math.max(state.readBy.get(d.chatId) || 0, d.upToSeq || 0);
    state.readBy.set(d.chatId, seq);
    if (d.chatId === state.open) {
      $('messages').querySelectorAll('li.mine').forEach(paintStatus);
    }
  });
  s.on('error', (d) => showError(d && (d.message || d.code)));
}

if (state.token && state.me) start();

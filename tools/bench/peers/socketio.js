// The Socket.IO peer of tools/bench: rooms and fan-out, as the seed's
// Node.js server does it.  A client joins a room ("join", with an ack)
// and publishes ("pub", room, text); every member of the room, the
// publisher included, gets "msg".
'use strict';

const http = require('http');
const { Server } = require('socket.io');

const port = Number(process.argv[2] || 3000);
const server = http.createServer();
const io = new Server(server, {
    transports: ['websocket'],
    perMessageDeflate: false,
    serveClient: false,
});

io.on('connection', (socket) => {
    socket.on('join', (room, ack) => {
        socket.join(room);
        if (typeof ack === 'function') {
            ack();
        }
    });
    socket.on('pub', (room, text) => {
        io.to(room).emit('msg', text);
    });
});

server.listen(port, '127.0.0.1');

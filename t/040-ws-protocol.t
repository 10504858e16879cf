# RFC 6455 on the wire, against the echo location (chat_ws_echo): the
# handshake and its refusals, frames, fragmentation, control frames, the
# closing handshake, every protocol error with its close code, message and
# queue limits, idle pings, permessage-deflate, and 1001 on reload.
#
# Each block runs its client in --- init (NGINX is up by then) and leaves
# a transcript in $main::Got; the block's own request only fetches it.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatWS;

our $Got;

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /ws {
        chat_ws_echo;
        chat_ws_max_message_size 1k;
        chat_ws_protocols chat superchat;
    }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t") unless defined $block->request;
    $block->set_value("response_body_filters",
                      sub { "$main::Got\n" })
        if defined $block->init;
});

# TEST 22 reloads: graceful shutdown needs a master process
master_on();
no_shuffle();
run_tests();

__DATA__

=== TEST 1: the handshake answers 101 with the RFC's accept value
--- init
my ($s, $st, $h) = ChatWS::open_ws("/ws", [],
                                   key => "dGhlIHNhbXBsZSBub25jZQ==");
$main::Got = "$st $h->{upgrade} $h->{connection} "
             . $h->{"sec-websocket-accept"};
--- response_body
101 websocket Upgrade s3pPLMBiTxaQ9kYGzzhZRbK+xOo=



=== TEST 2: a plain GET is told to upgrade (426, JSON, Upgrade header)
--- init
my ($s, $st, $h, $head, $body) = ChatWS::open_ws("/ws", [], no_upgrade => 1);
chomp $body;
$main::Got = "$st $h->{upgrade} $body";
--- response_body
426 websocket {"error":{"code":"upgrade_required","message":"This endpoint speaks WebSocket: send Upgrade: websocket"}}



=== TEST 3: another protocol version gets 426 and the version spoken here
--- init
my ($s, $st, $h, $head, $body) = ChatWS::open_ws("/ws", [], version => 8);
chomp $body;
$main::Got = "$st " . $h->{"sec-websocket-version"} . " $body";
--- response_body
426 13 {"error":{"code":"unsupported_websocket_version","message":"Only WebSocket version 13 is spoken here"}}



=== TEST 4: a missing, short or doubled key is a 400
--- init
my @r;
my ($s, $st, $h, $head, $body) = ChatWS::open_ws("/ws", [], no_key => 1);
push @r, $st;
($s, $st) = ChatWS::open_ws("/ws", [], key => "c2hvcnQ=");
push @r, $st;
($s, $st, $h, $head, $body) = ChatWS::open_ws("/ws",
    ["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="],
    key => "dGhlIHNhbXBsZSBub25jZQ==");
chomp $body;
push @r, $st, $body;
$main::Got = "@r";
--- response_body
400 400 400 {"error":{"code":"bad_websocket_key","message":"Sec-WebSocket-Key must be 16 bytes in base64"}}



=== TEST 5: only GET opens a socket
--- request
POST /ws
--- response_headers
Allow: GET, HEAD, OPTIONS
--- response_body
{"error":{"code":"method_not_allowed","message":"this method is not allowed here"}}
--- error_code: 405



=== TEST 6: HTTP/1.0 cannot upgrade
--- raw_request eval
"GET /ws HTTP/1.0\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
. "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
. "Sec-WebSocket-Version: 13\r\n\r\n"
--- response_body
{"error":{"code":"http11_required","message":"A WebSocket opens over HTTP/1.1"}}
--- error_code: 400



=== TEST 7: the first offered subprotocol this location speaks is chosen
--- init
my @r;
my ($s, $st, $h) = ChatWS::open_ws("/ws",
    ["Sec-WebSocket-Protocol: mqtt, superchat", "Sec-WebSocket-Protocol: chat"]);
push @r, $h->{"sec-websocket-protocol"};
($s, $st, $h) = ChatWS::open_ws("/ws", ["Sec-WebSocket-Protocol: mqtt"]);
push @r, $st, $h->{"sec-websocket-protocol"} // "none";
$main::Got = "@r";
--- response_body
superchat 101 none



=== TEST 8: text and binary come back; a ping gets its pong; close is answered
--- init
my ($s) = ChatWS::open_ws("/ws");
ChatWS::text($s, "héllo");
ChatWS::send_frame($s, opcode => 2, payload => "\x00\x01\xff");
ChatWS::send_frame($s, opcode => 9, payload => "p1");
ChatWS::send_frame($s, opcode => 1, payload => "");
ChatWS::close_frame($s, 1000, "bye");
$main::Got = ChatWS::drain($s);
--- response_body
text:héllo binary:0001ff pong:p1 text: close:1000 eof



=== TEST 9: a fragmented message with a ping between fragments
--- init
my ($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 1, fin => 0, payload => "frag");
ChatWS::send_frame($s, opcode => 9, payload => "mid");
ChatWS::send_frame($s, opcode => 0, fin => 0, payload => "men");
ChatWS::send_frame($s, opcode => 0, fin => 1, payload => "ted");
ChatWS::close_frame($s, 1000);
$main::Got = ChatWS::drain($s);
--- response_body
pong:mid text:fragmented close:1000 eof



=== TEST 10: frames that arrive byte by byte, and frames pipelined with the handshake
--- init
my $bytes = ChatWS::frame(opcode => 1, payload => "slow" x 40);
my ($s) = ChatWS::open_ws("/ws", [],
                          pipelined => ChatWS::frame(opcode => 1,
                                                     payload => "early"));
for my $i (0 .. length($bytes) - 1) {
    ChatWS::send_raw($s, substr($bytes, $i, 1));
    Time::HiRes::sleep(0.002) if $i < 20;
}
ChatWS::close_frame($s, 1000);
$main::Got = ChatWS::drain($s);
--- response_body
text:early text:160 bytes close:1000 eof



=== TEST 11: an unmasked client frame is a protocol error (1002)
--- init
my ($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 1, payload => "x", mask => 0);
$main::Got = ChatWS::drain($s);
--- response_body
close:1002 eof
--- no_error_log
[error]
[alert]



=== TEST 12: reserved bits, reserved opcodes (data and control) are 1002
--- init
my @r;
for my $f ([rsv => 1, opcode => 1], [rsv => 4, opcode => 1],
           [opcode => 3], [opcode => 0xb])
{
    my ($s) = ChatWS::open_ws("/ws");
    ChatWS::send_frame($s, @$f, payload => "x");
    push @r, ChatWS::drain($s);
}
$main::Got = join " | ", @r;
--- response_body
close:1002 eof | close:1002 eof | close:1002 eof | close:1002 eof



=== TEST 13: control frames: over 125 bytes or fragmented are 1002
--- init
my @r;
my ($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 9, payload => "x" x 126);
push @r, ChatWS::drain($s);
($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 9, fin => 0, payload => "x");
push @r, ChatWS::drain($s);
($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 9, payload => "x" x 125);
ChatWS::close_frame($s, 1000);
push @r, ChatWS::drain($s);
$main::Got = join " | ", @r;
--- response_body
close:1002 eof | close:1002 eof | pong:125 bytes close:1000 eof



=== TEST 14: a continuation with nothing to continue, a message inside a message
--- init
my @r;
my ($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 0, payload => "x");
push @r, ChatWS::drain($s);
($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 1, fin => 0, payload => "a");
ChatWS::send_frame($s, opcode => 1, payload => "b");
push @r, ChatWS::drain($s);
$main::Got = join " | ", @r;
--- response_body
close:1002 eof | close:1002 eof



=== TEST 15: invalid UTF-8 is 1007, at once, even in the first fragment
--- init
my @r;
my ($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 1, payload => "ok\xc3\x28");
push @r, ChatWS::drain($s);
($s) = ChatWS::open_ws("/ws");
# a surrogate (ED A0 80) in a first fragment that never finishes
ChatWS::send_frame($s, opcode => 1, fin => 0, payload => "a\xed\xa0\x80");
push @r, ChatWS::drain($s);
($s) = ChatWS::open_ws("/ws");
# a character cut at the end of the message
ChatWS::send_frame($s, opcode => 1, fin => 0, payload => "\xe2\x82");
ChatWS::send_frame($s, opcode => 0, payload => "");
push @r, ChatWS::drain($s);
($s) = ChatWS::open_ws("/ws");
# one character split over two fragments is fine
ChatWS::send_frame($s, opcode => 1, fin => 0, payload => "\xe2\x82");
ChatWS::send_frame($s, opcode => 0, payload => "\xac");
ChatWS::close_frame($s, 1000);
push @r, ChatWS::drain($s);
$main::Got = join " | ", @r;
--- response_body
close:1007 eof | close:1007 eof | close:1007 eof | text:€ close:1000 eof



=== TEST 16: a message over chat_ws_max_message_size is 1009, fragmented or not
--- init
my @r;
my ($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 2, payload => "x" x 1024);
ChatWS::send_frame($s, opcode => 2, payload => "x" x 1025);
push @r, ChatWS::drain($s);
($s) = ChatWS::open_ws("/ws");
ChatWS::send_frame($s, opcode => 2, fin => 0, payload => "x" x 600);
ChatWS::send_frame($s, opcode => 0, payload => "x" x 600);
push @r, ChatWS::drain($s);
$main::Got = join " | ", @r;
--- response_body
binary:1024 bytes close:1009 eof | close:1009 eof



=== TEST 17: close frames: a 1-byte body, a bad code, a bad reason; an empty one
--- init
my @r;
for my $p ("\x03", pack("n", 999), pack("n", 1005), pack("n", 2999),
           pack("n", 1000) . "\xff", "", pack("n", 4000) . "fine")
{
    my ($s) = ChatWS::open_ws("/ws");
    ChatWS::send_frame($s, opcode => 8, payload => $p);
    push @r, ChatWS::drain($s);
}
$main::Got = join " | ", @r;
--- response_body
close:1002 eof | close:1002 eof | close:1002 eof | close:1002 eof | close:1007 eof | close:1000 eof | close:4000 eof



=== TEST 18: an idle socket is pinged; one that never answers is closed
--- config
    location /ws {
        chat_ws_echo;
        chat_ws_ping_interval 300ms;
        chat_ws_pong_timeout 300ms;
    }
    location = /t { return 200 "t"; }
--- init
my @r;
my ($s) = ChatWS::open_ws("/ws");
my $f = ChatWS::read_frame($s, 3);
push @r, ChatWS::describe($f);
ChatWS::send_frame($s, opcode => 10, payload => "");
$f = ChatWS::read_frame($s, 3);
push @r, ChatWS::describe($f);
my $t0 = Time::HiRes::time();
push @r, ChatWS::drain($s, 3);
push @r, (Time::HiRes::time() - $t0 < 2 ? "soon" : "late");
$main::Got = "@r";
--- response_body
ping: ping: eof soon



=== TEST 19: a reader that does not read is closed with 1008 (bounded queue)
--- config
    location /ws {
        chat_ws_echo;
        chat_ws_max_message_size 64k;
        chat_ws_max_queue 256k;
    }
    location = /t { return 200 "t"; }
--- init
my ($s) = ChatWS::open_ws("/ws");
my $chunk = ChatWS::frame(opcode => 2, payload => "y" x 60000);
my $sent = 0;
for (1 .. 300) {
    last unless ChatWS::send_raw($s, $chunk);
    $sent++;
}
my $all = ChatWS::drain($s, 5);
my @parts = split / /, $all;
$main::Got = join " ", @parts[-2, -1];
--- timeout: 30
--- response_body
close:1008 eof



=== TEST 20: permessage-deflate: negotiated, and messages both ways compressed
--- config
    location /ws {
        chat_ws_echo;
        chat_ws_deflate on;
    }
    location = /t { return 200 "t"; }
--- init
my @r;
my ($s, $st, $h) = ChatWS::open_ws("/ws",
    ["Sec-WebSocket-Extensions: x-webkit-deflate-frame, permessage-deflate; client_max_window_bits"]);
push @r, $h->{"sec-websocket-extensions"};
ChatWS::send_frame($s, opcode => 1, rsv => 4,
                   payload => ChatWS::deflate_payload("hello hello hello"));
ChatWS::text($s, "plain");
ChatWS::close_frame($s, 1000);
push @r, ChatWS::drain($s, 5, ChatWS::inflater());
($s, $st, $h) = ChatWS::open_ws("/ws",
    ["Sec-WebSocket-Extensions: permessage-deflate; bogus_param"]);
push @r, $h->{"sec-websocket-extensions"} // "none";
$main::Got = join " | ", @r;
--- response_body
permessage-deflate; server_no_context_takeover; client_no_context_takeover | text:z:hello hello hello text:z:plain close:1000 eof | none



=== TEST 21: a compressed frame on a socket without deflate is 1002; bad data 1007
--- config
    location /ws {
        chat_ws_echo;
        chat_ws_deflate on;
    }
    location /plain { chat_ws_echo; }
    location = /t { return 200 "t"; }
--- init
my @r;
my ($s) = ChatWS::open_ws("/plain",
    ["Sec-WebSocket-Extensions: permessage-deflate"]);
ChatWS::send_frame($s, opcode => 1, rsv => 4,
                   payload => ChatWS::deflate_payload("x"));
push @r, ChatWS::drain($s);
($s) = ChatWS::open_ws("/ws", ["Sec-WebSocket-Extensions: permessage-deflate"]);
ChatWS::send_frame($s, opcode => 1, rsv => 4, payload => "\xff\xff\xff\xff");
push @r, ChatWS::drain($s);
$main::Got = join " | ", @r;
--- response_body
close:1002 eof | close:1007 eof



=== TEST 22: a reload says 1001 to open sockets and the old worker exits
--- init
my ($s) = ChatWS::open_ws("/ws");
ChatWS::text($s, "before");
my $f = ChatWS::read_frame($s);
my @r = (ChatWS::describe($f));
open my $fh, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
my $pid = <$fh>;
chomp $pid;
kill "HUP", $pid;
push @r, ChatWS::drain($s, 5);
$main::Got = "@r";
--- response_body
text:before close:1001 eof



=== TEST 23: with context takeover, an empty message after a compressed one is echoed (uncompressed)
--- config
    location /ws {
        chat_ws_echo;
        chat_ws_deflate on;
        chat_ws_deflate_context_takeover on;
    }
    location = /t { return 200 "t"; }
--- init
my ($s) = ChatWS::open_ws("/ws", ["Sec-WebSocket-Extensions: permessage-deflate"]);
ChatWS::send_frame($s, opcode => 1, rsv => 4,
                   payload => ChatWS::deflate_payload("hello"));
ChatWS::text($s, "");
ChatWS::send_frame($s, opcode => 2, rsv => 0, payload => "");
ChatWS::text($s, "again");
ChatWS::close_frame($s, 1000);
$main::Got = ChatWS::drain($s, 5, ChatWS::inflater());
--- response_body
text:z:hello text: binary: text:z:again close:1000 eof
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 24: tcp_nodelay off leaves the socket as it was
--- log_level: debug
--- skip_eval: 5: $ENV{TEST_NGINX_USE_HUP}
--- http_config
    # with reloads Test::Nginx's own keep-alive GET /ver sets it on its
    # connections, in the same log: this one runs without reloads
    tcp_nodelay off;
--- config
    location /ws {
        chat_ws_echo;
    }
    location = /t { return 200 "t"; }
--- init
my ($s) = ChatWS::open_ws("/ws", []);
ChatWS::text($s, "hi");
ChatWS::close_frame($s, 1000);
$main::Got = ChatWS::drain($s, 5);
--- response_body
text:hi close:1000 eof
--- no_error_log
tcp_nodelay
[error]
[alert]
[emerg]



=== TEST 25: each frame is written at once: TCP_NODELAY set at the switch (tcp_nodelay on, the default)
--- log_level: debug
--- init
my ($s) = ChatWS::open_ws("/ws", []);
ChatWS::text($s, "hi");
ChatWS::close_frame($s, 1000);
$main::Got = ChatWS::drain($s, 5);
--- response_body
text:hi close:1000 eof
--- error_log
tcp_nodelay
--- no_error_log
[error]
[alert]
[emerg]

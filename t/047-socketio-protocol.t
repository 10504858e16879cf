# Socket.IO by hand, against the Engine.IO v4 and Socket.IO v5
# specifications: long-polling sessions that live through their TTLs and
# end at once, the close packet, duplicate GETs, the upgrade without an
# unasked CONNECT, CONNECT_ERROR on a namespace, undecodable packets, the
# DISCONNECT of a namespace; what the module keeps in Redis (every eio:*
# key with a TTL, sessions not signed in bounded); the sid kept out of
# caches, access logs and other addresses.
#
# Not tested, for it cannot be reached from outside: the polling session
# once set "a" (the client was told it signed in) in one Redis step and
# queued its "authenticated" in the next, sent together on one
# connection; the upgrade's WebSocket could take the queue in between
# only if its 2 s wait for the polling session ran out in that instant
# (the polling session goes only once its running events are answered).
# The two are one script now (ngx_http_chat_sio_push_packet()); TEST 19
# checks the outcome on the paths a client can reach.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatWS;
use HTTP::Tiny;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes ();

our ($Got, $LogConf, $Master, $Workers);

BEGIN {
    ChatChats::init("647");

    # a port of its own with reuseport, for the blocks on two workers:
    # the kernel spreads the connections over both
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                  LocalPort => 0) or die;
    $ENV{TEST_NGINX_SIO_PORT} = $s->sockport;
    close $s;

    # the shipped access log format, as nginx.conf has it
    my $root = $ENV{TEST_NGINX_ROOT} || ".";
    open my $fh, "<", "$root/nginx.conf.d/nginx.conf" or die "nginx.conf: $!";
    my $conf = do { local $/; <$fh> };
    my ($map) = $conf =~ /^(    map \S+ \$chat_log_request \{.*?^    \}\n)/ms;
    my ($fmt) = $conf =~ /^(    log_format chat .*?;\n)/ms;
    $LogConf = ($map // "") . ($fmt // "");
}

$Master = master_process_enabled();
$Workers = workers();

add_block_preprocessor(sub {
    my $block = shift;
    if ($block->name =~ /two workers/) {
        master_on();
        workers(2);
    } else {
        master_process_enabled($Master eq "on");
        workers($Workers);
    }
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /socket.io/ {
        chat_socketio;
        chat_ws_ping_interval 300ms;
        chat_ws_pong_timeout 200ms;
    }
    location = /t { return 200 "t"; }
_EOC_
    if (defined $block->init) {
        $block->set_value("request", "GET /t");
        $block->set_value("response_body_filters", sub { "$main::Got\n" });
    }
});

our $Base;

sub main::base {
    return "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
        . "/socket.io/?EIO=4&transport=polling";
}

sub main::http { HTTP::Tiny->new(timeout => 10) }

# the handshake over polling: the sid
sub main::open_polling {
    my ($local) = @_;
    my $res = main::http()->get(main::base());
    my ($sid) = $res->{content} =~ /^0\{"sid":"([^"]+)"/;
    return $sid;
}

# a GET left waiting on a socket of its own; main::answer reads it
sub main::start_get {
    my ($sid) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Timeout => 5) or die "connect: $!";
    print $s "GET /socket.io/?EIO=4&transport=polling&sid=$sid HTTP/1.1\r\n"
        . "Host: localhost\r\nConnection: close\r\n\r\n";
    return $s;
}

# -> "status:body" of a GET started with main::start_get
sub main::answer {
    my ($s, $timeout) = @_;
    my $resp = "";
    my $sel = IO::Select->new($s);
    my $deadline = Time::HiRes::time() + ($timeout // 5);
    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        last unless $sel->can_read($left);
        my $n = sysread($s, $resp, 65536, length $resp);
        last unless $n;
    }
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($status) = ($head // "") =~ m{^HTTP/1\.1 (\d+)};
    return ($status // "none") . ":" . ($body // "");
}

# the status of a handshake from a local address
sub main::handshake_from {
    my ($from) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  LocalAddr => $from, Timeout => 5)
        or die "connect from $from: $!";
    print $s "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
        . "Host: localhost\r\nConnection: close\r\n\r\n";
    my $line = <$s>;
    return ($line // "") =~ m{^HTTP/1\.1 (\d+)} ? $1 : "none";
}

sub main::get {
    my ($sid, $base) = @_;
    my $res = main::http()->get(($base // main::base()) . "&sid=$sid");
    my $c = $res->{content};
    chomp $c if $res->{status} != 200;
    return "$res->{status}:$c";
}

sub main::post {
    my ($sid, $body, $base) = @_;
    my $res = main::http()->post(($base // main::base()) . "&sid=$sid",
                                 { content => $body });
    my $c = $res->{content};
    chomp $c if $res->{status} != 200;
    return "$res->{status}:$c";
}

# a polling session signed in with $tok: (sid, what it polled)
sub main::polling_signed_in {
    my ($tok) = @_;
    my $sid = main::open_polling();
    main::post($sid, qq(40{"token":"$tok"}));
    my $polled = "";
    for (1 .. 5) {
        $polled .= main::get($sid);
        last if $polled =~ /authenticated/;
    }
    return ($sid, $polled);
}

sub main::redis {
    my $port = $ENV{TEST_NGINX_REDIS_PORT};
    my $out = `redis-cli -p $port @_`;
    chomp $out;
    return $out;
}

# the keys eio:* that have no TTL
sub main::eio_without_ttl {
    my @bad;
    for my $k (split /\n/, main::redis("--scan --pattern 'eio:*'")) {
        my $ttl = main::redis("TTL '$k'");
        push @bad, $k if $ttl == -1;
    }
    return @bad;
}

# a WebSocket of the websocket transport, the open packet read
sub main::ws {
    my ($path) = @_;
    my ($s, $st) = ChatWS::open_ws($path
        // "/socket.io/?EIO=4&transport=websocket");
    my $open = ChatWS::read_frame($s);
    return ($s, $st, $open ? $open->{payload} : "");
}

# frames for $secs seconds (answering pings), till a close
sub main::frames {
    my ($s, $secs, $until) = @_;
    my @seen;
    my $deadline = Time::HiRes::time() + $secs;
    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        my $f = ChatWS::read_frame($s, $left) or last;
        push @seen, $f->{opcode} == 1 ? "text:$f->{payload}"
                                      : ChatWS::describe($f);
        ChatWS::text($s, "3") if $f->{opcode} == 1 && $f->{payload} eq "2";
        last if $f->{opcode} == 8;
        last if $until && $f->{payload} =~ $until;
    }
    return @seen;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a polling session that answers its pings lives through several TTLs (300 ms / 200 ms: 2 s)
--- init
ChatChats::setup();
my $sid = main::open_polling();
my $tok = $ChatChats::Tok{alice}{accessToken};
my @r = (main::post($sid, qq(40{"token":"$tok"})));
my ($pings, $bad, $connected) = (0, "", 0);
my $end = Time::HiRes::time() + 7;
while (Time::HiRes::time() < $end) {
    my $g = main::get($sid);
    if ($g !~ /^200:/) { $bad = $g; last }
    $connected = 1 if $g =~ /(?:^200:|\x1e)40\{"sid"/;
    for my $p (split /\x1e/, substr $g, 4) {
        next unless $p eq "2";
        $pings++;
        my $a = main::post($sid, "3");
        if ($a ne "200:ok") { $bad = "pong $a"; last }
    }
    last if $bad;
}
push @r, $connected ? "connected" : "?", $pings >= 10 ? "pings" : "pings $pings",
    $bad ? "died: $bad" : "alive";
# the session's keys still have their TTLs
my $ttl = main::redis("TTL eio:s:$sid");
push @r, ($ttl > 0 && $ttl <= 2 ? "ttl" : "ttl $ttl");
$main::Got = join " ", @r;
--- timeout: 20
--- response_body
200:ok connected pings alive ttl
--- no_error_log
[error]
[alert]
[emerg]
cannot format



=== TEST 2: no eio:* key is left without a TTL: sessions opened, signed in, sent to, closed, upgraded
--- config
    location /api/ { chat_api; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $tok = $ChatChats::Tok{bob}{accessToken};
my @sids = map { main::open_polling() } 1 .. 4;
# one signed in and sent a message, one closed by the client, one
# upgraded, one left alone
main::post($sids[0], qq(40{"token":"$tok"}));
main::get($sids[0]);
ChatChats::api(alice => POST => "/api/messages", { chatId => $chat,
    tempId => "ttl-" . time, type => "text", content => "queued" });
# what was queued for it comes at once (a GET with nothing waits a ping)
main::get($sids[0]);
main::post($sids[1], "1");
my ($ws) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket&sid=$sids[2]");
ChatWS::text($ws, "2probe");
ChatWS::read_frame($ws, 5);
ChatWS::text($ws, "5");
Time::HiRes::sleep(1.5);
my @bad = main::eio_without_ttl();
my $n = () = split /\n/, main::redis("--scan --pattern 'eio:*'");
$main::Got = ($n > 0 ? "keys" : "no keys") . " without ttl [@bad]";
--- timeout: 20
--- response_body
keys without ttl []



=== TEST 3: a ping timeout ends the session at once: the waiting GET gets its close, every later request 400
--- init
my $sid = main::open_polling();
my @r;
# the first GET brings the ping; it is never answered
my $g = main::get($sid);
push @r, $g;
my $s = main::start_get($sid);
push @r, main::answer($s, 3);
push @r, main::get($sid), main::post($sid, "3");
push @r, main::redis("EXISTS eio:s:$sid eio:q:$sid");
$main::Got = join " | ", @r;
--- response_body
200:2 | 200:1 | 400:{"code":1,"message":"Session ID unknown"} | 400:{"code":1,"message":"Session ID unknown"} | 0



=== TEST 4: an invalid Engine.IO packet (POST abc) ends the session at once
--- init
my $sid = main::open_polling();
my $s = main::start_get($sid);
Time::HiRes::sleep(0.1);
my @r = (main::post($sid, "abc"));
push @r, main::answer($s, 3), main::get($sid);
$main::Got = join " | ", @r;
--- response_body
200:ok | 200:1 | 400:{"code":1,"message":"Session ID unknown"}



=== TEST 5: a close packet over polling: the pending GET gets a noop, the session is closed
--- init
my $sid = main::open_polling();
my $s = main::start_get($sid);
Time::HiRes::sleep(0.1);
my @r = (main::post($sid, "1"));
push @r, main::answer($s, 3), main::get($sid);
$main::Got = join " | ", @r;
--- response_body
200:ok | 200:6 | 400:{"code":1,"message":"Session ID unknown"}



=== TEST 6: a second GET while one waits: 400 for it, the session closed (the waiting one gets its close)
--- config
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
--- init
my $sid = main::open_polling();
my $s = main::start_get($sid);
Time::HiRes::sleep(0.2);
my @r = (main::get($sid));
push @r, main::answer($s, 3), main::get($sid);
$main::Got = join " | ", @r;
--- response_body
400: | 200:1 | 400:{"code":1,"message":"Session ID unknown"}



=== TEST 7: an upgrade with no CONNECT over polling: no CONNECT answer the client did not ask for; a second upgrade of the sid is refused
--- config
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
--- init
my $sid = main::open_polling();
my ($ws, $st) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket&sid=$sid");
ChatWS::text($ws, "2probe");
my @r = ($st);
my $f = ChatWS::read_frame($ws, 5);
push @r, $f ? $f->{payload} : "no pong";
ChatWS::text($ws, "5");
my @seen = main::frames($ws, 1.5);
push @r, "after 5: [@seen]";
# the client's own CONNECT, over the WebSocket, is answered
ChatWS::text($ws, "40");
@seen = main::frames($ws, 3, qr/^4/);
push @r, (grep { /^text:40\{"sid":"[\w-]{24}"\}$/ } @seen) ? "connected" : "?:@seen";
push @r, main::get($sid);
# a second WebSocket for the sid: refused, the session is the first one's
my ($ws2, $st2) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket&sid=$sid");
push @r, "again $st2";
ChatWS::text($ws, "2");
push @r, (grep { $_ eq "text:3" } main::frames($ws, 3, qr/^3$/)) ? "first open" : "first closed";
$main::Got = join " | ", @r;
--- response_body
101 | 3probe | after 5: [] | connected | 400:{"code":1,"message":"Session ID unknown"} | again 400 | first open



=== TEST 8: CONNECT to a namespace we do not have: CONNECT_ERROR on that namespace
--- init
my ($ws, $st, $open) = main::ws();
my @r;
for my $p ("40/random,", "40/random", qq(40/admin,{"token":"x"})) {
    ChatWS::text($ws, $p);
    my $f = ChatWS::read_frame($ws, 3);
    push @r, $f ? $f->{payload} : "nothing";
}
$main::Got = join " | ", @r;
--- response_body
44/random,{"message":"Invalid namespace"} | 44/random,{"message":"Invalid namespace"} | 44/admin,{"message":"Invalid namespace"}



=== TEST 9: Socket.IO packets that cannot be decoded close the connection; a wrong payload for our events is an error event
--- init
ChatChats::setup();
my $tok = $ChatChats::Tok{alice}{accessToken};
my @r;
for my $p ("4abc", "42{}", q(42abc["x"]), "42[]", q(42["connect"]), "40[1]",
           "41x", "43[") {
    my ($ws) = main::ws();
    ChatWS::text($ws, qq(40{"token":"$tok"}));
    main::frames($ws, 5, qr/authenticated/);
    ChatWS::text($ws, $p);
    my @seen = main::frames($ws, 3);
    push @r, "$p:" . (join(",", grep { /close/ } @seen) || "open");
}
# a payload the router refuses: an error event, the socket goes on
my ($ws) = main::ws();
ChatWS::text($ws, qq(40{"token":"$tok"}));
main::frames($ws, 5, qr/authenticated/);
ChatWS::text($ws, q(42["send_message","not an object"]));
my @seen = main::frames($ws, 3, qr/^42\["error"/);
push @r, (grep { /^text:42\["error"/ } @seen) ? "error event" : "?:@seen";
ChatWS::text($ws, "2");
push @r, (grep { $_ eq "text:3" } main::frames($ws, 3, qr/^3$/)) ? "open" : "closed";
$main::Got = join " ", @r;
--- timeout: 40
--- response_body
4abc:close:1000 42{}:close:1000 42abc["x"]:close:1000 42[]:close:1000 42["connect"]:close:1000 40[1]:close:1000 41x:close:1000 43[:close:1000 error event open



=== TEST 10: an invalid Socket.IO packet over polling closes the session
--- init
my $sid = main::open_polling();
my $s = main::start_get($sid);
Time::HiRes::sleep(0.1);
my @r = (main::post($sid, "42{}"));
push @r, main::answer($s, 3), main::get($sid);
$main::Got = join " | ", @r;
--- response_body
200:ok | 200:1 | 400:{"code":1,"message":"Session ID unknown"}



=== TEST 11: DISCONNECT of the namespace: the Engine.IO connection stays with its heartbeat, nothing is delivered, a CONNECT again gets a new socket id
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $tok = $ChatChats::Tok{bob}{accessToken};
my ($ws) = main::ws();
ChatWS::text($ws, qq(40{"token":"$tok"}));
my ($first) = grep { /^text:40/ } main::frames($ws, 5, qr/^40/);
main::frames($ws, 3, qr/authenticated/);
ChatWS::text($ws, "41");
my @seen = main::frames($ws, 1.2);
my @r = ((grep { $_ eq "text:2" } @seen) ? "pinged" : "?:@seen",
         (grep { /close/ } @seen) ? "closed" : "open");
ChatChats::api(alice => POST => "/api/messages", { chatId => $chat,
    tempId => "left-" . time, type => "text", content => "unheard" });
@seen = main::frames($ws, 1);
push @r, (grep { /new_message/ } @seen) ? "delivered" : "not delivered";
ChatWS::text($ws, qq(40{"token":"$tok"}));
my ($again) = grep { /^text:40/ } main::frames($ws, 3, qr/^40/);
push @r, ($again && $first && $again ne $first ? "new id" : "?:$first/$again");
ChatChats::api(alice => POST => "/api/messages", { chatId => $chat,
    tempId => "back-" . time, type => "text", content => "heard" });
@seen = main::frames($ws, 3, qr/"heard"/);
push @r, (grep { /"heard"/ } @seen) ? "delivered" : "?:@seen";
$main::Got = join " | ", @r;
--- timeout: 20
--- response_body
pinged | open | not delivered | new id | delivered



=== TEST 12: polling answers are never cached nor sniffed
--- init
my $res = main::http()->get(main::base());
my ($sid) = $res->{content} =~ /^0\{"sid":"([^"]+)"/;
my @r;
for my $x ($res, main::http()->post(main::base() . "&sid=$sid", { content => "40" }),
           main::http()->get(main::base() . "&sid=$sid")) {
    push @r, "$x->{status} " . ($x->{headers}{"cache-control"} // "-") . " "
        . ($x->{headers}{"x-content-type-options"} // "-");
}
$main::Got = join " | ", @r;
--- response_body
200 no-store nosniff | 200 no-store nosniff | 200 no-store nosniff



=== TEST 13: the upgrade takes the sid only from the address that opened it
--- init
my $sid = main::open_polling();
my @r;
for my $from ("127.0.0.2", "127.0.0.1") {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  LocalAddr => $from, Timeout => 5)
        or die "connect from $from: $!";
    print $s "GET /socket.io/?EIO=4&transport=websocket&sid=$sid HTTP/1.1\r\n"
        . "Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        . "Sec-WebSocket-Version: 13\r\n\r\n";
    my $line = <$s>;
    push @r, "$from " . (($line // "") =~ m{^HTTP/1\.1 (\d+)} ? $1 : "none");
}
$main::Got = join " | ", @r;
--- response_body
127.0.0.2 400 | 127.0.0.1 101



=== TEST 14: ... unless configured otherwise
--- config
    location /socket.io/ {
        chat_socketio;
        chat_socketio_upgrade_from_any_address on;
    }
    location = /t { return 200 "t"; }
--- init
my $sid = main::open_polling();
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                              PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                              LocalAddr => "127.0.0.2", Timeout => 5)
    or die "connect: $!";
print $s "GET /socket.io/?EIO=4&transport=websocket&sid=$sid HTTP/1.1\r\n"
    . "Host: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    . "Sec-WebSocket-Version: 13\r\n\r\n";
my $line = <$s>;
$main::Got = ($line // "") =~ m{^HTTP/1\.1 (\d+)} ? $1 : "none";
--- response_body
101



=== TEST 15: sessions not signed in are bounded per address; signing in frees a place
--- config
    location /api/ { chat_api; }
    location /socket.io/ {
        chat_socketio;
        chat_socketio_max_unauthenticated_per_address 3;
    }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup();
main::redis("DEL eio:u eio:u:127.0.0.1 eio:u:127.0.0.2 >/dev/null");
my @sids = map { main::open_polling() } 1 .. 3;
my $res = main::http()->get(main::base());
chomp(my $c = $res->{content});
my @r = ("$res->{status}:$c");
# another address has its own count
push @r, "other " . main::handshake_from("127.0.0.2");
my $tok = $ChatChats::Tok{alice}{accessToken};
main::post($sids[0], qq(40{"token":"$tok"}));
my $polled = "";
for (1 .. 5) {
    $polled .= main::get($sids[0]);
    last if $polled =~ /authenticated/;
}
$res = main::http()->get(main::base());
push @r, $res->{status};
$main::Got = join " | ", @r;
--- response_body
403:{"code":4,"message":"Forbidden"} | other 200 | 200



=== TEST 16: sessions not signed in are bounded in all
--- config
    location /socket.io/ {
        chat_socketio;
        chat_socketio_max_unauthenticated 2;
    }
    location = /t { return 200 "t"; }
--- init
main::redis("DEL eio:u eio:u:127.0.0.1 eio:u:127.0.0.2 >/dev/null");
my @r = map { main::http()->get(main::base())->{status} } 1 .. 3;
push @r, main::handshake_from("127.0.0.2");
$main::Got = join " ", @r;
--- response_body
200 200 403 403



=== TEST 17: the shipped access log format keeps the sid and the token out
--- http_config eval
ChatTest::chat_http_config() . $main::LogConf
. "    access_log logs/chat.log chat;\n"
--- config
    location = /ws { chat_ws; }
    # the first GET waits for a ping: a short one
    location /socket.io/ { chat_socketio; chat_ws_ping_interval 500ms; }
    location = /t { return 200 "t"; }
--- init
my $sid = main::open_polling();
main::get($sid);
main::http()->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/ws?token=secret.jwt.value");
main::http()->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/t?kept=1");
# a request is logged after its answer went out: the last one may be late
my $log = "";
for (1 .. 40) {
    open my $fh, "<", "$ENV{TEST_NGINX_SERVROOT}/logs/chat.log"
        or die "log: $!";
    $log = do { local $/; <$fh> };
    last if $log =~ m{/t\?kept=1};
    Time::HiRes::sleep(0.05);
}
my @r = ($main::LogConf =~ /chat_log_request/ ? "format" : "no format");
push @r, $log =~ /\Q$sid\E/ ? "sid logged" : "no sid";
push @r, $log =~ /secret\.jwt/ ? "token logged" : "no token";
push @r, $log =~ m{"GET /socket\.io/ HTTP/1\.1"} ? "path" : "?";
push @r, $log =~ m{/t\?kept=1} ? "other queries kept" : "?";
$main::Got = join " ", @r;
--- response_body
format no sid no token path other queries kept



=== TEST 18: the token a polling session signed in with is kept sealed in Redis, and the upgrade still signs in with it
--- init
ChatChats::setup();
my $tok = $ChatChats::Tok{alice}{accessToken};
my ($sid, $polled) = main::polling_signed_in($tok);
my $kept = main::redis("HGET eio:s:$sid t");
my @r = ($polled =~ /authenticated/ ? "signed in" : "?:$polled");
push @r, length($kept) > 100 ? "kept" : "not kept",
    (index($kept, $tok) < 0 && $kept !~ /^eyJ/ && $kept !~ /\./)
        ? "sealed" : "raw";
# the upgrade: the WebSocket signs in again with what Redis kept
my ($ws, $st) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket&sid=$sid");
ChatWS::text($ws, "2probe");
my $f = ChatWS::read_frame($ws, 5);
push @r, $f ? $f->{payload} : "no pong";
ChatWS::text($ws, "5");
ChatWS::text($ws, '42["join_chat",{"chatId":"0123456789abcdef01234567"}]');
my $seen = "";
while (my $g = ChatWS::read_frame($ws, 3)) {
    $seen .= $g->{payload} . "\n";
    last if $g->{payload} =~ /error/;
}
# an error about the chat (404), not about signing in
push @r, $seen =~ /not_found|404/ ? "ws signed in" : "?:$seen";
$main::Got = join " | ", @r;
--- response_body
signed in | kept | sealed | 3probe | ws signed in



=== TEST 19: the seed's authenticate event posted over polling while the upgrade's "5" is on its way: "authenticated" once across both transports, and the WebSocket signed in
--- config
    location /api/ { chat_api; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup();
my $tok = $ChatChats::Tok{alice}{accessToken};
my %n;
for my $i (0 .. 7) {
    my $sid = main::open_polling();
    main::post($sid, "40");
    my $polled = "";
    for (1 .. 5) {
        $polled .= main::get($sid) . "\x1e";
        last if $polled =~ /40\{"sid"/;
    }
    # the upgrade reads the session before the token is there
    my ($ws) = ChatWS::open_ws(
        "/socket.io/?EIO=4&transport=websocket&sid=$sid");
    ChatWS::text($ws, "2probe");
    my $p = ChatWS::read_frame($ws, 5);
    # the event reaches the polling session; "5" follows at once, or a
    # few milliseconds later: the event is still running or just done
    main::post($sid, qq(42["authenticate",{"token":"$tok"}]));
    Time::HiRes::sleep(0.002 * ($i % 4));
    ChatWS::text($ws, "5");
    my @seen = main::frames($ws, 1.5);
    ChatWS::text($ws, '42["join_chat",{"chatId":"0123456789abcdef01234567"}]');
    my @err = main::frames($ws, 3, qr/error/);
    my $told = grep { /^text:42\["authenticated"/ } @seen, @err;
    $told += () = $polled =~ /42\["authenticated"/g;
    my $r = "authenticated x$told";
    $r .= (grep { /not_found|404/ } @err) ? ", signed in"
                                         : ", not signed in: @err";
    $n{$r}++;
    close $ws;
}
$main::Got = join " | ", map { "$_: $n{$_}" } sort keys %n;
--- response_body
authenticated x1, signed in: 8
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 20: two workers: a handshake answers once its worker hears the session's input channel; a CONNECT posted at once signs in (x50)
--- config
    listen 127.0.0.1:$TEST_NGINX_SIO_PORT reuseport;
    location /api/ { chat_api; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup();
my $tok = $ChatChats::Tok{alice}{accessToken};
my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SIO_PORT}"
    . "/socket.io/?EIO=4&transport=polling";
# what the session's worker hears: a PUBLISH on its input channel the
# moment the handshake is answered, as a POST on any worker would do
my $redis = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_REDIS_PORT})
    or die "redis: $!";
my %n;
for my $i (1 .. 50) {
    # a connection of its own each time: the kernel picks the worker
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SIO_PORT})
        or die "connect: $!";
    print $s "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n"
        . "Host: localhost\r\nConnection: close\r\n\r\n";
    my $resp = do { local $/; <$s> };
    close $s;
    my ($sid) = $resp =~ /\r\n\r\n0\{"sid":"([^"]+)"/;
    if (!$sid) {
        $n{"handshake: " . (split /\r\n/, $resp)[0]}++;
        next;
    }
    # "6" is a noop: the session ignores it
    my $ch = "eioi:$sid";
    print $redis "*3\r\n\$7\r\nPUBLISH\r\n\$" . length($ch) . "\r\n$ch\r\n"
        . "\$1\r\n6\r\n";
    my $heard = <$redis>;
    $n{"heard at once"}++ if $heard =~ /^:1\r/;
    my $posted = main::post($sid, qq(40{"token":"$tok"}), $base);
    $n{"POST $posted"}++;
    my $polled = main::get($sid, $base);
    $n{"first poll 40"}++ if $polled =~ /^200:40\{"sid"/;
    main::post($sid, "1", $base);
}
$main::Got = join " | ", map { "$_: $n{$_}" } sort keys %n;
--- timeout: 90
--- response_body
POST 200:ok: 50 | first poll 40: 50 | heard at once: 50



=== TEST 21: a handshake whose worker cannot subscribe to the session's input channel answers 503 within its 2 s bound, and the session is gone at once
--- init
my @r;
# what earlier blocks left (their NGINX killed): not this one's
my %before = map { $_ => 1 }
    split(/\n/, main::redis("--scan --pattern 'eio:s:*'")),
    split(/\n/, main::redis("ZRANGE eio:u 0 -1"));
# Redis refuses SUBSCRIBE (and nothing else) for a while: the worker's
# subscriber connection is lost, and comes back with its backoff
main::redis("ACL SETUSER default -subscribe");
my $t0 = Time::HiRes::time();
my $res = main::http()->get(main::base());
my $took = Time::HiRes::time() - $t0;
main::redis("ACL SETUSER default +subscribe");
push @r, "$res->{status} " . ($res->{content} =~ /service_unavailable/
                              ? "service_unavailable" : $res->{content});
push @r, $took >= 1.5 && $took < 5 ? "bounded" : "took $took s";
Time::HiRes::sleep(0.2);
my @left = grep { !$before{$_} }
    split /\n/, main::redis("--scan --pattern 'eio:s:*'");
push @r, "sessions left: " . scalar(@left);
my @counted = grep { !$before{$_} }
    split /\n/, main::redis("ZRANGE eio:u 0 -1");
push @r, "not signed in: " . scalar(@counted);
# SUBSCRIBE allowed again: once the subscriber connection is back (its
# backoff), a handshake is answered, its barrier subscribed again last
my $sid;
for (1 .. 20) {
    $sid = main::open_polling() and last;
    Time::HiRes::sleep(0.5);
}
push @r, $sid ? "open again" : "no sid";
push @r, main::post($sid, "1");
$main::Got = join " | ", @r;
--- timeout: 40
--- response_body
503 service_unavailable | bounded | sessions left: 0 | not signed in: 0 | open again | 200:ok
--- error_log
handshake answered 503
NOPERM
--- no_error_log
[alert]
[emerg]



=== TEST 22: an upgrade whose request carries a token (io(url, {query: {token}})) gets its 101 at once, not held for a sign-in that Socket.IO does not make there: 2probe answered
--- init
ChatChats::setup();
my $tok = $ChatChats::Tok{alice}{accessToken};
my ($sid, $polled) = main::polling_signed_in($tok);
my @r = ($polled =~ /authenticated/ ? "signed in" : "?:$polled");
my $t0 = Time::HiRes::time();
my ($ws, $st) = ChatWS::open_ws(
    "/socket.io/?EIO=4&transport=websocket&sid=$sid&token=$tok");
my $took = Time::HiRes::time() - $t0;
push @r, $st . ($took < 0.5 ? " at once" : sprintf(" after %.2fs", $took));
ChatWS::text($ws, "2probe");
my $f = ChatWS::read_frame($ws, 5);
push @r, $f ? $f->{payload} : "no pong";
$main::Got = join " | ", @r;
--- response_body
signed in | 101 at once | 3probe
--- no_error_log
[error]
[alert]
[emerg]

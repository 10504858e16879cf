# Socket.IO: the unmodified socket.io-client v4 (npm) against
# chat_socketio, with the websocket transport and with its default
# (long-polling, then the upgrade); the auth payload and the seed's
# authenticate event, a wrong token, acks both ways, typing, receipts,
# resync; Engine.IO's errors as the reference server gives them.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatSIO;

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    ChatChats::init("644");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
_EOC_
    if (defined $block->init) {
        $block->set_value("request", "GET /t");
        $block->set_value("response_body_filters", sub { "$main::Got\n" });
    }
});

sub main::sio { ChatSIO::run(@_) }

sub main::chat_of {
    my ($a, $b) = @_;
    return ChatChats::api($a => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{$b} })->{chat}{id};
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: websocket transport: the auth payload connects and authenticates
--- init
ChatChats::setup();
$main::Got = main::sio("connect", transports => ["websocket"]);
--- response_body
id=true transport=websocket user=true



=== TEST 2: websocket transport: a wrong token is a connect_error
--- init
ChatChats::setup();
$main::Got = main::sio("badToken", transports => ["websocket"]);
--- response_body
error=malformed token



=== TEST 3: websocket transport: the seed's authenticate event
--- init
ChatChats::setup();
$main::Got = main::sio("seedAuth", transports => ["websocket"]);
--- response_body
user=true



=== TEST 4: websocket transport: send with an ack, receive, typing, read, an error ack
--- init
ChatChats::setup();
$main::Got = main::sio("chat", transports => ["websocket"],
                       chat => main::chat_of("alice", "bob"));
--- response_body
ack=text/over socket.io badAck=invalid_request:400 read=true received=text/over socket.io:tempId sameSeq=true typing=true



=== TEST 5: websocket transport: reconnect and resync
--- init
ChatChats::setup();
$main::Got = main::sio("resync", transports => ["websocket"],
                       chat => main::chat_of("alice", "bob"));
--- response_body
missed=missed1,missed2,missed3



=== TEST 6: websocket transport: 30 messages with acks, all delivered in order
--- init
ChatChats::setup();
$main::Got = main::sio("burst", transports => ["websocket"],
                       chat => main::chat_of("alice", "bob"));
--- response_body
count=30 inOrder=true



=== TEST 7: default options (polling, then the upgrade): connect and authenticate
--- init
ChatChats::setup();
$main::Got = main::sio("connect");
--- response_body
id=true transport=websocket user=true



=== TEST 8: default options: a wrong token is a connect_error
--- init
ChatChats::setup();
$main::Got = main::sio("badToken");
--- response_body
error=malformed token



=== TEST 9: default options: the seed's authenticate event
--- init
ChatChats::setup();
$main::Got = main::sio("seedAuth");
--- response_body
user=true



=== TEST 10: default options: send, acks, typing, read, an error ack
--- init
ChatChats::setup();
$main::Got = main::sio("chat", chat => main::chat_of("alice", "bob"));
--- response_body
ack=text/over socket.io badAck=invalid_request:400 read=true received=text/over socket.io:tempId sameSeq=true typing=true



=== TEST 11: default options: reconnect and resync; a burst in order
--- init
ChatChats::setup();
my $chat = main::chat_of("alice", "bob");
$main::Got = main::sio("resync", chat => $chat) . " "
             . main::sio("burst", chat => $chat);
--- response_body
missed=missed1,missed2,missed3 count=30 inOrder=true



=== TEST 12: a binary attachment is refused cleanly, the socket goes on
--- init
ChatChats::setup();
$main::Got = main::sio("binary", chat => main::chat_of("alice", "bob"));
--- response_body
after=still here error=binary_unsupported



=== TEST 15: Engine.IO errors: a protocol version, a transport, a session
--- request eval
["GET /socket.io/?EIO=3&transport=polling",
 "GET /socket.io/?EIO=4&transport=carrier-pigeon",
 "GET /socket.io/?EIO=4&transport=websocket&sid=nosuchsession"]
--- response_body eval
["{\"code\":5,\"message\":\"Unsupported protocol version\"}\n",
 "{\"code\":0,\"message\":\"Transport unknown\"}\n",
 "{\"code\":1,\"message\":\"Session ID unknown\"}\n"]
--- error_code eval
[400, 400, 400]



=== TEST 13: polling by hand: the handshake, a CONNECT posted, its answer polled; bad posts
--- init
use HTTP::Tiny;
my @r;
my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/socket.io/?EIO=4&transport=polling";
my $http = HTTP::Tiny->new(timeout => 10);
my $res = $http->get($base);
my ($sid) = $res->{content} =~ /^0\{"sid":"([^"]+)"/;
push @r, $res->{status}, ($res->{content} =~ /"upgrades":\["websocket"\]/ ? "upgrades" : "?"),
    $res->{headers}{"content-type"};
$res = $http->post("$base&sid=$sid", { content => "40" });
push @r, "$res->{status}:$res->{content}";
$res = $http->get("$base&sid=$sid");
push @r, ($res->{content} =~ /^40\{"sid":"[\w-]{24}"\}$/ ? "connected" : "?:$res->{content}");
$res = $http->post("$base&sid=$sid", { content => "4" . ("x" x 70000) });
push @r, "big:$res->{status}:" . length($res->{content});
$res = $http->post("$base&sid=AAAAAAAAAAAAAAAAAAAAAAAA", { content => "40" });
chomp $res->{content};
push @r, "$res->{status}:$res->{content}";
$res = $http->post($base, { content => "40" });
chomp $res->{content};
push @r, "$res->{status}:$res->{content}";
$main::Got = join " ", @r;
--- response_body
200 upgrades text/plain; charset=UTF-8 200:ok connected big:413:0 400:{"code":1,"message":"Session ID unknown"} 400:{"code":2,"message":"Bad handshake method"}




=== TEST 14: the websocket transport: a message over maxPayload is closed with 1009
--- init
use ChatWS;
my ($s, $st) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
my $open = ChatWS::read_frame($s);
ChatWS::text($s, "4" . ("x" x 70000));
my @seen;
while (my $f = ChatWS::read_frame($s, 3)) {
    push @seen, ChatWS::describe($f);
    last if $f->{opcode} == 8;
}
$main::Got = "$st " . ($open->{payload} =~ /^0\{"sid"/ ? "open" : "?") . " " . join(",", @seen);
--- response_body
101 open close:1009



=== TEST 16: a poller that stops polling owes at most 1,000 packets, then gets a close
--- init
use HTTP::Tiny;
my @r;
my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/socket.io/?EIO=4&transport=polling";
my $http = HTTP::Tiny->new(timeout => 10);
my ($sid) = $http->get($base)->{content} =~ /^0\{"sid":"([^"]+)"/;
# 1,000 packets it never fetched
my $port = $ENV{TEST_NGINX_REDIS_PORT};
system("redis-cli -p $port RPUSH eio:q:$sid " . join(" ", ("6") x 1000)
       . " >/dev/null") == 0 or die "redis-cli";
# one more (the answer to its ping) and the list gives way to a close
my $res = $http->post("$base&sid=$sid", { content => "2" });
push @r, "$res->{status}:$res->{content}";
Time::HiRes::sleep(0.3);
$res = $http->get("$base&sid=$sid");
push @r, $res->{content};
$main::Got = join " ", @r;
--- response_body
200:ok 1



=== TEST 17: an upgrade begun before the CONNECT: events sent right after "5" wait for the handover, none is refused
--- init
use HTTP::Tiny;
use ChatWS;
use JSON::PP;
ChatChats::setup();
my $chat = main::chat_of(alice => "bob");
my @r;
my $u = ChatSIO::upgrade_before_connect($ChatChats::Tok{alice}{accessToken},
                                        qr/authenticated/);
my ($ws, $polled) = @$u{qw(ws polled)};
push @r, $u->{status}, $u->{posted};
# the CONNECT answered and "authenticated" told over polling
push @r, ($polled =~ /(?:^|\x1e)40\{"sid"/ ? "connected" : "?:$polled"),
    ($polled =~ /42\["authenticated"/ ? "authenticated" : "?");
ChatWS::text($ws, "2probe");
my $f = ChatWS::read_frame($ws, 5);
push @r, $f ? $f->{payload} : "no pong";
# "5" and three events at once, as socket.io-client flushes its buffer
my @ev = map {
    "42$_" . encode_json(["send_message", { chatId => $chat,
        tempId => "early-$_-" . time, type => "text", content => "early $_" }])
} 1 .. 3;
ChatWS::send_raw($ws, join "", map { ChatWS::frame(opcode => 1, payload => $_) }
                 "5", @ev);
my %ack;
while (keys %ack < 3 and my $g = ChatWS::read_frame($ws, 5)) {
    next unless $g->{payload} =~ /^43(\d)(.*)$/;
    my $a = decode_json($2)->[0];
    $ack{$1} = $a->{message} ? "$a->{message}{content}{text}#$a->{message}{seq}"
                             : encode_json($a);
}
my @seq = map { (split /#/, $ack{$_} // "")[1] // 0 } 1 .. 3;
push @r, join(",", map { (split /#/, $ack{$_} // "none")[0] } 1 .. 3),
    ($seq[0] < $seq[1] && $seq[1] < $seq[2] ? "in order" : "seqs @seq");
$main::Got = join " | ", @r;
--- response_body
101 | ok | connected | authenticated | 3probe | early 1,early 2,early 3 | in order



=== TEST 18: an upgrade begun before the CONNECT: what is sent to the user while the transports change reaches them once, in order
--- init
use HTTP::Tiny;
use ChatWS;
use JSON::PP;
ChatChats::setup();
my $chat = main::chat_of(alice => "bob");
my @r;
my $u = ChatSIO::upgrade_before_connect($ChatChats::Tok{bob}{accessToken},
                                        qr/authenticated/);
my ($ws, $polled) = @$u{qw(ws polled)};
push @r, ($polled =~ /42\["authenticated"/ ? "authenticated" : "?:$polled");
ChatWS::text($ws, "2probe");
my $f = ChatWS::read_frame($ws, 5);
push @r, $f ? $f->{payload} : "no pong";
# the polling session still listens while the WebSocket signs in: four
# senders keep messages coming throughout
ChatWS::text($ws, "5");
my @pids;
for my $p (1 .. 4) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $bad = 0;
        for my $i (1 .. 10) {
            my ($s) = ChatChats::call(alice => POST => "/api/messages",
                { chatId => $chat, tempId => "up-$p-$i-" . time, type => "text",
                  content => "$p.$i" });
            $bad++ unless $s == 201;
        }
        POSIX::_exit($bad);
    }
    push @pids, $pid;
}
my $failed = 0;
for (@pids) { waitpid($_, 0); $failed += $? >> 8 }
my (@got, %n);
while (@got < 40 and my $g = ChatWS::read_frame($ws, 5)) {
    push @got, decode_json($1)->[1]{message}{content}{text}
        if $g->{payload} =~ /^42(\["new_message".*)$/s;
}
# nothing more, no repeat
while (my $g = ChatWS::read_frame($ws, 1)) {
    push @got, decode_json($1)->[1]{message}{content}{text}
        if $g->{payload} =~ /^42(\["new_message".*)$/s;
}
$n{$_}++ for @got;
my @missing = grep { !$n{$_} } map { my $p = $_; map { "$p.$_" } 1 .. 10 } 1 .. 4;
my @twice = grep { $n{$_} > 1 } sort keys %n;
# each sender's own messages in the order sent
my $ordered = 1;
for my $p (1 .. 4) {
    my @mine = map { (split /\./)[1] } grep { /^$p\./ } @got;
    $ordered = 0 unless join(",", @mine) eq join(",", sort { $a <=> $b } @mine);
}
push @r, "failed sends $failed", "received " . scalar(@got),
    "missing [@missing]", "twice [@twice]", $ordered ? "in order" : "out of order: @got";
$main::Got = join " | ", @r;
--- timeout: 30
--- response_body
authenticated | 3probe | failed sends 0 | received 40 | missing [] | twice [] | in order



=== TEST 19: an upgrade begun before a CONNECT that was refused: the upgrade goes on, and the client connects again over it
--- init
use HTTP::Tiny;
use ChatWS;
use JSON::PP;
ChatChats::setup();
my @r;
my $u = ChatSIO::upgrade_before_connect("not.a.token", qr/(?:^|\x1e)44/);
my ($ws, $polled) = @$u{qw(ws polled)};
push @r, ($polled =~ /(?:^|\x1e)44\{"message":"[^"]+"\}/ ? "connect_error" : "?:$polled");
ChatWS::text($ws, "2probe");
my $f = ChatWS::read_frame($ws, 5);
push @r, $f ? $f->{payload} : "no pong";
ChatWS::text($ws, "5");
my $token = $ChatChats::Tok{alice}{accessToken};
ChatWS::text($ws, qq(40{"token":"$token"}));
my @seen;
while (my $g = ChatWS::read_frame($ws, 3)) {
    push @seen, ChatWS::describe($g);
    last if $g->{opcode} == 8 || $g->{payload} =~ /^40/;
}
push @r, (grep { /^text:40\{"sid":"[\w-]{24}"\}$/ } @seen) ? "connected" : "?:@seen";
ChatWS::text($ws, q(420["send_message",{}]));
my $ack = "";
while (my $g = ChatWS::read_frame($ws, 3)) {
    if ($g->{payload} =~ /^430(.*)$/s) { $ack = $1; last }
}
push @r, ($ack =~ /"code":"invalid_request"/ ? "events run" : "?:$ack");
$main::Got = join " | ", @r;
--- response_body
connect_error | 3probe | connected | events run



=== TEST 20: polling only, short heartbeat (300 ms / 800 ms, keys for 3 s): a client stays on its session through many TTLs, receiving throughout
--- config
    location /api/ { chat_api; }
    location /socket.io/ {
        chat_socketio;
        chat_ws_ping_interval 300ms;
        chat_ws_pong_timeout 800ms;
    }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup();
$main::Got = main::sio("longPoll", transports => ["polling"],
                       chat => main::chat_of("alice", "bob"),
                       duration => 12000, every => 500);
--- timeout: 40
--- response_body
allReceived=true disconnects=0 sameSession=true transport=polling
--- no_error_log
[error]
[alert]
[emerg]
cannot format



=== TEST 21: polling only, Engine.IO's ping every 1 s and 1 s to answer (a session's TTL 4 s): a client stays connected for 20 s (five TTLs), receiving throughout
--- skip_eval: 1: !$ENV{TEST_NGINX_LOAD_MODULES} || $ENV{TEST_NGINX_USE_HUP} || $ENV{TEST_NGINX_USE_VALGRIND}
--- config
    location /api/ { chat_api; }
    location /socket.io/ {
        chat_socketio;
        chat_ws_ping_interval 1s;
        chat_ws_pong_timeout 1s;
    }
    location = /t { return 200 "t"; }
--- init
# Test::Nginx runs a skipped block's init all the same (before NGINX)
return if !$ENV{TEST_NGINX_LOAD_MODULES} || $ENV{TEST_NGINX_USE_HUP}
          || $ENV{TEST_NGINX_USE_VALGRIND};
ChatChats::setup();
$main::Got = main::sio("longPoll", transports => ["polling"],
                       chat => main::chat_of("alice", "bob"),
                       duration => 20000, every => 2000);
--- timeout: 60
--- response_body
allReceived=true disconnects=0 sameSession=true transport=polling
--- no_error_log
[error]
[alert]
[emerg]
cannot format



=== TEST 22: polling only, default settings: a client stays connected for 3 minutes (more than two TTLs), receiving throughout (a soak: only with CHAT_SOAK=1, the plain pass)
--- skip_eval: 1: !$ENV{CHAT_SOAK} || !$ENV{TEST_NGINX_LOAD_MODULES} || $ENV{TEST_NGINX_USE_HUP} || $ENV{TEST_NGINX_USE_VALGRIND}
--- init
# Test::Nginx runs a skipped block's init all the same (before NGINX)
return if !$ENV{CHAT_SOAK} || !$ENV{TEST_NGINX_LOAD_MODULES}
          || $ENV{TEST_NGINX_USE_HUP} || $ENV{TEST_NGINX_USE_VALGRIND};
ChatChats::setup();
$main::Got = main::sio("longPoll", transports => ["polling"],
                       chat => main::chat_of("alice", "bob"),
                       duration => 180000, every => 10000);
--- timeout: 240
--- response_body
allReceived=true disconnects=0 sameSession=true transport=polling
--- no_error_log
[error]
[alert]
[emerg]
cannot format

# Access on live sockets: every revocation (a reused refresh token,
# logout, a device removed) closes the session's plain WebSocket and
# Socket.IO sockets; a socket's access token ends (token_expired, then
# close 4001) unless the client authenticates again; after the
# subscriber connection to Redis comes back, every socket is told to
# resync and what it missed (a revocation, a removal) is caught.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatJWT;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_LINGER);
use HTTP::Tiny;
use MIME::Base64 qw(decode_base64url);
use JSON::PP ();
use Time::HiRes ();

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    ChatChats::init("645", "chat_otp_resend_delay 1s; chat_jwt_leeway 1s;");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
});

my $JSON = JSON::PP->new->canonical;

# a user of this file's own, signed in (a number per name)
sub main::user {
    my ($name, $n) = @_;
    my $phone = sprintf("+1628645%04d", ($$ % 10000 + $n) % 10000);
    $ChatChats::Tok{$name} = ChatAuth::sign_in($ChatChats::Twilio, $phone,
                                               $name);
    $ChatChats::Id{$name} = $ChatChats::Tok{$name}{user}{id};
    return $ChatChats::Tok{$name};
}

sub main::claims {
    my ($token) = @_;
    return JSON::PP::decode_json(decode_base64url((split /\./, $token)[1]));
}

# the same token with another exp, signed with the test key
sub main::forge {
    my ($token, $exp) = @_;
    my $c = main::claims($token);
    $c->{exp} = $exp + 0;
    $c->{iat} = time() + 0;
    return ChatJWT::hs256("test-secret-0123456789abcdef0123456789",
                          undef, $c);
}

sub main::post {
    my ($path, $data) = @_;
    my $r = HTTP::Tiny->new->post(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'Content-Type' => 'application/json' },
          content => $JSON->encode($data) });
    my $body = eval { JSON::PP::decode_json($r->{content}) } // {};
    return ($r->{status}, $body);
}

sub main::private_chat {
    my ($a, $b) = @_;
    return ChatChats::api($a => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{$b} })->{chat}{id};
}

# a Socket.IO socket over the websocket transport, by hand, signed in
sub main::sio_open {
    my ($token) = @_;
    my ($s, $status) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
    die "socket.io: $status" unless $status == 101;
    ChatWS::read_frame($s, 3);              # the Engine.IO open packet
    ChatWS::text($s, qq(40{"token":"$token"}));
    while (my $f = ChatWS::read_frame($s, 3)) {
        return $s if $f->{payload} =~ /^42\["authenticated"/;
    }
    die "socket.io: not authenticated";
}

# what a Socket.IO socket gets: "42:name", "41", "close:code" (no pings)
sub main::sio_until_close {
    my ($s, $timeout) = @_;
    my @seen;
    while (my $f = ChatWS::read_frame($s, $timeout)) {
        if ($f->{opcode} == 8) {
            push @seen, "close:" . unpack("n", $f->{payload});
            last;
        }
        next if $f->{payload} eq "2";
        push @seen, $f->{payload} =~ /^42\["([a-z_]+)"/ ? "42:$1"
                                                          : $f->{payload};
    }
    return join ",", @seen;
}

# a plain socket's events up to its close: "name", "close:code"
sub main::until_close {
    my ($s, $timeout) = @_;
    my @seen;
    while (my $e = ChatRT::next_event($s, $timeout)) {
        push @seen, $e->{event} . ($e->{code} ? ":$e->{code}" : "");
        last if $e->{event} eq "close";
    }
    return join ",", @seen;
}

# what the revoked sockets may still try: nothing of it is stored
sub main::try_after {
    my ($ws, $sio, $chat, $tag) = @_;
    ChatRT::send_event($ws, "send_message",
        { chatId => $chat, tempId => "$tag-ws", type => "text",
          content => "$tag after (ws)" }, 90);
    ChatWS::text($sio, '4291["send_message",' . $JSON->encode(
        { chatId => $chat, tempId => "$tag-sio", type => "text",
          content => "$tag after (sio)" }) . ']');
}

sub main::stored {
    my ($who, $chat) = @_;
    my $items = ChatChats::api($who => GET =>
                               "/api/chats/$chat/messages?limit=100")->{items};
    return join ",", sort map { $_->{content}{text} } @$items;
}

sub main::redis {
    my @args = @_;
    my $r = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}")
        or die "redis: $!";
    my $cmd = "*" . @args . "\r\n"
              . join "", map { "\$" . length($_) . "\r\n$_\r\n" } @args;
    syswrite $r, $cmd;
    my $line = <$r>;
    $line =~ s/\r\n$//;
    return $line;
}

# writes a request, waits $delay seconds, and resets the connection (a
# phone on a train): what the request commits must still follow.  With
# $partial the body is cut short: a route that needs none acts at once,
# while NGINX still reads (and discards) the rest, so that the reset
# ends the request in the middle of its work
sub main::reset_after {
    my ($token, $method, $path, $body, $delay, $partial) = @_;
    my $json = $JSON->encode($body);
    my $len = length($json) + ($partial ? 16 : 0);
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Proto => "tcp", Timeout => 5)
        or die "connect: $!";
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
        . (defined $token ? "Authorization: Bearer $token\r\n" : "")
        . "Content-Type: application/json\r\n"
        . "Content-Length: $len\r\n\r\n$json";
    syswrite($s, $req) == length $req or die "write: $!";
    Time::HiRes::sleep($delay) if $delay;
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0));
    close $s;
}

# a session after a revocation whose client reset: "revoked" (sockets
# closed, access token 401, refresh token refused), "live" (none of it:
# the reset came before the request was read), or what is half done
sub main::revocation {
    my ($tok, $ws, $sio) = @_;
    my $w = main::until_close($ws, 3);
    my $i = main::sio_until_close($sio, 3);
    my $a = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/users/profile",
        { headers => { Authorization => "Bearer $tok->{accessToken}" } }
    )->{status};
    my ($f) = main::post("/api/auth/refresh-token",
                         { refreshToken => $tok->{refreshToken} });
    return "revoked" if $w eq "session_revoked,close:1008"
                        && $i eq "42:session_revoked,41,close:1008"
                        && $a == 401 && $f == 401;
    return "live" if $w eq "" && $i eq "" && $a == 200 && $f == 200;
    return "half(ws=$w sio=$i access=$a refresh=$f)";
}

# "revoked" n times at least once, "live" otherwise, and no half state
sub main::tally {
    my ($what, @v) = @_;
    my @half = grep { $_ ne "revoked" && $_ ne "live" } @v;
    return "$what: " . (@half ? join(" ", @half)
                              : (grep { $_ eq "revoked" } @v) ? "ok"
                                                              : "none revoked");
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a reused refresh token (the theft case) closes the session's WebSocket and Socket.IO sockets
--- init
ChatChats::setup();
my @r;
my $t = main::user("frank", 5);
my $chat = main::private_chat("alice", "frank");
my $ws = ChatRT::connect("frank");
my $sio = main::sio_open($t->{accessToken});
my ($st, $b) = main::post("/api/auth/refresh-token",
                          { refreshToken => $t->{refreshToken} });
push @r, "rotated:$st";
($st, $b) = main::post("/api/auth/refresh-token",
                       { refreshToken => $t->{refreshToken} });
push @r, "reused:$st:$b->{error}{code}";
push @r, "ws:" . main::until_close($ws, 2);
push @r, "sio:" . main::sio_until_close($sio, 2);
main::try_after($ws, $sio, $chat, "t1");
ChatChats::api(alice => POST => "/api/messages",
    { chatId => $chat, tempId => "t1-a", type => "text", content => "to frank" });
push @r, "ws-later:" . scalar(grep { $_->{event} ne "close" }
                              ChatRT::drain($ws, 1));
push @r, "stored:" . main::stored("alice", $chat);
$main::Got = join "\n", @r;
--- response_body
rotated:200
reused:401:refresh_token_reused
ws:session_revoked,close:1008
sio:42:session_revoked,41,close:1008
ws-later:0
stored:to frank
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: a logout closes the session's WebSocket and Socket.IO sockets
--- init
ChatChats::setup();
my @r;
my $t = main::user("gina", 6);
my $chat = main::private_chat("alice", "gina");
my $ws = ChatRT::connect("gina");
my $sio = main::sio_open($t->{accessToken});
ChatChats::api(gina => POST => "/api/auth/logout", {});
push @r, "ws:" . main::until_close($ws, 2);
push @r, "sio:" . main::sio_until_close($sio, 2);
main::try_after($ws, $sio, $chat, "t2");
Time::HiRes::sleep(0.5);
push @r, "stored:" . main::stored("alice", $chat);
$main::Got = join "\n", @r;
--- response_body
ws:session_revoked,close:1008
sio:42:session_revoked,41,close:1008
stored:



=== TEST 3: a device removed from another closes that session's sockets, not the remover's
--- init
ChatChats::setup();
my @r;
my $t1 = main::user("hank", 7);
Time::HiRes::sleep(2.2);
my $t2 = main::user("hank2", 7);
my $sid2 = main::claims($t2->{accessToken})->{sid};
my $ws = ChatRT::connect("hank2");
my $sio = main::sio_open($t2->{accessToken});
my $mine = ChatRT::connect("hank");
ChatChats::api(hank => DELETE => "/api/auth/sessions/$sid2");
push @r, "ws:" . main::until_close($ws, 2);
push @r, "sio:" . main::sio_until_close($sio, 2);
push @r, "mine:" . scalar(ChatRT::drain($mine, 0.5));
$main::Got = join "\n", @r;
--- response_body
ws:session_revoked,close:1008
sio:42:session_revoked,41,close:1008
mine:0



=== TEST 4: an expired access token: token_expired, then close 4001 (Socket.IO: disconnect); a fresh token extends the socket
--- init
ChatChats::setup();
my @r;
my $t0 = time();
my $short = main::forge($ChatChats::Tok{carol}{accessToken}, $t0 + 2);
my ($w1) = ChatWS::open_ws("/ws?token=$short");
my ($w2) = ChatWS::open_ws("/ws?token=$short");
push @r, "w1:" . (ChatRT::wait_for($w1, "authenticated", 3) ? "in" : "out");
push @r, "w2:" . (ChatRT::wait_for($w2, "authenticated", 3) ? "in" : "out");
my $sio = main::sio_open($short);
# w2 authenticates again with a fresh token of the same session
ChatRT::send_event($w2, "authenticate",
                   { token => $ChatChats::Tok{carol}{accessToken} }, 5);
my $e = ChatRT::wait_for($w2, "authenticated", 3, 5);
push @r, "reauth:" . ($e && $e->{data}{expiresAt} ? "ok" : "none");
# another session's token is not taken
ChatRT::send_event($w2, "authenticate",
                   { token => $ChatChats::Tok{bob}{accessToken} }, 6);
$e = ChatRT::wait_for($w2, "error", 3, 6);
push @r, "other:" . ($e ? $e->{error}{code} : "none");
push @r, "w1:" . main::until_close($w1, 5);
push @r, "after:" . (time() - $t0 >= 2 ? "exp" : "early");
push @r, "sio:" . main::sio_until_close($sio, 5);
ChatRT::send_event($w2, "sync", { chats => {} }, 7);
$e = ChatRT::wait_for($w2, "synced", 3, 7);
push @r, "w2-sync:" . ($e ? "ok" : "none");
push @r, "w2-quiet:" . scalar(ChatRT::drain($w2, 0.5));
$main::Got = join "\n", @r;
--- response_body
w1:in
w2:in
reauth:ok
other:already_authenticated
w1:token_expired,close:4001
after:exp
sio:42:token_expired,41,close:4001
w2-sync:ok
w2-quiet:0
--- timeout: 20



=== TEST 5: the subscriber connection lost and back: every socket is told to resync
--- init
ChatChats::setup();
my @r;
my $ws = ChatRT::connect("alice");
my $ws2 = ChatRT::connect("bob");
my $sio = main::sio_open($ChatChats::Tok{carol}{accessToken});
push @r, "killed:" . (main::redis("CLIENT", "KILL", "TYPE", "pubsub") =~ /^:[1-9]/ ? "yes" : "no");
for my $s ($ws, $ws2) {
    my $e = ChatRT::wait_for($s, "resync", 5);
    push @r, "ws:" . ($e ? $e->{data}{reason} : "none");
}
my $seen = "none";
while (my $f = ChatWS::read_frame($sio, 5)) {
    if ($f->{payload} =~ /^42\["resync",(.*)\]$/) { $seen = JSON::PP::decode_json($1)->{reason}; last }
}
push @r, "sio:$seen";
$main::Got = join "\n", @r;
--- response_body
killed:yes
ws:reconnected
ws:reconnected
sio:reconnected
--- error_log
chat redis: lost connection
--- no_error_log
[alert]
[emerg]



=== TEST 6: a member removed while the pub/sub message was lost stops receiving once the subscriber is back
--- init
ChatChats::setup();
my @r;
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "lossy", memberIds => [ $ChatChats::Id{bob}, $ChatChats::Id{carol} ] })
    ->{chat}{id};
my $b = ChatRT::connect("bob");
my $c = ChatRT::connect("carol");
# channels forbidden: the subscriber is cut off and every PUBLISH refused
push @r, "acl:" . main::redis("ACL", "SETUSER", "default", "resetchannels");
ChatChats::api(alice => DELETE => "/api/chats/$g/members/$ChatChats::Id{bob}");
main::redis("ACL", "SETUSER", "default", "allchannels");
# the subscriber may have come back meanwhile, with its SUBSCRIBEs refused
main::redis("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes");
my $e = ChatRT::wait_for($b, "resync", 5);
push @r, "bob:" . ($e ? $e->{data}{reason} : "none");
$e = ChatRT::wait_for($c, "resync", 5);
push @r, "carol:" . ($e ? $e->{data}{reason} : "none");
Time::HiRes::sleep(1);
ChatChats::api(alice => POST => "/api/messages",
    { chatId => $g, tempId => "t6-1", type => "text", content => "without bob" });
push @r, "carol-got:" . join ",", map { $_->{data}{message}{content}{text} }
    grep { $_->{event} eq "new_message" } ChatRT::drain($c, 1);
push @r, "bob-got:" . join ",", map { $_->{data}{message}{content}{text} }
    grep { $_->{event} eq "new_message" } ChatRT::drain($b, 1);
$main::Got = join "\n", @r;
--- response_body
acl:+OK
bob:reconnected
carol:reconnected
carol-got:without bob
bob-got:
--- error_log
chat redis: lost connection
--- no_error_log
[alert]
[emerg]
--- timeout: 20



=== TEST 7: a presence subscription made before a block or a privacy change follows it
--- init
ChatChats::setup();
my @r;
my $ivan = main::user("ivan", 8)->{user}{id};
my $c = ChatRT::connect("carol");
my $b = ChatRT::connect("bob");
for my $w ([carol => $c], [bob => $b]) {
    ChatRT::send_event($w->[1], "subscribe_presence", { userId => $ivan }, 1);
    my $ack = ChatRT::wait_for($w->[1], "ack", 3, 1);
    push @r, "$w->[0]-sub:" . (exists $ack->{data}{user}{online} ? "shown" : "hidden");
}
my $i = ChatRT::connect("ivan");
for my $w ([carol => $c], [bob => $b]) {
    my $e = ChatRT::wait_for($w->[1], "user_online", 3);
    push @r, "$w->[0]:" . ($e ? $e->{event} : "none");
}
ChatChats::api(ivan => POST => "/api/users/$ChatChats::Id{carol}/block", {});
ChatChats::api(ivan => PUT => "/api/users/profile",
               { privacy => { lastSeen => "nobody" } });
close $i;
my ($off) = grep { $_->{event} eq "user_offline" } ChatRT::drain($b, 1.5);
push @r, "bob:" . ($off ? "user_offline:" . (exists $off->{data}{lastSeen} ? "lastSeen" : "no-lastSeen") : "none");
push @r, "carol-blocked:" . scalar(grep { $_->{event} =~ /^user_/ } ChatRT::drain($c, 0.5));
ChatChats::api(ivan => PUT => "/api/users/profile",
               { privacy => { online => "nobody" } });
$i = ChatRT::connect("ivan");
push @r, "bob-hidden:" . scalar(grep { $_->{event} =~ /^user_/ } ChatRT::drain($b, 1.5));
$main::Got = join "\n", @r;
--- response_body
carol-sub:shown
bob-sub:shown
carol:user_online
bob:user_online
bob:user_offline:no-lastSeen
carol-blocked:0
bob-hidden:0



=== TEST 8: a logout, a device removal and a reused refresh token, each on a connection reset 0 to 20 ms after writing (the body whole, or cut short): the session revoked in full (sockets closed, tokens refused) or not at all
--- init
ChatChats::setup();
my (@logout, @remove, @reuse, @other);
my @delay = (0, 0.005, 0.01, 0.02);
my @case = map { my $d = $_; map { [$d, $_] } 0, 1 } @delay;
for my $k (0 .. $#case) {
    my $t = main::user("lo$k", 20 + $k);
    my $ws = ChatRT::connect("lo$k");
    my $sio = main::sio_open($t->{accessToken});
    main::reset_after($t->{accessToken}, POST => "/api/auth/logout", {},
                      @{ $case[$k] });
    push @logout, main::revocation($t, $ws, $sio);
}
my @first = map { main::user("rm$_", 30 + $_) } 0 .. $#case;
Time::HiRes::sleep(1.2);
for my $k (0 .. $#case) {
    my $t = main::user("rmb$k", 30 + $k);
    my $sid = main::claims($t->{accessToken})->{sid};
    my $ws = ChatRT::connect("rmb$k");
    my $sio = main::sio_open($t->{accessToken});
    main::reset_after($first[$k]{accessToken},
                      DELETE => "/api/auth/sessions/$sid", {},
                      @{ $case[$k] });
    push @remove, main::revocation($t, $ws, $sio);
    # the remover's own session stands
    my ($st) = ChatChats::call("rm$k" => GET => "/api/users/profile");
    push @other, $st if $st != 200;
}
for my $k (0 .. $#delay) {
    my $t = main::user("ru$k", 40 + $k);
    my ($st, $rotated) = main::post("/api/auth/refresh-token",
                                    { refreshToken => $t->{refreshToken} });
    die "rotate: $st" unless $st == 200;
    $ChatChats::Tok{"ru$k"} = $rotated;
    my $ws = ChatRT::connect("ru$k");
    my $sio = main::sio_open($rotated->{accessToken});
    main::reset_after(undef, POST => "/api/auth/refresh-token",
                      { refreshToken => $t->{refreshToken} }, $delay[$k]);
    push @reuse, main::revocation($rotated, $ws, $sio);
}
$main::Got = join "\n", main::tally("logout", @logout),
    main::tally("remove", @remove), main::tally("reuse", @reuse),
    "remover:" . (@other ? "@other" : "200");
--- response_body
logout: ok
remove: ok
reuse: ok
remover:200
--- timeout: 180
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 9: a logout, a device removal and a reused refresh token while Redis refuses writes (a replica after a failover, READONLY): each session's sockets are told at once, the client gets 503, and every retry, once Redis writes again, answers as the first success would and revokes the tokens at once
--- init
ChatChats::setup();
my @r;
my $t = main::user("ivan", 9);
my $j1 = main::user("jack", 10);
my $k = main::user("kate", 11);
my ($st, $rotated) = main::post("/api/auth/refresh-token",
                                { refreshToken => $k->{refreshToken} });
$ChatChats::Tok{kate} = $rotated;
Time::HiRes::sleep(1.2);
my $j2 = main::user("jack2", 10);
my $sid2 = main::claims($j2->{accessToken})->{sid};
my %sock;
for my $who (qw(ivan jack2 kate)) {
    $sock{$who} = [ChatRT::connect($who),
                   main::sio_open($ChatChats::Tok{$who}{accessToken})];
}
push @r, "replica:" . main::redis("REPLICAOF", "127.0.0.1", "1");
($st) = ChatChats::call(ivan => POST => "/api/auth/logout", {});
push @r, "logout:$st";
($st) = ChatChats::call(jack => DELETE => "/api/auth/sessions/$sid2");
push @r, "remove:$st";
($st) = main::post("/api/auth/refresh-token",
                   { refreshToken => $k->{refreshToken} });
push @r, "reuse:$st";
for my $who (qw(ivan jack2 kate)) {
    push @r, "$who ws:" . main::until_close($sock{$who}[0], 3);
    push @r, "$who sio:" . main::sio_until_close($sock{$who}[1], 3);
}
push @r, "master:" . main::redis("REPLICAOF", "NO", "ONE");
($st) = ChatChats::call(ivan => POST => "/api/auth/logout", {});
push @r, "again:$st";
($st) = ChatChats::call(ivan => GET => "/api/users/profile");
push @r, "access:$st";
# the device removal and the reuse retried: the record has them already,
# the answer is the first one's and the cache refuses the tokens at once
my $body;
($st, $body) = ChatChats::call(jack => DELETE => "/api/auth/sessions/$sid2");
push @r, "remove again:$st " . JSON::PP->new->canonical->encode($body);
($st) = ChatChats::call(jack2 => GET => "/api/users/profile");
push @r, "jack2 access:$st";
($st, $body) = main::post("/api/auth/refresh-token",
                          { refreshToken => $k->{refreshToken} });
push @r, "reuse again:$st $body->{error}{code}";
($st) = ChatChats::call(kate => GET => "/api/users/profile");
push @r, "kate access:$st";
# only one's own: another user's removed session, or none, stays 404
main::user("lena", 12);
($st) = ChatChats::call(lena => DELETE => "/api/auth/sessions/$sid2");
push @r, "other's:$st";
($st) = ChatChats::call(jack => DELETE =>
                        "/api/auth/sessions/0123456789abcdef01234567");
push @r, "none:$st";
($st) = ChatChats::call(jack => GET => "/api/users/profile");
push @r, "jack access:$st";
$main::Got = join "\n", @r;
--- response_body
replica:+OK
logout:503
remove:503
reuse:503
ivan ws:session_revoked,close:1008
ivan sio:42:session_revoked,41,close:1008
jack2 ws:session_revoked,close:1008
jack2 sio:42:session_revoked,41,close:1008
kate ws:session_revoked,close:1008
kate sio:42:session_revoked,41,close:1008
master:+OK
again:200
access:401
remove again:200 {"success":true}
jack2 access:401
reuse again:401 refresh_token_reused
kate access:401
other's:404
none:404
jack access:200
--- error_log
its cache failed
--- no_error_log
[alert]
[emerg]

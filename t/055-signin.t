# A socket's sign-in without MongoDB: with the user's session, own profile
# and chat ids in Redis, plain WebSocket and Socket.IO sign-ins read
# nothing from MongoDB (counted by FerretDB itself: serverStatus's
# metrics.commands); after FLUSHALL the first sign-in rebuilds them and
# the next are free again; a member removed, a profile or privacy change
# and a block are seen by the next sign-in at once, on two workers.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use ChatChats;
use ChatMongo;
use ChatRT;
use ChatWS;
use IO::Select;
use IO::Socket::INET;
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(sleep);

our ($Got, $Redis);

BEGIN {
    $Redis = ChatRedis->new->start;
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    ChatChats::init("655");
    # a port of its own with reuseport: the kernel spreads the sockets
    # over both workers
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                  LocalPort => 0) or die;
    $ENV{TEST_NGINX_RT_PORT} = $s->sockport;
    close $s;
}

*Id = \%ChatChats::Id;
*Tok = \%ChatChats::Tok;
our (%Id, %Tok);

sub redis {
    system("redis-cli", "-p", $Redis->port, @_) == 0 or die "redis-cli @_";
}

# a Redis command with binary-safe arguments and bulk reply (redis-cli's
# text would mangle a packed profile)
sub rcmd {
    my $s = IO::Socket::INET->new("127.0.0.1:" . $Redis->port) or die;
    print $s "*" . scalar(@_) . "\r\n"
        . join("", map { "\$" . length($_) . "\r\n$_\r\n" } @_);
    my $line = <$s>;
    my $out;
    if ($line =~ /^\$(-?\d+)/) {
        if ($1 >= 0) {
            read($s, $out, $1 + 2);
            substr($out, -2) = "";
        }
    } elsif ($line =~ /^[:+](.*)\r/) {
        $out = $1;
    }
    close $s;
    return $out;
}

# FerretDB's own count of the commands it ran, by name
sub mongo_counts {
    return ChatMongo::command_counts($ENV{TEST_NGINX_MONGO_PORT});
}

# the commands that read, run since $before
sub mongo_reads {
    my ($before) = @_;
    my $now = mongo_counts();
    my $n = 0;
    for my $c (qw(find aggregate count distinct getMore findAndModify)) {
        $n += ($now->{$c} // 0) - ($before->{$c} // 0);
    }
    return $n;
}

# a plain WebSocket signed in with ?token=: its authenticated {user}
sub ws_sign_in {
    my ($who, %o) = @_;
    my ($s, $status) = ChatWS::open_ws("/ws?token=$Tok{$who}{accessToken}");
    die "websocket for $who: $status" unless $status == 101;
    my $e = ChatRT::wait_for($s, "authenticated", 5);
    die "$who not authenticated" unless $e;
    return wantarray ? ($s, $e->{data}{user}) : $s;
}

# a WebSocket handshake sent on a socket of its own, nothing read
sub raw_ws {
    my ($path) = @_;
    my $s = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}")
        or die "connect: $!";
    syswrite($s, "GET $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        . "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        . "Sec-WebSocket-Version: 13\r\n\r\n");
    return $s;
}

# a Socket.IO socket over the websocket transport, signed in by CONNECT
sub sio_sign_in {
    my ($who) = @_;
    my ($s, $status) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
    die "socket.io: $status" unless $status == 101;
    ChatWS::read_frame($s, 3);              # the Engine.IO open packet
    ChatWS::text($s, qq(40{"token":"$Tok{$who}{accessToken}"}));
    while (my $f = ChatWS::read_frame($s, 5)) {
        return $s if $f->{payload} =~ /^42\["authenticated"/;
    }
    die "socket.io: $who not authenticated";
}

# the texts of the new_message events of $chat a socket got
sub texts_of {
    my ($chat, @e) = @_;
    return map { $_->{data}{message}{content}{text} }
           grep { $_->{event} eq "new_message"
                  && $_->{data}{message}{chatId} eq $chat } @e;
}

my $said = 0;

sub say_in {
    my ($who, $chat, $text) = @_;
    $said++;
    ChatChats::api($who => POST => "/api/messages",
                   { chatId => $chat, tempId => "si-$$-$said",
                     type => "text", content => $text });
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", ChatTest::chat_http_config() . <<'_EOC_');
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;

    server {
        listen 127.0.0.1:$TEST_NGINX_RT_PORT reuseport;
        location /api/ { chat_api; }
        location /ws { chat_ws; }
        location /socket.io/ { chat_socketio; }
    }
_EOC_
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /wsq { chat_ws; chat_ws_max_queue 64; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 120);
});

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: with Redis warm, 200 sign-ins (100 plain, 100 Socket.IO) read nothing from MongoDB, and join the user's chats
--- init
ChatChats::setup("dave", "erin");
my @r;
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
my @chats = map {
    ChatChats::api(alice => POST => "/api/chats/group",
        { name => "warm $_", memberIds => [ $ChatChats::Id{bob} ] })->{chat}{id}
} 1 .. 3;
# alice stays online throughout (a socket kept open), so that no sign-in
# is a presence transition; its sign-in warms her session, profile and
# chat ids in Redis
my $keep = main::ws_sign_in("alice");
main::ws_sign_in("alice") for 1 .. 4;
sleep 0.3;
my $before = main::mongo_counts();
my $ok = 0;
for my $i (1 .. 100) {
    my $s = main::ws_sign_in("alice");
    $ok++;
    close $s;
    $s = main::sio_sign_in("alice");
    $ok++;
    close $s;
}
sleep 0.3;
push @r, "signed:$ok reads:" . main::mongo_reads($before);
# and they joined her chats: a socket signed in so gets each chat's message
my $w = main::ws_sign_in("alice");
my $sio = main::sio_sign_in("alice");
main::say_in(bob => $_, "hello $_") for @chats;
my @e = ChatRT::drain($w, 1);
my $ws_n = grep { my $c = $_; grep { $_ eq "hello $c" } main::texts_of($c, @e) }
           @chats;
my $sio_n = 0;
while (my $f = ChatWS::read_frame($sio, 1)) {
    $sio_n++ if $f->{payload} =~ /^42\["new_message"/;
}
push @r, "ws:$ws_n sio:$sio_n";
$ChatWS::Port = undef;
$main::Got = "@r";
--- response_body
signed:200 reads:0 ws:3 sio:3



=== TEST 2: after FLUSHALL the first sign-in rebuilds session, profile and chat ids from MongoDB, the next 50 read nothing
--- init
ChatChats::setup("dave", "erin");
my @r;
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
my $chat = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "flushed", memberIds => [ $ChatChats::Id{bob} ] })->{chat}{id};
my $keep = main::ws_sign_in("alice");
main::redis("FLUSHALL");
my $before = main::mongo_counts();
my $first = main::ws_sign_in("alice");
sleep 0.3;
push @r, "first:" . (main::mongo_reads($before) >= 3 ? "read" : "free");
$before = main::mongo_counts();
for my $i (1 .. 25) {
    close scalar main::ws_sign_in("alice");
    close main::sio_sign_in("alice");
}
sleep 0.3;
push @r, "next:" . main::mongo_reads($before);
# what the rebuilt sign-in joined is the user's chats
main::say_in(bob => $chat, "after the flush");
push @r, "got:" . join(",", main::texts_of($chat, ChatRT::drain($first, 1)));
$ChatWS::Port = undef;
$main::Got = "@r";
--- response_body
first:read next:0 got:after the flush



=== TEST 3: a member removed: their new sockets, right after the removal and on both workers, do not join the chat; added again, they do
--- init
ChatChats::setup("dave", "erin");
my @r;
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "in and out", memberIds => [ $ChatChats::Id{carol} ] })->{chat}{id};
my $warm = main::ws_sign_in("carol");     # carol's chat ids in Redis
my (%out, %in);
for my $round (1 .. 5) {
    ChatChats::api(alice => DELETE => "/api/chats/$g/members/$ChatChats::Id{carol}");
    # at once, eight sockets, spread over both workers by the kernel
    my @s = map { scalar main::ws_sign_in("carol") } 1 .. 8;
    main::say_in(alice => $g, "out $round");
    # what would come comes at once: one wait for all eight
    sleep 0.3;
    for my $s (@s) {
        my @t = main::texts_of($g, ChatRT::drain($s, 0.05));
        $out{scalar @t}++;
        close $s;
    }
    ChatChats::api(alice => POST => "/api/chats/$g/members",
                   { userIds => [ $ChatChats::Id{carol} ] });
    @s = map { scalar main::ws_sign_in("carol") } 1 .. 8;
    main::say_in(alice => $g, "in $round");
    sleep 0.3;
    for my $s (@s) {
        my @t = grep { $_ eq "in $round" }
                main::texts_of($g, ChatRT::drain($s, 0.05));
        # a slow delivery (a loaded machine) is waited for
        @t = grep { $_ eq "in $round" }
             main::texts_of($g, ChatRT::drain($s, 1)) unless @t;
        $in{scalar @t}++;
        close $s;
    }
}
my $ids = ChatChats::api(carol => GET => "/api/chats/ids")->{items};
push @r, "removed:" . join(",", map { "$_=$out{$_}" } sort keys %out);
push @r, "added:" . join(",", map { "$_=$in{$_}" } sort keys %in);
push @r, "ids:" . scalar(grep { $_ eq $g } @$ids);
# and a member who leaves
ChatChats::api(carol => POST => "/api/chats/$g/leave");
my $s = main::ws_sign_in("carol");
main::say_in(alice => $g, "after leaving");
push @r, "left:" . scalar(main::texts_of($g, ChatRT::drain($s, 0.5)));
# the workers that signed carol in: both
open my $log, "<", "$Test::Nginx::Util::ServRoot/logs/error.log" or die;
my %pids;
while (<$log>) {
    $pids{$1} = 1 if /\[info\] (\d+)#\d+: .*chat ws: authenticated as \Q$ChatChats::Id{carol}\E/;
}
push @r, "workers:" . scalar(keys %pids);
$ChatWS::Port = undef;
$main::Got = "@r";
--- response_body
removed:0=40 added:1=40 ids:1 left:0 workers:2



=== TEST 4: a profile or privacy change is in the next sign-in's authenticated {user} at once, on either worker
--- init
ChatChats::setup("dave", "erin");
my @r;
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
my $keep = main::ws_sign_in("dave");      # dave's profile in Redis
my $ok = 0;
for my $i (1 .. 6) {
    my $rule = $i % 2 ? "nobody" : "contacts";
    ChatChats::api(dave => PUT => "/api/users/profile",
                   { name => "Dave $i", privacy => { lastSeen => $rule } });
    for (1 .. 4) {
        my (undef, $u) = main::ws_sign_in("dave");
        $ok++ if $u->{name} eq "Dave $i"
                 && $u->{privacy}{lastSeen} eq $rule;
    }
}
push @r, "fresh:$ok";
# and warm again: nothing from MongoDB
my $before = main::mongo_counts();
close scalar main::ws_sign_in("dave") for 1 .. 10;
sleep 0.3;
push @r, "reads:" . main::mongo_reads($before);
$ChatWS::Port = undef;
$main::Got = "@r";
--- response_body
fresh:24 reads:0



=== TEST 5: a block is seen at the next sign-in: the blocked watcher gets no user_online
--- init
ChatChats::setup("dave", "erin");
my @r;
my $watch = main::ws_sign_in("bob");
ChatRT::send_event($watch, "subscribe_presence", { userId => $ChatChats::Id{erin} }, 1);
ChatRT::wait_for($watch, "ack", 3, 1);
ChatRT::drain($watch, 0.5);
# erin signs in (Redis warm from her first sign-in), then goes
my $e = main::ws_sign_in("erin");
push @r, "before:" . join(",", map { $_->{event} }
    grep { $_->{event} =~ /^user_/ } ChatRT::drain($watch, 1));
close $e;
ChatRT::drain($watch, 1);
ChatChats::api(erin => POST => "/api/users/$ChatChats::Id{bob}/block");
$e = main::ws_sign_in("erin");
push @r, "blocked:" . join(",", map { $_->{event} }
    grep { $_->{event} =~ /^user_/ } ChatRT::drain($watch, 1.5));
$main::Got = "@r";
--- response_body
before:user_online blocked:



=== TEST 6: the cached profile is packed (under half the JSON's bytes in Redis) and signs in the same user; a plain JSON value (an older build's) is read as it is; one that cannot be read is a miss, read from MongoDB and stored packed again
--- init
ChatChats::setup("dave", "erin");
my @r;
my $key = "up:{$ChatChats::Id{erin}}";
my (undef, $first) = main::ws_sign_in("erin");
my (undef, $again) = main::ws_sign_in("erin");
my $canon = JSON::PP->new->canonical;
my $json = $canon->encode({ user => $first });
my $packed = main::rcmd("GET", $key) // "";
push @r, "packed:" . (substr($packed, 0, 1) eq "\x01" ? "yes" : "no")
    . " smaller:" . (length($packed) * 2 < length($json)
                     ? "yes" : length($packed) . "/" . length($json))
    . " same:" . ($canon->encode($again) eq $canon->encode($first)
                  ? "yes" : "no");
# what an older build stored: the JSON itself, with a mark to see it read
my %old = %$first;
$old{name} = "stored plain";
main::rcmd("SET", $key, JSON::PP::encode_json({ user => \%old }), "KEEPTTL");
my (undef, $u) = main::ws_sign_in("erin");
push @r, "plain:" . ($u->{name} // "none");
# a value of no known form: read as a miss, the profile from MongoDB
main::rcmd("SET", $key, "\x7fnot a profile", "KEEPTTL");
my $before = main::mongo_counts();
(undef, $u) = main::ws_sign_in("erin");
sleep 0.3;
$packed = main::rcmd("GET", $key) // "";
push @r, "unknown:" . ($canon->encode($u) eq $canon->encode($first)
                       ? "same" : "other")
    . " read:" . (main::mongo_reads($before) >= 1 ? "yes" : "no")
    . " stored:" . (substr($packed, 0, 1) eq "\x01" ? "packed" : "no");
$main::Got = "@r";
--- response_body
packed:yes smaller:yes same:yes plain:stored plain unknown:same read:yes stored:packed
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 7: a socket that signs in with its URL token gets the 101 and its authenticated in one write (both in the first read); one without a token gets the 101 at once, alone
--- init
ChatChats::setup();
my @r;
for my $path ("/ws?token=$ChatChats::Tok{alice}{accessToken}", "/ws") {
    my $s = main::raw_ws($path);
    IO::Select->new($s)->can_read(5);
    sysread($s, my $chunk, 65536);
    my ($head, $rest) = split /\r\n\r\n/, $chunk, 2;
    push @r, ($head =~ m{^HTTP/1\.1 101 } ? "101" : "no 101")
        . (($rest // "") =~ /^\x81.*"event":"authenticated"/s
           ? "+authenticated" : length($rest // "") ? "+other" : "");
    close $s;
}
$main::Got = "@r";
--- response_body
101+authenticated 101
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 8: Redis stopped: a socket's 101 waits for its sign-in 1 s at most, then goes alone; the authentication_error follows after chat_redis_command_timeout (3 s); with Redis back the next sign-in works
--- init
ChatChats::setup();
my @r;
kill 'STOP', $main::Redis->{pid};
my $t0 = Time::HiRes::time();
my $s = main::raw_ws("/ws?token=$ChatChats::Tok{alice}{accessToken}");
my $head = "";
while ($head !~ /\r\n\r\n/) {
    IO::Select->new($s)->can_read(5) or last;
    sysread($s, $head, 1, length $head) or last;
}
my $t101 = Time::HiRes::time() - $t0;
push @r, ($head =~ m{^HTTP/1\.1 101 } ? "101" : "no 101")
    . ($t101 >= 0.8 && $t101 < 2.5 ? " after 1s" : sprintf(" after %.2fs", $t101));
my $e = ChatRT::next_event($s, 6);
my $terr = Time::HiRes::time() - $t0;
push @r, ($e ? $e->{event} : "nothing")
    . ($terr >= 2.5 ? " after 3s" : sprintf(" after %.2fs", $terr));
kill 'CONT', $main::Redis->{pid};
close $s;
my $ok;
for (1 .. 50) {
    $ok = eval { main::ws_sign_in("alice") };
    last if $ok;
    sleep 0.1;
}
push @r, $ok ? "back" : "not back";
$main::Got = "@r";
--- response_body
101 after 1s authentication_error after 3s back
--- error_log eval
[qr/chat redis: no reply from 127\.0\.0\.1:\d+ in 3000ms/]
--- no_error_log
[alert]
[emerg]



=== TEST 9: a close pipelined with the handshake while the 101 waits for the sign-in, on a location whose chat_ws_max_queue is smaller than the 101: the 101, then the close answered
--- init
ChatChats::setup();
my ($s, $status) = ChatWS::open_ws("/wsq?token=$ChatChats::Tok{alice}{accessToken}",
    [], pipelined => ChatWS::frame(opcode => 8, payload => pack("n", 1000)));
my $f = ChatWS::read_frame($s, 5);
$main::Got = "$status " . ($f ? "opcode $f->{opcode} code "
                                . unpack("n", $f->{payload} || "\0\0")
                              : "nothing");
--- response_body
101 opcode 8 code 1000
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 10: the authenticated frame's bytes: a cold sign-in (profile read from MongoDB), a warm one (from Redis) and one by the authenticate event with an id are the REST profile's body in the same envelope, on a plain socket and in Socket.IO's frames
--- init
ChatChats::setup("dave", "erin");
my @r;
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
ChatChats::api(erin => PUT => "/api/users/profile",
               { name => "Erin \"\x{e9}\" \x{1f642} / \\" });
# the raw payload of the first authenticated frame
my $frame = sub {
    my ($s) = @_;
    while (my $f = ChatWS::read_frame($s, 5)) {
        return $f->{payload} if $f->{payload} =~ /"event":"authenticated"/;
    }
    return "none";
};
my $url = "/ws?token=$ChatChats::Tok{erin}{accessToken}";
my $rest = HTTP::Tiny->new->get("http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
    . "/api/users/profile",
    { headers => { Authorization => "Bearer $ChatChats::Tok{erin}{accessToken}" } })
    ->{content};
$rest =~ s/\n\z//;
main::redis("FLUSHALL");
my ($cold) = ChatWS::open_ws($url);
my $c = $frame->($cold);
sleep 0.3;
my $before = main::mongo_counts();
my ($warm) = ChatWS::open_ws($url);
my $w = $frame->($warm);
sleep 0.3;
push @r, "warm-reads:" . main::mongo_reads($before);
my ($ev) = ChatWS::open_ws("/ws");
ChatWS::text($ev, qq({"event":"authenticate","data":{"token":"$ChatChats::Tok{erin}{accessToken}"},"id":"k\\u00e9 7"}));
my $e = $frame->($ev);
my ($n) = ChatWS::open_ws("/ws");
ChatWS::text($n, qq({"event":"authenticate","data":{"token":"$ChatChats::Tok{erin}{accessToken}"},"id":7}));
my $e7 = $frame->($n);
my $want = qq({"event":"authenticated","data":$rest});
push @r, "cold:" . ($c eq $want ? "same" : "differs $c $want");
push @r, "warm:" . ($w eq $want ? "same" : "differs $w");
push @r, "id:" . ($e eq qq({"event":"authenticated","data":$rest,"id":"k\xc3\xa9 7"})
                  ? "same" : "differs $e");
push @r, "id7:" . ($e7 eq qq({"event":"authenticated","data":$rest,"id":7})
                   ? "same" : "differs $e7");
push @r, "name:" . (JSON::PP::decode_json($c)->{data}{user}{name}
                    eq "Erin \"\x{e9}\" \x{1f642} / \\" ? "kept" : "lost");
# Socket.IO: signed in by CONNECT, cold and warm, and by the authenticate
# event with an ACK id: the same bytes in its frames
my $sio = sub {
    my ($connect, $event) = @_;
    my ($s) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
    ChatWS::read_frame($s, 3);              # the Engine.IO open packet
    ChatWS::text($s, $connect);
    ChatWS::text($s, $event) if $event;
    my @f;
    while (my $f = ChatWS::read_frame($s, 2)) {
        push @f, $f->{payload} if $f->{payload} =~ /^4[23]/;
        last if @f == ($event ? 2 : 1);
    }
    return join(" ", @f);
};
my $tok = $ChatChats::Tok{erin}{accessToken};
main::redis("FLUSHALL");
my $sc = $sio->(qq(40{"token":"$tok"}));
sleep 0.3;
$before = main::mongo_counts();
my $sw = $sio->(qq(40{"token":"$tok"}));
sleep 0.3;
push @r, "sio-warm-reads:" . main::mongo_reads($before);
my $sa = $sio->("40", qq(425["authenticate",{"token":"$tok"}]));
push @r, "sio-cold:" . ($sc eq qq(42["authenticated",$rest]) ? "same" : "differs $sc");
push @r, "sio-warm:" . ($sw eq qq(42["authenticated",$rest]) ? "same" : "differs $sw");
push @r, "sio-ack:" . ($sa eq qq(42["authenticated",$rest] 435[$rest])
                       ? "same" : "differs $sa");
$ChatWS::Port = undef;
$main::Got = "@r";
--- response_body
warm-reads:0 cold:same warm:same id:same id7:same name:kept sio-warm-reads:0 sio-cold:same sio-warm:same sio-ack:same
--- no_error_log
[error]
[alert]
[emerg]

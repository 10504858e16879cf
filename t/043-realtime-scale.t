# The realtime endpoint across workers and instances: two workers sharing
# sockets of one user, a second NGINX on the same Redis and MongoDB, the
# Redis connections cut and Redis restarted mid-session, and a reload with
# 1,000 open sockets.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatSIO;
use IO::Socket::INET;
use ChatOther;
use Time::HiRes ();

our ($Got, %Id, $OtherPid, $OtherDir);
*Id = \%ChatChats::Id;

BEGIN {
    ChatChats::init("643");
    # a port of its own with reuseport: the kernel spreads the sockets
    # over both workers
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => "127.0.0.1",
                                  LocalPort => 0) or die;
    $ENV{TEST_NGINX_RT_PORT} = $s->sockport;
    close $s;
}

END { kill "TERM", $OtherPid if $OtherPid }

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
        location /ws {
            chat_ws;
            chat_ws_auth_timeout 60s;
            # thousands of sockets, all from 127.0.0.1
            chat_ws_unauth_per_address off;
            chat_ws_conn_per_address off;
        }
        location /socket.io/ {
            chat_socketio;
            chat_ws_unauth_per_address off;
            chat_ws_conn_per_address off;
        }
    }
_EOC_
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        chat_ws_auth_timeout 60s;
        # thousands of sockets, all from 127.0.0.1
        chat_ws_unauth_per_address off;
        chat_ws_conn_per_address off;
    }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
});

# a second NGINX: the same configuration on another port
sub main::start_other {
    my ($port, $pid, $dir) = ChatOther::start();
    ($OtherPid, $OtherDir) = ($pid, $dir);
    return $port;
}

master_on();
workers(2);
worker_connections(2100);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: one user's sockets spread over two workers all get the message
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
my @b = map { ChatRT::connect("bob") } 1 .. 16;
my $a = ChatRT::connect("alice");
ChatRT::send_event($a, "send_message",
    { chatId => $chat, tempId => "w1", type => "text", content => "to all" }, 1);
my $n = 0;
for my $s (@b) {
    my @e = grep { $_->{event} eq "new_message" } ChatRT::drain($s, 0.3);
    $n++ if @e == 1 && $e[0]{data}{message}{content}{text} eq "to all";
}
push @r, "devices:$n";
$ChatWS::Port = undef;
# which workers hold the sockets: each logs its authentications
open my $log, "<", "$Test::Nginx::Util::ServRoot/logs/error.log" or die;
my %pids;
while (<$log>) {
    $pids{$1} = 1 if /\[info\] (\d+)#\d+: .*chat ws: authenticated as/;
}
push @r, "workers:" . scalar(keys %pids);
$main::Got = "@r";
--- response_body
devices:16 workers:2



=== TEST 2: two NGINX instances on one Redis: events cross between them
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{carol} })->{chat}{id};
my $other = main::start_other();
my $a = ChatRT::connect("alice");
$ChatWS::Port = $other;
my $c = ChatRT::connect("carol");
$ChatWS::Port = undef;
ChatRT::send_event($a, "send_message",
    { chatId => $chat, tempId => "i2", type => "text", content => "across" }, 1);
my $e = ChatRT::wait_for($c, "new_message", 3);
push @r, $e ? $e->{data}{message}{content}{text} : "lost";
ChatRT::send_event($c, "send_message",
    { chatId => $chat, tempId => "i2b", type => "text", content => "back" }, 2);
# alice's socket has her own message first (every device of hers gets it)
do {
    $e = ChatRT::wait_for($a, "new_message", 3);
} while ($e && $e->{data}{message}{content}{text} ne "back");
push @r, $e ? $e->{data}{message}{content}{text} : "lost";
kill "TERM", $main::OtherPid;
$main::OtherPid = undef;
$main::Got = "@r";
--- response_body
across back



=== TEST 3: the Redis connections cut mid-session: subscriptions come back
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(bob => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{carol} })->{chat}{id};
my $b = ChatRT::connect("bob");
my $c = ChatRT::connect("carol");
my $rd = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}") or die;
print $rd "CLIENT KILL TYPE pubsub\r\n";
my $killed = <$rd>;
print $rd "CLIENT KILL TYPE normal SKIPME yes\r\n";
$killed = <$rd>;
Time::HiRes::sleep(1.5);
ChatRT::send_event($b, "send_message",
    { chatId => $chat, tempId => "r3", type => "text", content => "after cut" }, 1);
my $ack = ChatRT::wait_for($b, "ack", 5, 1);
push @r, $ack ? "acked" : "no-ack";
my $e = ChatRT::wait_for($c, "new_message", 5);
push @r, $e ? $e->{data}{message}{content}{text} : "lost";
$main::Got = "@r";
--- response_body
acked after cut
--- no_error_log
[alert]
[emerg]



=== TEST 4: Redis restarted mid-session (its data saved and loaded back)
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $a = ChatRT::connect("alice");
my $b = ChatRT::connect("bob");
my $port = $ENV{TEST_NGINX_REDIS_PORT};
# started again as tools/services starts it, from its own settings
my %conf;
for my $k (qw(dir pidfile logfile)) {
    my @kv = split /\n/, `redis-cli -p $port CONFIG GET $k`;
    $conf{$k} = $kv[1];
}
# the sign-in sessions live in Redis: saved on the way down, loaded back
system("redis-cli -p $port SHUTDOWN SAVE >/dev/null 2>&1");
for (1 .. 100) {
    last unless IO::Socket::INET->new("127.0.0.1:$port");
    Time::HiRes::sleep(0.05);
}
Time::HiRes::sleep(0.5);
ChatRT::send_event($a, "send_message",
    { chatId => $chat, tempId => "down4", type => "text", content => "while down" }, 1);
my $down = ChatRT::wait_for($a, "error", 5, 1);
push @r, "down:" . ($down ? $down->{status} : "no-answer");
system("redis-server", "--port", $port, "--bind", "127.0.0.1",
       "--save", "", "--appendonly", "no", "--dir", $conf{dir},
       "--daemonize", "yes", "--pidfile", $conf{pidfile},
       "--logfile", $conf{logfile}) == 0 or die "restart";
for (1 .. 100) {
    last if IO::Socket::INET->new("127.0.0.1:$port");
    Time::HiRes::sleep(0.05);
}
# the module reconnects with backoff (at most chat_redis_backoff_max)
Time::HiRes::sleep(5.5);
ChatRT::send_event($a, "send_message",
    { chatId => $chat, tempId => "up4", type => "text", content => "after restart" }, 2);
my $ack = ChatRT::wait_for($a, "ack", 5, 2);
push @r, $ack ? "acked" : "no-ack";
my $e;
do {
    $e = ChatRT::wait_for($b, "new_message", 5);
} while ($e && $e->{data}{message}{content}{text} ne "after restart");
push @r, $e ? $e->{data}{message}{content}{text} : "lost";
$main::Got = "@r";
--- timeout: 60
--- response_body
down:503 acked after restart
--- no_error_log
[alert]
[emerg]



=== TEST 5: a reload with 1,000 open sockets: each gets 1001, old workers go
--- init
ChatChats::setup();
my @r;
my @s;
$ChatWS::Port = $ENV{TEST_NGINX_RT_PORT};
for (1 .. 1000) {
    my ($s, $st) = ChatWS::open_ws("/ws");
    die "no socket: $st" unless $st == 101;
    push @s, $s;
}
my $a = ChatRT::connect("alice");
$ChatWS::Port = undef;
open my $fh, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
my $master = <$fh>;
chomp $master;
my $t0 = Time::HiRes::time();
kill "HUP", $master;
my $closed = 0;
for my $s (@s, $a) {
    for (;;) {
        my $f = ChatWS::read_frame($s, 5);
        last unless $f;
        if ($f->{opcode} == 8) {
            $closed++ if unpack("n", $f->{payload}) == 1001;
            ChatWS::send_raw($s, ChatWS::frame(opcode => 8,
                                               payload => pack("n", 1001)));
            last;
        }
    }
}
push @r, "closed:$closed";
# the old workers are gone within seconds
my $left;
for (1 .. 50) {
    $left = `ps -o args= --ppid $master` =~ /shutting down/ ? 1 : 0;
    last unless $left;
    Time::HiRes::sleep(0.1);
}
push @r, $left ? "old-workers-stay" : "old-workers-gone";
push @r, Time::HiRes::time() - $t0 < 8 ? "prompt" : "slow";
$main::Got = "@r";
--- timeout: 60
--- response_body
closed:1001 old-workers-gone prompt



=== TEST 6: Socket.IO with its defaults over two workers: polls, posts and the upgrade land anywhere
--- init
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
for (1 .. 3) {
    push @r, ChatSIO::run("chat", chat => $chat, port => $ENV{TEST_NGINX_RT_PORT});
}
push @r, ChatSIO::run("burst", chat => $chat, port => $ENV{TEST_NGINX_RT_PORT});
my %pids;
my $signed_in = sub {
    open my $log, "<", "$Test::Nginx::Util::ServRoot/logs/error.log" or die;
    while (<$log>) {
        $pids{$1} = 1 if /\[info\] (\d+)#\d+: .*chat ws: authenticated as/;
    }
};
$signed_in->();
# 8 sessions all on one worker is 1 run in 128: more runs until both
# workers have had some (each run's result is checked above already)
for (1 .. 10) {
    last if keys %pids >= 2;
    ChatSIO::run("chat", chat => $chat, port => $ENV{TEST_NGINX_RT_PORT});
    $signed_in->();
}
push @r, "workers:" . scalar(keys %pids);
$main::Got = join "\n", @r;
--- timeout: 60
--- response_body
ack=text/over socket.io badAck=invalid_request:400 read=true received=text/over socket.io:tempId sameSeq=true typing=true
ack=text/over socket.io badAck=invalid_request:400 read=true received=text/over socket.io:tempId sameSeq=true typing=true
ack=text/over socket.io badAck=invalid_request:400 read=true received=text/over socket.io:tempId sameSeq=true typing=true
count=30 inOrder=true
workers:2



=== TEST 7: a member removed is refused at once on every worker, though each remembered a moment ago that they may send
--- init
ChatChats::setup();
my $port = $ENV{TEST_NGINX_RT_PORT};
# each on a connection of its own: the kernel spreads them over both
# workers (reuseport), so that both remember bob may send in the group
my $send = sub {
    my ($tid) = @_;
    my $r = HTTP::Tiny->new->request(POST =>
        "http://127.0.0.1:$port/api/messages",
        { headers => { 'Content-Type' => 'application/json',
                       Authorization =>
                           "Bearer $ChatChats::Tok{bob}{accessToken}" },
          content => JSON::PP::encode_json({ chatId => $main::G,
                                             tempId => $tid, type => "text",
                                             content => "hi" }) });
    return $r->{status};
};
$main::G = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "Everywhere", memberIds => [ $ChatChats::Id{bob} ] })->{chat}{id};
my %before;
$before{$send->("in$_")}++ for 1 .. 12;
ChatChats::api(alice => DELETE => "/api/chats/$main::G/members/$ChatChats::Id{bob}");
my %after;
$after{$send->("out$_")}++ for 1 .. 12;
$main::Got = "before:" . join(",", map { "$_=$before{$_}" } sort keys %before)
    . " after:" . join(",", map { "$_=$after{$_}" } sort keys %after);
--- response_body
before:201=12 after:404=12
--- no_error_log
[error]
[alert]
[emerg]

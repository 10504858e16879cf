# What sockets' sign-ins and closes cost the users' requests: 2,000
# signed-in sockets of 2,000 users close at once, and the REST requests
# made right after answer promptly, while each of those users still goes
# offline with the right lastSeen in their document.

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatRT;
use ChatJWT;
use ChatMongo;
use ChatSeed;
use IO::Socket::INET;
use Time::HiRes ();

our ($Got, %Id, @Users);
*Id = \%ChatChats::Id;

our $N = 2000;

BEGIN {
    ChatChats::init("656");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        chat_ws_auth_timeout 60s;
        # the test's sockets answer no ping while the others connect
        # (2,000 take more than the 40 s of the defaults on a slow day),
        # and a socket closed early would go offline before the closes
        chat_ws_ping_interval 600s;
        # thousands of sockets, all from 127.0.0.1
        chat_ws_unauth_per_address off;
        chat_ws_conn_per_address off;
    }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 300);
});

*main::redis_pipe = \&ChatSeed::redis_pipe;
*main::seed_users = \&ChatSeed::users;

# every user's socket, signed in
sub main::connect_all {
    my @s;
    for my $u (@_) {
        my ($s, $st) = ChatWS::open_ws("/ws?token=$u->{token}");
        die "no socket: $st" unless $st == 101;
        push @s, $s;
    }
    my $in = 0;
    for my $s (@s) {
        $in++ if ChatRT::wait_for($s, "authenticated", 30);
    }
    return ($in, @s);
}

# the seconds a REST call takes, and its status
sub main::timed {
    my $t0 = Time::HiRes::time();
    my ($status) = ChatChats::call(@_);
    return (Time::HiRes::time() - $t0, $status);
}

# the users of @Users whose document says offline, last seen in [$from, $to]
sub main::offline_count {
    my ($from, $to) = @_;
    my $mongo = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    my $r = $mongo->command(ChatMongo::doc(count => "users",
        query => ChatMongo::doc(
            _id => ChatMongo::doc('$in' => [ map { ChatMongo::oid($_->{id}) }
                                             @Users ]),
            online => JSON::PP::false(),
            lastSeenAt => ChatMongo::doc(
                '$gte' => ChatMongo::date(int($from * 1000)),
                '$lte' => ChatMongo::date(int($to * 1000))))));
    return $r->{n};
}

master_on();
workers(2);
worker_connections(2300);
# not in the reload pass (TEST_NGINX_USE_HUP): a load test: a reload between its blocks adds nothing
if ($ENV{TEST_NGINX_USE_HUP}) {
    plan skip_all => "not in the reload pass";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 2,000 sockets close at once: the POSTs and GET /api/chats made right after answer within 1 s
--- skip_eval: 1: !$ENV{TEST_NGINX_LOAD_MODULES}
--- init
# Test::Nginx runs a skipped block's init all the same (before NGINX)
return unless $ENV{TEST_NGINX_LOAD_MODULES};
ChatChats::setup();
my @r;
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
@main::Users = main::seed_users($main::N);
my ($in, @s) = main::connect_all(@main::Users);
push @r, "signed in:" . ($in == $main::N ? "all" : $in);
# the sign-ins' own work settles
Time::HiRes::sleep(2);
my ($warm) = main::timed(alice => POST => "/api/messages",
    { chatId => $chat, tempId => "warm", type => "text", content => "hi" });
my $closed = Time::HiRes::time();
close $_ for @s;
my ($worst, $bad) = (0, 0);
for my $i (1 .. 5) {
    my ($took, $st) = main::timed(alice => POST => "/api/messages",
        { chatId => $chat, tempId => "after$i", type => "text",
          content => "hi $i" });
    $bad++ unless $st == 201;
    $worst = $took if $took > $worst;
    ($took, $st) = main::timed(alice => GET => "/api/chats");
    $bad++ unless $st == 200;
    $worst = $took if $took > $worst;
}
my $done = Time::HiRes::time();
warn sprintf "056: a POST before the closes %.3f s, the slowest after %.3f s\n",
    $warm, $worst;
push @r, "answered:" . ($bad ? "$bad failed" : "all");
push @r, "within 1 s:" . ($worst < 1 ? "yes" : sprintf("no (%.2f s)", $worst));
# and each of them goes offline, last seen when their socket closed
my $n;
# (FerretDB as the tests run it syncs each update to disk: seconds)
for (1 .. 480) {
    $n = main::offline_count($closed - 1, Time::HiRes::time());
    last if $n == $main::N;
    Time::HiRes::sleep(0.25);
}
push @r, "offline:" . ($n == $main::N ? "all" : $n);
$main::Got = join " ", @r;
--- response_body
signed in:all answered:all within 1 s:yes offline:all
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: 300 users sign in and out at once: each document ends offline, last seen at their close, as REST shows it
--- init
ChatChats::setup();
my @r;
@main::Users = main::seed_users(300);
my ($in, @s) = main::connect_all(@main::Users);
push @r, "signed in:" . ($in == 300 ? "all" : $in);
my $u = ChatChats::api(alice => GET => "/api/users/$main::Users[150]{id}")->{user};
push @r, "online:" . ($u->{online} ? "yes" : "no");
Time::HiRes::sleep(0.5);
my $closed = Time::HiRes::time();
close $_ for @s;
my $n;
for (1 .. 240) {
    $n = main::offline_count($closed - 0.5, Time::HiRes::time());
    last if $n == 300;
    Time::HiRes::sleep(0.25);
}
push @r, "offline:" . ($n == 300 ? "all" : $n);
$u = ChatChats::api(alice => GET => "/api/users/$main::Users[150]{id}")->{user};
push @r, "rest:" . ($u->{online} ? "online" : "offline");
my $seen = $u->{lastSeen} // "";
push @r, "lastSeen:" . ($seen =~ /^\d{4}-\d\d-\d\dT/ ? "set" : "missing");
$main::Got = join " ", @r;
--- response_body
signed in:all online:yes offline:all rest:offline lastSeen:set
--- no_error_log
[error]
[alert]
[emerg]

# Sign-ins at once read their profiles together: 300 users whose
# profiles are not cached in Redis (a first sign-in, or Redis emptied)
# sign in on sockets all at once.  Each socket is told its own user, a
# user signed in on two sockets of the storm is told on both, a user
# whose document is gone is refused, and FerretDB runs far fewer finds
# than there are sign-ins (the profiles are read by _id in batches).

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatRT;
use ChatWS;
use ChatMongo;
use ChatSeed;

our ($Got);
our $N = 300;

BEGIN {
    ChatChats::init("703");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        chat_ws_auth_timeout 60s;
        # hundreds of sockets, all from 127.0.0.1
        chat_ws_unauth_per_address off;
        chat_ws_conn_per_address off;
    }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 120);
});

master_on();
workers(2);
worker_connections(1000);
plan 'no_plan';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 300 cold sign-ins at once: each socket its own profile, a user on two sockets both, a user with no document refused, fewer finds than a third of the sign-ins
--- init
my $port = $ENV{TEST_NGINX_MONGO_PORT};
my @u = ChatSeed::users($main::N + 1);
my $gone = pop @u;
ChatMongo->new(port => $port)->command(ChatMongo::doc(delete => "users",
    deletes => [ ChatMongo::doc(q => ChatMongo::doc(
                     _id => ChatMongo::oid($gone->{id})), limit => 0) ]));
# the first user twice
my @who = (@u, $u[0], $gone);
my @s = map {
    my ($s, $st) = ChatWS::open_ws("/ws");
    die "no socket: $st" unless $st == 101;
    $s
} @who;
my $before = ChatMongo::command_counts($port)->{find} // 0;
ChatRT::send_event($s[$_], "authenticate", { token => $who[$_]{token} })
    for 0 .. $#s;
my ($own, $wrong) = (0, 0);
for my $i (0 .. $#who - 1) {
    my $e = ChatRT::wait_for($s[$i], "authenticated", 30);
    my $user = $e ? $e->{data}{user} : {};
    if (($user->{id} // "") eq $who[$i]{id}
        && ($user->{phone} // "") eq $who[$i]{phone})
    {
        $own++;
    } else {
        $wrong++;
    }
}
my $refused = ChatRT::wait_for($s[-1], "authentication_error", 30);
my $finds = (ChatMongo::command_counts($port)->{find} // 0) - $before;
warn "103: $finds finds for ", scalar @who, " sign-ins\n";
$main::Got = "own $own, wrong $wrong, refused: "
    . ($refused ? $refused->{data}{message} : "no") . ", finds "
    . ($finds < @who / 3 ? "fewer than a third" : "$finds");
close $_ for @s;
--- response_body
own 301, wrong 0, refused: no such user, finds fewer than a third
--- no_error_log
[error]
[alert]
[emerg]

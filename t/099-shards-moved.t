# Presence after a change of the shard list: instances of the old list
# (one without shards, its presence on chat_redis; one with another list,
# which places carol on another shard) count bob's and carol's sockets
# and die with them (kill -9, nothing said).  This instance, of the new
# list, sweeps the servers they wrote to: bob and carol read offline, last
# seen, and their keys are gone there; dave, whose socket is also here,
# stays online.

use Test::Nginx::Socket;
use ChatTest;
use ChatRedis;
use ChatShards;
use ChatChats;
use ChatRT;
use ChatWS;
use ChatOther;
use Time::HiRes qw(sleep);

our ($Got, @Shards, @Others);

BEGIN {
    # each block starts and kills instances of its own: a reload between
    # blocks would add nothing
    if ($ENV{TEST_NGINX_USE_HUP}) {
        plan skip_all => "instances of its own: nothing for the reload pass to add";
    }
    my ($shards, $conf) = ChatShards::start(2);
    @Shards = @$shards;
    ChatChats::init("699", "$conf\n    chat_presence_ttl 2s;");
}

END { ChatOther::stop($_) for @Others }

sub shard_of { ChatShards::of(@_) }

sub holders { ChatShards::held(@_) }

# $who's "online" as alice reads their profile, once it is $want (12 s;
# within her budget of profile views), and with a last-seen time if $seen
sub online {
    my ($who, $want, $seen) = @_;
    my $u;
    for (1 .. 48) {
        $u = ChatChats::api(alice => GET => "/api/users/$ChatChats::Id{$who}")
             ->{user};
        last if ($u->{online} ? 1 : 0) == $want && (!$seen || $u->{lastSeen});
        sleep 0.25;
    }
    return "$who:" . ($u->{online} ? "on"
                                   : "off," . ($u->{lastSeen} ? "seen" : "?"));
}

# another instance of this block's configuration, edited; a socket of
# each of @who on it
sub other {
    my ($edit, @who) = @_;
    my ($port, $pid) = ChatOther::start($edit);
    push @main::Others, $pid;
    local $ChatWS::Port = $port;
    return ($pid, map { ChatRT::connect($_) } @who);
}

# what earlier servers left of presence on chat_redis goes, so that what
# shows there is this block's instances'
sub clear_chat_redis {
    ChatShards::redis($ENV{TEST_NGINX_REDIS_PORT}, "EVAL",
        "\"for _, k in ipairs(redis.call('KEYS', 'presence:*')) do "
        . "redis.call('DEL', k) end\"", 0);
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_');
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
});

plan 'no_plan';
no_shuffle();
run_tests();

__DATA__

=== TEST 1: the workers of an old shard list die: the servers they counted on are swept by the new list's, their users read offline
--- init
ChatChats::setup("dave");
my %Id = %ChatChats::Id;
my ($bob, $carol, $dave) = map { lc $Id{$_} } qw(bob carol dave);
my @r;
my @ports = map { $_->port } @main::Shards;

main::clear_chat_redis();

# a build without shards: bob and dave there, on chat_redis
my ($a, @sa) = main::other(sub { s/chat_redis_shards[^;]*;//g },
                           qw(bob dave));
# a list of one shard, the one the new list does not place carol on
my $k = 3 - main::shard_of($carol);
my ($b, @sb) = main::other(sub { s/chat_redis_shards[^;]*;/
                                   chat_redis_shards 127.0.0.1:$ports[$k - 1];/g },
                           qw(carol));
# dave here too
my $ws = ChatRT::connect("dave");

push @r, main::online($_, 1) for qw(bob carol dave);
push @r, "bob_on:" . main::holders("EXISTS", "'presence:s:$bob'");
push @r, "carol_on:" . (main::holders("EXISTS", "'presence:s:$carol'") eq $k
                        ? "old_shard" : "?");

# both old instances die, their sockets with them
kill "KILL", $a, $b;
close $_ for @sa, @sb;

push @r, main::online($_, 0) for qw(bob carol);
push @r, main::online("dave", 1);
for my $who (qw(bob carol)) {
    my $on = main::holders("EXISTS", "'presence:s:" . lc($Id{$who}) . "'");
    push @r, "${who}_left:" . (length $on ? $on : "none");
}
# chat_redis keeps no worker: the dead one swept, and this one beats there
# not
push @r, "chat_redis_workers:"
         . (ChatShards::redis($ENV{TEST_NGINX_REDIS_PORT}, "ZCARD",
                              "presence:workers"))[0];
close $ws;
$main::Got = "@r";
--- response_body
bob:on carol:on dave:on bob_on:0 carol_on:old_shard bob:off,seen carol:off,seen dave:on bob_left:none carol_left:none chat_redis_workers:0
--- timeout: 90
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: a hand-over whose script fails on the user's shard (a key of the wrong type there) is tried again each second: the user reads offline while it fails (nobody counts him; last seen at his dead worker's last beat, as the sweep wrote in chat_redis), and the hand-over lands once it can run
--- init
ChatChats::setup("dave");
my %Id = %ChatChats::Id;
my $bob = lc $Id{bob};
my @r;
my @ports = map { $_->port } @main::Shards;
my $port = $ports[main::shard_of($bob) - 1];

main::clear_chat_redis();

# a build without shards: bob there, on chat_redis
my ($a, @sa) = main::other(sub { s/chat_redis_shards[^;]*;//g }, "bob");
push @r, main::online("bob", 1);

# bob's presence hash on his shard is now a string, which the hand-over
# script fails on (WRONGTYPE), then his instance dies
ChatShards::redis($port, "SET", "presence:h:$bob", "x");
kill "KILL", $a;
close $_ for @sa;
# swept from chat_redis within the ttl (2 s), refused on his shard: no
# worker counts him, and the sweep's script noted when he was last seen
sleep 5;
push @r, "refused:" . main::online("bob", 0);
push @r, "chat_redis:" . (ChatShards::redis($ENV{TEST_NGINX_REDIS_PORT},
                                            "ZCARD", "presence:workers"))[0];
ChatShards::redis($port, "DEL", "presence:h:$bob");
# the hand-over, tried again each second, lands on his shard: his hash
# there says when he was last seen
my $at;
for (1 .. 40) {
    ($at) = ChatShards::redis($port, "HGET", "presence:h:$bob", "at");
    last if $at;
    sleep 0.25;
}
push @r, "taken:" . ($at ? "at_his_shard" : "none") . ","
         . main::online("bob", 0, 1);
$main::Got = "@r";
--- response_body
bob:on refused:bob:off,seen chat_redis:0 taken:at_his_shard,bob:off,seen
--- timeout: 90
--- no_error_log
[alert]
[emerg]
--- error_log
WRONGTYPE

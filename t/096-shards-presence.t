# Presence and pushes on Redis shards (chat_redis_shards, three of them):
# a user's presence keys are on the user's shard only, every shard knows
# the live workers, chat_redis holds none of it; a message's push reads
# the chat's members' cache on the chat's shard and each member's
# presence on theirs: an online member whose shard is not the chat's is
# not pushed, an offline one is, a mute drops the cache on the chat's
# shard; the user's document says online and offline as before; the
# user's shard restarted empty: the worker writes its users there again
# and the online member is still not pushed.

use Test::Nginx::Socket;
use ChatTest;
use ChatRedis;
use ChatShards;
use ChatChats;
use ChatRT;
use ChatPush;
use Time::HiRes qw(sleep);

our ($Got, @Shards);

BEGIN {
    # one block: a reload between blocks would add nothing
    if ($ENV{TEST_NGINX_USE_HUP}) {
        plan skip_all => "one block: nothing for the reload pass to add";
    }
    my ($shards, $conf) = ChatShards::start(3);
    @Shards = @$shards;
    ChatPush::start("696", "\n    $conf");
}

sub shard_of { ChatShards::of(@_) }

sub holders { ChatShards::held(@_) }

# "its_shard" when the command answers true on the shard of $id alone
sub on_shard_of {
    my ($id, @cmd) = @_;
    my $on = holders(@cmd);
    return $on eq shard_of($id) ? "its_shard" : "'$on'";
}

# waits (5 s at most) until holders(@cmd) is $want
sub wait_holders {
    my ($want, @cmd) = @_;
    for (1 .. 50) {
        return 1 if holders(@cmd) eq $want;
        sleep 0.1;
    }
    return 0;
}

# bob's "online" as alice reads his profile, once it is $want (3 s)
sub online {
    my ($want) = @_;
    my $u;
    for (1 .. 30) {
        $u = ChatChats::api(alice => GET => "/api/users/$ChatChats::Id{bob}")
             ->{user};
        last if ($u->{online} ? 1 : 0) == $want;
        sleep 0.1;
    }
    return $u->{online} ? "on" : "off," . ($u->{lastSeen} ? "seen" : "?");
}

my $n = 0;

# alice's message in $g: whose devices were pushed
sub pushed {
    my ($g) = @_;
    $n++;
    ChatChats::api(alice => POST => "/api/messages",
        { chatId => $g, tempId => "sp-$$-$n", type => "text",
          content => "m$n" });
    return ChatPush::whom(ChatPush::pushes());
}

plan 'no_plan';
no_shuffle();
run_tests();

__DATA__

=== TEST 1: presence on the user's shard, pushes by the chat's members' cache on the chat's shard and each member's presence on theirs, through a shard restarted empty
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup("dave");
my %Id = %ChatChats::Id;
my $bob = lc $Id{bob};
my @r;
for my $who (qw(alice bob carol dave)) {
    ChatChats::api($who => PUT => "/api/devices",
        { platform => "android", token => "tok-$who",
          bundleId => "com.example.chat" });
}
# a group on another shard than bob's: his presence is not where the
# members' cache is
my $g;
for (1 .. 40) {
    $g = ChatChats::api(alice => POST => "/api/chats/group",
        { name => "pres", memberIds => [ map { $Id{$_} }
                                         qw(bob carol dave) ] })
        ->{chat}{id};
    last if main::shard_of($g) != main::shard_of($bob);
}
ChatPush::pushes();

# what earlier test files' servers left on chat_redis (they had no
# shards: their workers' beats stay, nothing sweeps them now) goes, so
# that what shows there now is this server's
ChatShards::redis($ENV{TEST_NGINX_REDIS_PORT}, "EVAL",
    "\"for _, k in ipairs(redis.call('KEYS', 'presence:*')) do "
    . "redis.call('DEL', k) end\"", 0);
# bob online: his presence on his shard, the worker's beat on each
my $ws = ChatRT::connect("bob");
main::wait_holders(main::shard_of($bob), "EXISTS", "'presence:s:$bob'");
push @r, "presence:" . main::on_shard_of($bob, "EXISTS",
                                         "'presence:s:$bob'");
push @r, "workers:" . main::holders("ZCARD", "presence:workers");
my @main = grep { /\S/ } ChatShards::redis($ENV{TEST_NGINX_REDIS_PORT},
                                           "KEYS", "'presence:*'");
push @r, "on_chat_redis:" . (@main ? "@main" : "none");
push @r, "document:" . main::online(1);

# a message: carol and dave pushed, bob (online, on another shard) not
push @r, "pushed:" . main::pushed($g);
push @r, "members_cache:" . main::on_shard_of($g, "EXISTS", "'pushm:$g'");
# dave mutes: the cache dropped on the chat's shard, dave not pushed
ChatChats::api(dave => PUT => "/api/chats/$g/settings",
               { muted => JSON::PP::true });
push @r, "dropped:" . main::on_shard_of($g, "GET", "'pushg:$g'");
push @r, "muted:" . main::pushed($g);

# bob goes: offline on his shard, in his document, and pushed
close $ws;
main::wait_holders("", "EXISTS", "'presence:s:$bob'");
push @r, "gone:" . (main::holders("EXISTS", "'presence:s:$bob'") || "none");
push @r, "document:" . main::online(0);
push @r, "offline:" . main::pushed($g);

# back; then his shard restarted empty: his presence written there again
# by the worker (it beats there and finds itself unknown)
$ws = ChatRT::connect("bob");
main::wait_holders(main::shard_of($bob), "EXISTS", "'presence:s:$bob'");
my $k = main::shard_of($bob);
$main::Shards[$k - 1]->stop;
$main::Shards[$k - 1]->start;
my $back = main::wait_holders(main::shard_of($bob), "EXISTS",
                              "'presence:s:$bob'")
           || main::wait_holders(main::shard_of($bob), "EXISTS",
                                 "'presence:s:$bob'");
push @r, "restarted:" . ($back ? main::on_shard_of($bob, "EXISTS",
                                                   "'presence:s:$bob'")
                               : "lost");
push @r, "workers_after:" . main::holders("ZCARD", "presence:workers");
push @r, "document:" . main::online(1);
push @r, "online_again:" . main::pushed($g);
close $ws;
$main::Got = "@r";
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
presence:its_shard workers:1,2,3 on_chat_redis:none document:on pushed:carol,dave members_cache:its_shard dropped:its_shard muted:carol gone:none document:off,seen offline:bob,carol restarted:its_shard workers_after:1,2,3 document:on online_again:carol
--- timeout: 90
--- error_log
chat redis: lost connection
--- no_error_log
[alert]
[emerg]

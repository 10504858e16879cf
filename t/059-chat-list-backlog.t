# The chat list's rebuild after a Redis loss, bounded: a chat with
# 100,000 unread (seeded straight into the store), some of my own, a
# message deleted for everyone and two deleted for me among them;
# FLUSHALL; GET /api/chats answers within a second with the exact unread
# count and the same page as before the flush; again after a read to the
# middle.

use Test::Nginx::Socket;

use ChatTest;
use ChatRedis;
use ChatChats;
use ChatMongo;
use JSON::PP;
use Time::HiRes qw(time sleep);

our ($Redis, $Got, %Chat, %Seeded, $N);

BEGIN {
    $Redis = ChatRedis->new->start;
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    ChatChats::init("659");
}

*Id = \%ChatChats::Id;
our %Id;

$N = 100_000;

sub redis {
    system("redis-cli", "-p", $Redis->port, @_) == 0 or die "redis-cli @_";
}

sub send_msg {
    my ($who, $chat, $temp, $text) = @_;
    return ChatChats::api($who => POST => "/api/messages",
        { chatId => $chat, tempId => $temp, type => "text",
          content => $text })->{message};
}

# bob's row of the big chat, as JSON with sorted keys
sub row {
    my ($items) = @_;
    my ($r) = grep { $_->{id} eq $Chat{big} } @$items;
    return JSON::PP->new->canonical->encode($r // {});
}

# the page of bob, timed: (seconds, row, unreadCount, last seq)
sub timed_page {
    my $t0 = Time::HiRes::time();
    my $items = ChatChats::api(bob => GET => "/api/chats?limit=50")->{items};
    my $dt = time - $t0;
    my ($r) = grep { $_->{id} eq $Chat{big} } @$items;
    return ($dt, row($items), $r->{unreadCount} // "none",
            $r->{lastMessage} ? $r->{lastMessage}{seq} : "none");
}

# a FLUSHALL, then the page: "<unread> <last> <fast or slow> <same or not>"
sub after_flush {
    my ($expect) = @_;
    # the facts are written after the commit, in batches: give them time
    sleep 1;
    my (undef, $before) = timed_page();
    redis("FLUSHALL");
    my ($dt, $after, $unread, $last) = timed_page();
    my (undef, $again) = timed_page();
    Test::More::diag(sprintf "the page after FLUSHALL: %.0f ms", $dt * 1000);
    return join " ", $unread, $last,
        ($dt < 1 ? "fast" : sprintf("slow: %.2f s", $dt)),
        ($before eq $after ? "same" : "differs:\n$before\n$after\n"),
        ($before eq $again ? "same" : "rebuilt differs:\n$before\n$again\n");
}

# seeding 100,000 messages takes a while, and what this checks is a time:
# the plain pass only (not under the sanitizers, not with reloads)
if ($ENV{TEST_NGINX_USE_HUP} || !$ENV{TEST_NGINX_LOAD_MODULES}) {
    plan skip_all => "the plain pass only (not under --asan or reload)";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 100,000 unread with my own, deleted for everyone and for me among them: after FLUSHALL, within a second, exact, the same page
--- init
ChatChats::setup();
$main::Chat{big} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "big", memberIds => [ $main::Id{bob} ] })->{chat}{id};
main::send_msg(alice => $main::Chat{big}, "a$_", "before $_") for 1 .. 3;
ChatChats::api(bob => POST => "/api/chats/$main::Chat{big}/read", { upToSeq => 2 });
# a first rebuild, while the chat is small
main::redis("FLUSHALL");
ChatChats::api(bob => GET => "/api/chats");

# alice's seqs 4 .. N + 3 straight into the store
my $N = $main::N;
my $mongo = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
my $now = int(time() * 1000);
my $base = sprintf("%08x%06x", time(), $$ & 0xffffff);
my @docs;
for my $seq (4 .. $N + 3) {
    my $id = $base . sprintf("%010x", $seq);
    $main::Seeded{$seq} = $id;
    push @docs, [ _id => ChatMongo::oid($id),
        chatId => ChatMongo::oid($main::Chat{big}), seq => ChatMongo::i64($seq),
        senderId => ChatMongo::oid($main::Id{alice}), tempId => "seed$seq",
        type => "text", content => "filler $seq",
        createdAt => ChatMongo::date($now) ];
}
$mongo->insert(messages => \@docs, 2000);
$mongo->command(ChatMongo::doc(update => "chats", updates => [ ChatMongo::doc(
    q => ChatMongo::doc(_id => ChatMongo::oid($main::Chat{big})),
    u => ChatMongo::doc('$set' => ChatMongo::doc(lastSeq => ChatMongo::i64($N + 3)))) ]));
# Redis's counter of numbers is behind the seeding: taken again from it
main::redis("FLUSHALL");
ChatChats::api(bob => GET => "/api/chats");

# mine at N + 4 .. N + 6, alice's at N + 7, N + 8; the first send after
# the flush takes its floor from the index near the chat's lastSeq (the
# highest number sorted from the whole chat: seconds on FerretDB)
my $t0 = Time::HiRes::time();
my @mine = (main::send_msg(bob => $main::Chat{big}, "b1", "mine 1"));
my $first = Time::HiRes::time() - $t0;
Test::More::diag(sprintf "the first send after FLUSHALL: %.0f ms", $first * 1000);
push @mine, map { main::send_msg(bob => $main::Chat{big}, "b$_", "mine $_") } 2 .. 3;
my @hers = map { main::send_msg(alice => $main::Chat{big}, "a1$_", "after $_") } 1 .. 2;
# deleted for everyone: one of alice's seeded, one of mine; for me: one
# seeded and one of alice's new ones
ChatChats::api(alice => DELETE => "/api/messages/$main::Seeded{500}?forEveryone=true");
ChatChats::api(bob => DELETE => "/api/messages/$mine[1]{id}?forEveryone=true");
ChatChats::api(bob => DELETE => "/api/messages/$main::Seeded{1000}");
ChatChats::api(bob => DELETE => "/api/messages/$hers[0]{id}");
# again: the same fact, stored once
ChatChats::api(bob => DELETE => "/api/messages/$main::Seeded{1000}");
# (2, N + 8]: N + 6 numbers, less 500, 1000 and N + 4 .. N + 7
$main::Got = main::after_flush() . " " . ($N + 8)
    . " " . ($mine[0]{seq} == $N + 4 ? "" : "seq:$mine[0]{seq} ")
    . ($first < 1 ? "send:fast" : sprintf "send:%.1fs", $first);
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
100000 100008 fast same same 100008 send:fast
--- timeout: 600
--- no_error_log
[error]
[alert]
[emerg]
were not stored
lost a fact



=== TEST 2: read to the middle: the facts below it go, the count after FLUSHALL is still exact
--- init
# the marker's bound: number 50,000 held by the chat, one search of the
# index (the chat's highest number read all 100,008 documents)
my $t0 = Time::HiRes::time();
my $m = ChatChats::api(bob => POST => "/api/chats/$main::Chat{big}/read",
                       { upToSeq => 50_000 });
my $dt = Time::HiRes::time() - $t0;
Test::More::diag(sprintf "the read receipt: %.0f ms", $dt * 1000);
# past the chat's last number: bound by it, found near lastSeq
my $t1 = Time::HiRes::time();
my $past = ChatChats::api(bob => POST => "/api/chats/$main::Chat{big}/delivered",
                          { upToSeq => 200_000 });
my $dt1 = Time::HiRes::time() - $t1;
Test::More::diag(sprintf "the delivery receipt past the end: %.0f ms", $dt1 * 1000);
# (50000, N + 8]: 50,008 numbers, less N + 4 .. N + 7
$main::Got = main::after_flush()
    . " read:" . ($dt < 1 ? "fast" : sprintf "%.1fs", $dt)
    . " past:" . ($dt1 < 1 ? "fast" : sprintf "%.1fs", $dt1)
    . " " . JSON::PP::encode_json([$m->{readSeq}, $past->{deliveredSeq}]);
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
50004 100008 fast same same read:fast past:fast [50000,100008]
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]
were not stored
lost a fact



=== TEST 3: a member from before the facts (their mark gone): the first rebuild reads their own and hidden messages once and stores them again (duplicates are fine): still exact and fast
--- init
my $mongo = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
$mongo->command(ChatMongo::doc(delete => "listx", deletes => [ ChatMongo::doc(
    q => ChatMongo::doc(_id => "$main::Chat{big}:$main::Id{bob}:b"),
    limit => 0) ]));
$main::Got = main::after_flush();
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
50004 100008 fast same same
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]
were not stored
lost a fact

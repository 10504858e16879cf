# Message search that scales: a chat of 100,000 messages (seeded straight
# into the store), each request reading at most chat_search_scan (500) sequence
# numbers and resuming with its cursor; the first page's time; paging
# through the whole chat and across my chats finds every match once.

use Test::Nginx::Socket;
use ChatTest;
use ChatChats;
use ChatMongo;
use JSON::PP;
use Time::HiRes qw(time);

BEGIN { ChatChats::init("652") }

*Id = \%ChatChats::Id;
our (%Id, %Chat, @Planted, %Seeded, $Got);

our $N = 100_000;

sub send_msg {
    my ($who, $chat, $temp, $text) = @_;
    return ChatChats::api($who => POST => "/api/messages",
        { chatId => $chat, tempId => $temp, type => "text", content => $text })->{message};
}

# seqs of the matches a page list gives, and where it says to resume
sub page {
    my ($who, $path) = @_;
    my $b = ChatChats::api($who => GET => $path);
    return $b;
}

# every page from the first: (seqs or ids, number of requests)
sub walk {
    my ($who, $path, $key) = @_;
    my (@got, $cursor);
    my $requests = 0;
    while (1) {
        my $b = page($who => $path . (defined $cursor ? "&cursor=$cursor" : ""));
        $requests++;
        push @got, map { $_->{$key} } @{ $b->{items} };
        last unless defined($cursor = $b->{nextCursor});
        die "no end" if $requests > 1000;
    }
    return (\@got, $requests);
}

# seeding 100,000 messages takes minutes under the sanitizers and again
# with a reload between blocks: what it checks (bounds and paging) is
# the same in every pass, so it runs in the plain pass only
if ($ENV{TEST_NGINX_USE_HUP} || !$ENV{TEST_NGINX_LOAD_MODULES}) {
    plan skip_all => "the plain pass only (not under --asan or reload)";
} else {
    plan 'no_plan';
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a chat of 100,000 messages: the first page reads 500 numbers (the default) and says where to resume
--- init
ChatChats::setup();
$main::Chat{big} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "big", memberIds => [ $main::Id{bob} ] })->{chat}{id};
main::send_msg(alice => $main::Chat{big}, "first", "a needle at the bottom");

# seqs 2 .. N + 1 straight into the store; 37 of them match, spread out
my %plant = map { (1 + int(($_ + 1) * $main::N / 37)) => 1 } 0 .. 36;
my $mongo = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
my $now = int(time() * 1000);
my $base = sprintf("%08x%06x", time(), $$ & 0xffffff);
my @docs;
for my $seq (2 .. $main::N + 1) {
    my $id = $base . sprintf("%010x", $seq);
    $main::Seeded{$seq} = $id;
    push @docs, [ _id => ChatMongo::oid($id),
        chatId => ChatMongo::oid($main::Chat{big}), seq => ChatMongo::i64($seq),
        senderId => ChatMongo::oid($main::Id{alice}), tempId => "seed$seq",
        type => "text",
        content => $plant{$seq} ? "the NeEdLe number $seq" : "filler text $seq",
        createdAt => ChatMongo::date($now) ];
}
$mongo->insert(messages => \@docs, 2000);
$mongo->command(ChatMongo::doc(update => "chats", updates => [ ChatMongo::doc(
    q => ChatMongo::doc(_id => ChatMongo::oid($main::Chat{big})),
    u => ChatMongo::doc('$set' => ChatMongo::doc(lastSeq => ChatMongo::i64($main::N + 1)))) ]));
@main::Planted = ((sort { $b <=> $a } keys %plant), 1);

my $b = main::page(bob => "/api/chats/$main::Chat{big}/messages/search?q=needle&limit=20");
$main::Got = join " ", join(",", map { $_->{seq} } @{ $b->{items} }),
    $b->{nextCursor} // "none", $b->{scanned}{toSeq} // "none",
    scalar(@main::Planted);
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
100001 99566 99566 38
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: the first page's work is bounded: its median of 9 is well under what a scan of the chat costs (the target, 50 ms, printed)
--- skip_eval: 1: !$ENV{TEST_NGINX_LOAD_MODULES}
--- init
my @t;
for (1 .. 9) {
    my $t0 = Time::HiRes::time();
    main::page(bob => "/api/chats/$main::Chat{big}/messages/search?q=needle&limit=20");
    push @t, Time::HiRes::time() - $t0;
}
@t = sort { $a <=> $b } @t;
my $median = $t[4] * 1000;
Test::More::diag(sprintf "first page of a search in %d messages: median %.1f ms", $main::N, $median);
# the target is 50 ms here (the median is printed); the assert (500 ms)
# leaves a loaded machine room (three CI passes at once) and still fails
# a scan of the whole chat (seconds)
$main::Got = $median < 500 ? "bounded" : sprintf("slow: %.1f ms", $median);
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
bounded
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: paging with the cursor through the whole chat finds every match once; deleted ones left out
--- init
# one deleted for everyone, one deleted for bob only
my ($gone, $mine) = @main::Planted[5, 10];
ChatChats::api(alice => DELETE => "/api/messages/$main::Seeded{$gone}?forEveryone=true");
ChatChats::api(bob => DELETE => "/api/messages/$main::Seeded{$mine}");
my @bob = grep { $_ != $gone && $_ != $mine } @main::Planted;
my @alice = grep { $_ != $gone } @main::Planted;

my ($b, $nb) = main::walk(bob => "/api/chats/$main::Chat{big}/messages/search?q=needle&limit=3", "seq");
my ($a, $na) = main::walk(alice => "/api/chats/$main::Chat{big}/messages/search?q=NEEDLE&limit=50", "seq");
my %seen;
my $dups = grep { $seen{$_}++ } @$b;
$main::Got = join " ",
    ("@$b" eq "@bob" ? "bob-ok" : "bob: @$b vs @bob"),
    ("@$a" eq "@alice" ? "alice-ok" : "alice: @$a vs @alice"),
    "dups=$dups",
    ($na >= 200 && $na <= 202 ? "bounded" : "requests=$na"),
    ($nb >= $na ? "pages-ok" : "pages=$nb");
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
bob-ok alice-ok dups=0 bounded pages-ok
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: across my chats: newest chat first, every match once, resuming chat by chat
--- init
$main::Chat{small} = ChatChats::api(bob => POST => "/api/chats/group",
    { name => "small", memberIds => [ $main::Id{alice} ] })->{chat}{id};
my @small = map { main::send_msg(bob => $main::Chat{small}, "n$_", "needle $_ in small")->{id} } 1 .. 2;
main::send_msg(bob => $main::Chat{small}, "n3", "nothing");
$main::Chat{other} = ChatChats::api(carol => POST => "/api/chats/group",
    { name => "other", memberIds => [ $main::Id{alice} ] })->{chat}{id};
main::send_msg(carol => $main::Chat{other}, "c1", "needle bob cannot see");

my ($gone, $mine) = @main::Planted[5, 10];
my @big = map { $_ == 1 ? undef : $main::Seeded{$_} }
    grep { $_ != $gone && $_ != $mine } @main::Planted;
my ($ids) = main::walk(bob => "/api/messages/search?q=needle&limit=7", "id");
my $first = pop @$ids;
my @expect = (reverse(@small), grep { defined } @big);
my %seen;
my $dups = grep { $seen{$_}++ } @$ids, $first;
my $b = main::page(bob => "/api/messages/search?q=needle&limit=50");
$main::Got = join " ",
    ("@$ids" eq "@expect" ? "order-ok" : "got: @$ids vs @expect"),
    "dups=$dups", scalar(@$ids) + 1,
    (defined $b->{scanned}{chatId} && $b->{scanned}{chatId} eq $main::Chat{big} ? "scanned-ok" : "scanned: " . encode_json($b->{scanned} // {}));
ChatChats::dyn($block, as => "bob", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
order-ok dups=0 38 scanned-ok
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 5: bad cursors still 400; a cursor of the older format starts that chat from its top
--- init
my $s = $main::Chat{big};
my @cases = (
    [ "/api/chats/$s/messages/search?q=needle&before=x", 400, qr/before/ ],
    [ "/api/chats/$s/messages/search?q=needle&before=0", 400, qr/before/ ],
    [ "/api/chats/$s/messages/search?q=needle&cursor=-5", 400, qr/before/ ],
    [ "/api/messages/search?q=needle&cursor=x", 400, qr/cursor/ ],
    [ "/api/messages/search?q=needle&cursor=1.zz", 400, qr/cursor/ ],
    [ "/api/messages/search?q=needle&cursor=.$s", 400, qr/cursor/ ],
    [ "/api/messages/search?q=needle&limit=1&cursor=1764000000000.$s", 200, qr/^\{"items":\[\{[^\[]*"seq":100001,/ ],
    [ "/api/chats/$s/messages/search?q=needle&limit=1&before=999999999999", 200, qr/^\{"items":\[\{[^\[]*"seq":100001,/ ],
);
ChatChats::dyn($block, as => "bob",
    request => [ map { "GET $_->[0]" } @cases ],
    error_code => [ map { $_->[1] } @cases ],
    response_body_like => [ map { $_->[2] } @cases ]);
--- no_error_log
[alert]
[emerg]

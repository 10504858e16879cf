# Numbers without a message, and messages whose send never heard back:
# a young hole (a number taken in Redis whose message is not stored yet)
# stops what `synced` and `?after=` say they read through; an old one is
# filled with a tombstone by the reader that meets it; a send whose
# insert the store kept while its answer was lost (a proxy in front of
# FerretDB drops that one answer) fails, and its retry finds the message
# and publishes it, once.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatMongo;
use DelayProxy;
use JSON::PP ();
use Time::HiRes ();

our ($ProxyPid, $ProxyPort, $Got, $Mongo);

BEGIN {
    $Mongo = $ENV{TEST_NGINX_MONGO_PORT};
    ($ProxyPid, $ProxyPort) = DelayProxy::start($Mongo, 0,
                                                lose => "lost-answer-91");
    $ENV{TEST_NGINX_MONGO_PORT} = $ProxyPort;
    ChatChats::init("691");
}

END { DelayProxy::stop($ProxyPid) if $ProxyPid }

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
});

sub main::redis {
    my $out = `redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} @_`;
    chomp $out;
    return $out;
}

sub main::send {
    my ($who, $chat, $temp, $text) = @_;
    return ChatChats::call($who => POST => "/api/messages",
        { chatId => $chat, tempId => $temp, type => "text",
          content => $text });
}

sub main::private_chat {
    my ($a, $b) = @_;
    return ChatChats::api($a => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{$b} })->{chat}{id};
}

# the events of a sync from $after, as "text/seq" and "synced:<lastSeq>"
sub main::sync_from {
    my ($s, $chat, $after, $id) = @_;
    ChatRT::send_event($s, "sync", { chats => { $chat => $after } }, $id);
    my @out;
    for (1 .. 20) {
        my $e = ChatRT::next_event($s, 3) or last;
        if ($e->{event} eq "new_message") {
            my $m = $e->{data}{message};
            push @out, ($m->{content}{text} // $m->{type}) . "/" . $m->{seq};
        } elsif ($e->{event} eq "synced") {
            push @out, "synced:" . $e->{data}{chats}{$chat}{lastSeq};
            last;
        }
    }
    return join " ", @out;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a young hole: synced and ?after= say they read up to the number below it; everything read is sent
--- init
ChatChats::setup();
my @r;
my $chat = main::private_chat("alice", "carol");
my ($st, $b) = main::send("alice", $chat, "h1-one", "one");
my $s = $b->{message}{seq};
# a number taken, as a send does before its insert
my $hole = main::redis("INCR", "seq:{$chat}");
($st, $b) = main::send("alice", $chat, "h1-three", "three");
push @r, "hole " . ($hole - $s) . " next " . ($b->{message}{seq} - $s);
my $c = ChatRT::connect("carol");
my $got = main::sync_from($c, $chat, $s, 1);
$got =~ s/\/$_\b/\/+@{[$_ - $s]}/g for ($s + 2, $s);
$got =~ s/synced:$s\b/synced:+0/;
push @r, $got;
($st, $b) = ChatChats::call(carol => GET => "/api/chats/$chat/messages?after=$s");
push @r, "rest $st " . scalar(@{$b->{items}}) . " through +"
    . ($b->{through} - $s);
# from above the hole, nothing holds it back
($st, $b) = ChatChats::call(carol => GET =>
    "/api/chats/$chat/messages?after=" . ($s + 1));
push @r, "above " . (exists $b->{through} ? "through" : "none");
$main::Got = "@r";
--- response_body
hole 1 next 2 three/+2 synced:+0 rest 200 1 through +0 above none
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: an old hole is filled with a tombstone by the reader, and sync goes past it
--- init
ChatChats::setup();
my @r;
my $chat = main::private_chat("alice", "bob");
my ($st, $b) = main::send("alice", $chat, "h2-one", "one");
my $s = $b->{message}{seq};
main::redis("INCR", "seq:{$chat}");
($st, $b) = main::send("alice", $chat, "h2-three", "three");
my $id = $b->{message}{id};
# the message above the hole was stored a minute ago: the send that took
# the number below it has long failed or died with its worker
my $m = ChatMongo->new(port => $main::Mongo);
$m->command(ChatMongo::doc(update => "messages", updates => [ ChatMongo::doc(
    q => ChatMongo::doc(_id => ChatMongo::oid($id)),
    u => ChatMongo::doc('$set' => ChatMongo::doc(
        createdAt => ChatMongo::date(int(Time::HiRes::time() * 1000)
                                     - 60000)))) ]));
my $c = ChatRT::connect("bob");
my $got = main::sync_from($c, $chat, $s, 2);
$got =~ s/\/$_\b/\/+@{[$_ - $s]}/g for ($s + 2);
$got =~ s/synced:@{[$s + 2]}\b/synced:+2/;
push @r, $got;
($st, $b) = ChatChats::call(bob => GET => "/api/chats/$chat/messages?after=$s");
push @r, join ",", map { "$_->{type}/+" . ($_->{seq} - $s) } @{$b->{items}};
push @r, exists $b->{through} ? "through" : "no-through";
$main::Got = "@r";
--- response_body
three/+2 synced:+2 tombstone/+1,text/+2 no-through
--- error_log eval
qr/: 1 numbers held no message, tombstones written/
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: an insert stored while its answer was lost: the send fails, its retry finds it and publishes it once
--- init
ChatChats::setup();
my @r;
my $chat = main::private_chat("alice", "carol");
main::send("alice", $chat, "h3-zero", "zero");
my $c = ChatRT::connect("carol");
ChatRT::drain($c, 0.5);
my ($st, $b) = main::send("alice", $chat, "lost-answer-91", "kept");
push @r, "first " . ($st >= 500 ? "failed" : $st);
my @e = grep { $_->{event} eq "new_message" } ChatRT::drain($c, 1);
push @r, "live " . scalar(@e);
($st, $b) = main::send("alice", $chat, "lost-answer-91", "kept");
push @r, "retry $st $b->{message}{content}{text}";
my $e = ChatRT::wait_for($c, "new_message", 3);
push @r, $e && $e->{data}{message}{id} eq $b->{message}{id}
    ? "published" : "not published";
($st, $b) = main::send("alice", $chat, "lost-answer-91", "kept");
@e = grep { $_->{event} eq "new_message" } ChatRT::drain($c, 1);
push @r, "again $st " . scalar(@e);
$main::Got = "@r";
--- response_body
first failed live 0 retry 200 kept published again 200 0
--- no_error_log
[alert]
[emerg]



=== TEST 4: messages deleted for me are no holes: sync goes past them at once
--- init
ChatChats::setup();
my @r;
my $chat = main::private_chat("bob", "carol");
my ($st, $b) = main::send("bob", $chat, "h4-one", "one");
my $s = $b->{message}{seq};
for my $i (2 .. 4) {
    ($st, $b) = main::send("bob", $chat, "h4-$i", "m$i");
    ($st) = ChatChats::call(carol => DELETE => "/api/messages/$b->{message}{id}");
    push @r, "hid $st";
}
main::send("bob", $chat, "h4-five", "five");
my $c = ChatRT::connect("carol");
my $got = main::sync_from($c, $chat, $s, 4);
$got =~ s/\/$_\b/\/+@{[$_ - $s]}/g for ($s + 4);
$got =~ s/synced:@{[$s + 4]}\b/synced:+4/;
push @r, $got;
($st, $b) = ChatChats::call(carol => GET => "/api/chats/$chat/messages?after=$s");
push @r, scalar(@{$b->{items}}) . " " . (exists $b->{through} ? "through" : "no-through");
$main::Got = "@r";
--- response_body
hid 200 hid 200 hid 200 five/+4 synced:+4 1 no-through
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 5: a sync whose read the store fails says unavailable for that chat, not not_found
--- init
ChatChats::setup();
my $chat = main::private_chat("alice", "carol");
my $c = ChatRT::connect("carol");
# the store goes away: the proxy in front of FerretDB stops (last block)
DelayProxy::stop($main::ProxyPid);
$main::ProxyPid = undef;
Time::HiRes::sleep(1.5);
ChatRT::send_event($c, "sync", { chats => { $chat => 0 } }, 5);
my $e = ChatRT::wait_for($c, "synced", 15);
$main::Got = $e ? "synced " . ($e->{data}{chats}{$chat}{error} // "no error")
                : "no synced";
--- response_body
synced unavailable
--- error_log
a read for a socket failed
--- no_error_log
[alert]
[emerg]

# Mentions: a message names the users it mentions (`mentions`, user ids);
# each member's row of the chat list counts the unread messages that
# mention them (`unreadMentions`), exactly, as it counts the unread: a
# message deleted for everyone or for me no longer counts, reading past
# it neither; after FLUSHALL the same counts, rebuilt from the facts
# MongoDB keeps.  The same on GET /api/chats/:id, on the socket's
# new_message; bad mentions are refused with nothing stored.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use ChatChats;
use ChatRT;
use JSON::PP;
use Time::HiRes qw(sleep);

our ($Redis, $Got, $Group);

BEGIN {
    $Redis = ChatRedis->new->start;
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    # 250 messages of one user at once: no send budget
    ChatChats::init("666", "chat_send_rate off;");
}

*Id = \%ChatChats::Id;
our %Id;

sub redis {
    system("redis-cli", "-p", $Redis->port, @_) == 0 or die "redis-cli @_";
}

my $n = 0;

sub send_msg {
    my ($who, $text, @mentioned) = @_;
    $n++;
    return ChatChats::api($who => POST => "/api/messages",
        { chatId => $Group, tempId => "mn-$$-$n", type => "text",
          content => $text,
          (@mentioned ? (mentions => [ map { $Id{$_} } @mentioned ]) : ()) })
        ->{message};
}

# "who=unreadMentions/unreadCount" from the list, and the same from
# GET /api/chats/:id, or what differs
sub counts {
    my @out;
    for my $who (@_) {
        my ($row) = grep { $_->{id} eq $Group }
            @{ ChatChats::api($who => GET => "/api/chats?limit=50")->{items} };
        my $one = ChatChats::api($who => GET => "/api/chats/$Group")->{chat};
        my $a = "$row->{unreadMentions}/$row->{unreadCount}";
        my $b = "$one->{unreadMentions}/$one->{unreadCount}";
        push @out, $a eq $b ? "$who=$a" : "$who=$a but alone $b";
    }
    return join " ", @out;
}

sub names {
    my ($m) = @_;
    my %name = reverse %Id;
    return join ",", map { $name{$_} // $_ } @{ $m->{mentions} || [] };
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
_EOC_
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: mentions stored as sent (each once, not the sender's own), counted per member, exactly; deletes and reads follow; the same after FLUSHALL
--- init
ChatChats::setup("dave");
$main::Group = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "mentions", memberIds => [ $main::Id{bob}, $main::Id{carol} ] })
    ->{chat}{id};
my @r;
my $m1 = main::send_msg(alice => "hi bob", "bob");
my $m2 = main::send_msg(alice => "hi all", "bob", "carol", "alice", "bob");
push @r, main::names($m1), main::names($m2);
my $m3 = main::send_msg(carol => "bob?", "bob");
my $m4 = main::send_msg(alice => "no one");
my $m5 = main::send_msg(alice => "oops bob", "bob");
my $m6 = main::send_msg(carol => "hidden bob", "bob");
my $m7 = main::send_msg(bob => "alice!", "alice", "dave");
ChatChats::api(alice => DELETE => "/api/messages/$m5->{id}?forEveryone=true");
ChatChats::api(bob => DELETE => "/api/messages/$m6->{id}");
my $got = ChatChats::api(carol => GET => "/api/messages/$m2->{id}")->{message};
push @r, main::names($got), main::names($m4) eq "" && !exists $m4->{mentions} ? "none" : "m4 has mentions";
# bob: m1, m2, m3 (m5 deleted for everyone, m6 for him); carol: m2;
# alice: m7; the unread counts beside them (with the group's notice)
sleep 0.3;
push @r, main::counts(qw(bob carol alice));
ChatChats::api(bob => POST => "/api/chats/$main::Group/read", { upToSeq => $m2->{seq} });
push @r, main::counts("bob");
# 20 more: m3 leaves the window of kept messages, so that after the
# flush its mention is counted from the facts alone
main::send_msg(carol => "filler $_") for 1 .. 20;
sleep 0.3;
main::redis("FLUSHALL");
push @r, "flushed", main::counts(qw(bob carol alice));
# rebuilt keys follow new ones again
main::send_msg(carol => "again bob", "bob");
push @r, main::counts(qw(bob bob));
ChatChats::api(bob => POST => "/api/chats/$main::Group/read", { upToSeq => 1000 });
ChatChats::api(carol => POST => "/api/chats/$main::Group/read", { upToSeq => 1000 });
push @r, main::counts(qw(bob carol));
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
bob
bob,carol
bob,carol
none
bob=3/4 carol=1/4 alice=1/3
bob=1/2
flushed
bob=1/22 carol=1/4 alice=1/23
bob=2/23 bob=2/23
bob=0/0 carol=0/0
--- timeout: 60



=== TEST 2: a mention over the socket: the ack and the mentioned member's new_message carry it, and their row counts it
--- init
ChatChats::setup("dave");
my $bob = ChatRT::connect("bob");
my $alice = ChatRT::connect("alice");
ChatRT::drain($bob, 0.3);
ChatRT::send_event($alice, "send_message",
    { chatId => $main::Group, tempId => "mn-ws-$$",
      content => { type => "text", text => "over the socket" },
      mentions => [ $main::Id{bob} ] }, 7);
my $ack = ChatRT::wait_for($alice, "ack", 5, 7);
my $ev = ChatRT::wait_for($bob, "new_message", 5);
my @r = (main::names($ack->{data}{message}), main::names($ev->{data}{message}));
sleep 0.3;
push @r, main::counts("bob");
close $alice;
close $bob;
$main::Got = join " ", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
bob bob bob=1/1
--- timeout: 30



=== TEST 3: bad mentions: 400 with the envelope and the field, nothing stored; null is none
--- init
ChatChats::setup("dave");
my @r;
my $before = scalar @{ ChatChats::api(alice => GET => "/api/chats/$main::Group/messages?limit=100")->{items} };
for my $bad ("bob", { a => 1 }, [ 123 ], [ "zz" ], [ ("0" x 23) . "g" ],
             [ map { sprintf "%024x", $_ } 1 .. 51 ]) {
    my ($status, $body) = ChatChats::call(alice => POST => "/api/messages",
        { chatId => $main::Group, tempId => "bad-$$-" . @r, type => "text",
          content => "bad", mentions => $bad });
    push @r, "$status:$body->{error}{code}:$body->{error}{details}{field}";
}
my ($status, $body) = ChatChats::call(alice => POST => "/api/messages",
    { chatId => $main::Group, tempId => "null-$$", type => "text",
      content => "none", mentions => undef });
push @r, "$status:" . (exists $body->{message}{mentions} ? "has" : "none");
# fifty distinct ids are allowed (those not in the chat count for nobody)
($status, $body) = ChatChats::call(alice => POST => "/api/messages",
    { chatId => $main::Group, tempId => "fifty-$$", type => "text",
      content => "fifty",
      mentions => [ map { sprintf "%024x", $_ } 1 .. 50 ] });
push @r, "$status:" . scalar @{ $body->{message}{mentions} };
my $after = scalar @{ ChatChats::api(alice => GET => "/api/chats/$main::Group/messages?limit=100")->{items} };
push @r, "stored:" . ($after - $before);
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
400:invalid_request:mentions
400:invalid_request:mentions
400:invalid_request:mentions
400:invalid_request:mentions
400:invalid_request:mentions
400:invalid_request:mentions
201:none
201:50
stored:2



=== TEST 4: a chat an answer carries (a rename) counts my unread and my mentions exactly, past 200 numbers, as my row does
--- init
ChatChats::setup("dave");
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "backlog", memberIds => [ $main::Id{bob} ] })->{chat}{id};
local $main::Group = $g;
# ten of mine, then 250 of bob's, three of them mentioning me: the
# windows of numbers counted my own, older than the last 200, as unread
main::send_msg(alice => "mine $_") for 1 .. 10;
for my $i (1 .. 250) {
    main::send_msg(bob => "theirs $i", $i % 100 == 0 || $i == 7 ? "alice" : ());
}
sleep 0.3;
my $answer = ChatChats::api(alice => PUT => "/api/chats/$g", { name => "backlog 2" });
my $row = ChatChats::api(alice => GET => "/api/chats/$g")->{chat};
my $c = $answer->{chat};
$main::Got = "answer $c->{unreadCount}/$c->{unreadMentions} row $row->{unreadCount}/$row->{unreadMentions}";
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
answer 250/3 row 250/3
--- timeout: 90

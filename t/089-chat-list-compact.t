# The chat list's facts stay bounded without losing a count: a member who
# sends 300 messages into a quiet group and never reads keeps at most 64
# facts of their own (their readSeq settled over their own numbers), a
# chat's voids at or below every member's readSeq are swept by the next
# rebuild that reads many of them, and a sender in a busy chat is never
# moved past another's message; a settle that starts at a number deleted
# for the sender or at a void passes it.  Every unread count exact,
# before and after FLUSHALL.  The facts counted in FerretDB itself (listx).

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use ChatChats;
use ChatMongo;
use Time::HiRes qw(time sleep);

our ($Redis, $Got, %Chat);

BEGIN {
    $Redis = ChatRedis->new->start;
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    # 300 sends of one user at once: no send budget, which is not tested
    # here
    ChatChats::init("689", "chat_send_rate off;");
}

*Id = \%ChatChats::Id;
our %Id;

sub redis {
    system("redis-cli", "-p", $Redis->port, @_) == 0 or die "redis-cli @_";
}

sub send_msg {
    my ($who, $chat, $temp) = @_;
    return ChatChats::api($who => POST => "/api/messages",
        { chatId => $chat, tempId => $temp, type => "text",
          content => "$who $temp" })->{message};
}

sub group {
    my ($name) = @_;
    return ChatChats::api(alice => POST => "/api/chats/group",
        { name => $name, memberIds => [ $Id{bob}, $Id{carol} ] })->{chat}{id};
}

# "alice:N bob:N carol:N": each one's unread count of $chat in their list
sub counts {
    my ($chat) = @_;
    my @out;
    for my $who (qw(alice bob carol)) {
        my $items = ChatChats::api($who => GET => "/api/chats?limit=50")
                    ->{items};
        my ($r) = grep { $_->{id} eq $chat } @$items;
        push @out, "$who:" . ($r ? $r->{unreadCount} : "none");
    }
    return join " ", @out;
}

# how many facts of listx match the pairs given
sub facts {
    my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    return $m->command(ChatMongo::doc(count => "listx",
                                      query => ChatMongo::doc(@_)))->{n};
}

# $who's readSeq of $chat as stored (members)
sub read_seq {
    my ($chat, $who) = @_;
    my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    my $r = $m->command(ChatMongo::doc(find => "members",
        filter => ChatMongo::doc(chatId => ChatMongo::oid($chat),
                                 userId => ChatMongo::oid($Id{$who}))));
    my $batch = ChatMongo::_decode_top(
        ChatMongo::_decode_top($r->{cursor})->{firstBatch});
    return ChatMongo::_decode_top($batch->{0})->{readSeq} // 0;
}

# waits (at most $secs) for $cond; its last value either way
sub wait_for {
    my ($secs, $cond) = @_;
    my $end = time + $secs;
    my $v;
    until (($v = $cond->()) || time > $end) {
        sleep 0.1;
    }
    return $v;
}

# the counts, then the same after FLUSHALL (a rebuild from the facts)
sub before_after {
    my ($chat) = @_;
    my $before = counts($chat);
    redis("FLUSHALL");
    my $after = counts($chat);
    return $before eq $after ? "$after same after FLUSHALL"
                             : "$before; after FLUSHALL $after";
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 300 sends into a quiet group, never read: the sender's own facts stay within 64, every count exact after FLUSHALL
--- init
ChatChats::setup();
my $g = $main::Chat{quiet} = main::group("quiet");
main::send_msg(alice => $g, "q$_") for 1 .. 300;
my $me = "$g:$main::Id{alice}";
# settled after each 64th, once its facts are stored (after the commit)
main::wait_for(5, sub {
    main::facts(_id => "$me:o300") == 1
        && main::facts(of => $me, k => "o") <= 64 });
my $own = main::facts(of => $me, k => "o");
$main::Got = main::before_after($g) . " own="
    . ($own <= 64 && $own > 0 ? "bounded" : $own);
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
alice:0 bob:300 carol:300 same after FLUSHALL own=bounded
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]
lost a fact
were not stored



=== TEST 2: 50 messages deleted for everyone, every member read past them: their void facts swept by the next rebuild, the counts exact
--- init
my $g = $main::Chat{voids} = main::group("voids");
my @m = map { main::send_msg(alice => $g, "v$_") } 1 .. 60;
ChatChats::api(alice => DELETE => "/api/messages/$m[$_]{id}?forEveryone=true")
    for 0 .. 49;
ChatChats::api($_ => POST => "/api/chats/$g/read", { upToSeq => 60 })
    for qw(alice bob carol);
main::send_msg(alice => $g, "w$_") for 1 .. 5;
my $stored = main::wait_for(5, sub { main::facts(of => $g, k => "v") == 50 });
$main::Got = main::before_after($g) . " voids before " . ($stored ? 50 : "?")
    . " after " . main::facts(of => $g, k => "v");
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
alice:0 bob:5 carol:5 same after FLUSHALL voids before 50 after 0
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]
lost a fact
were not stored



=== TEST 3: a sender in a busy chat: settled over their own numbers only, never past another's message; every count exact
--- init
my $g = $main::Chat{busy} = main::group("busy");
# bob's 1 .. 3, alice's 4, bob's 5 .. 74: his 64th (65) settles him at 3
main::send_msg(bob => $g, "b$_") for 1 .. 3;
main::send_msg(alice => $g, "a1");
main::send_msg(bob => $g, "c$_") for 1 .. 70;
my $me = "$g:$main::Id{bob}";
main::wait_for(5, sub {
    main::facts(_id => "$me:o74") == 1
        && main::facts(of => $me, k => "o") <= 70 });
$main::Got = main::before_after($g) . " own="
    . main::facts(of => $me, k => "o");
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
alice:73 bob:1 carol:74 same after FLUSHALL own=70
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]
lost a fact
were not stored



=== TEST 4: after her settles, another's message counts for the sender again, and her read clears it; the chat alone agrees with her row
--- init
my $g = $main::Chat{quiet};
main::send_msg(bob => $g, "r1");
my $one = ChatChats::api(alice => GET => "/api/chats/$g")->{chat};
$main::Got = main::before_after($g) . " alone " . $one->{unreadCount};
ChatChats::api(alice => POST => "/api/chats/$g/read", { upToSeq => 301 });
$main::Got .= "; read: " . main::before_after($g);
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
alice:1 bob:300 carol:301 same after FLUSHALL alone 1; read: alice:0 bob:300 carol:301 same after FLUSHALL
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]
lost a fact
were not stored



=== TEST 5: a settle that starts at a number deleted for the sender, then one that starts at a void: both pass them and her own numbers; every count exact
--- init
my $g = main::group("skips");
# carol's 1, hidden by alice; bob's 2, deleted for everyone
my $c1 = main::send_msg(carol => $g, "s5c1");
ChatChats::api(alice => DELETE => "/api/messages/$c1->{id}");
my $b2 = main::send_msg(bob => $g, "s5b2");
ChatChats::api(bob => DELETE => "/api/messages/$b2->{id}?forEveryone=true");
# alice's 3 .. 66: her 64th settles her at 66
main::send_msg(alice => $g, "s5a$_") for 1 .. 64;
my $me = "$g:$main::Id{alice}";
my $first = main::wait_for(5, sub { main::read_seq($g, "alice") >= 66 })
    ? main::read_seq($g, "alice") : "not settled";
# bob's 67, deleted for everyone; alice's 68 .. 131: settled at 131
my $b3 = main::send_msg(bob => $g, "s5b3");
ChatChats::api(bob => DELETE => "/api/messages/$b3->{id}?forEveryone=true");
main::send_msg(alice => $g, "s5d$_") for 1 .. 64;
my $second = main::wait_for(5, sub { main::read_seq($g, "alice") >= 131 })
    ? main::read_seq($g, "alice") : "not settled";
my $left = main::wait_for(5, sub {
    main::facts(of => $me, k => "o") + main::facts(of => $me, k => "h")
        == 0 }) ? 0 : "some";
$main::Got = main::before_after($g)
    . " readSeq $first then $second, her facts left $left";
ChatChats::dyn($block, as => "bob", request => "GET /api/chats/ids");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
alice:0 bob:129 carol:128 same after FLUSHALL readSeq 66 then 131, her facts left 0
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]
lost a fact
were not stored

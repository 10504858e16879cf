# What follows a committed write does not depend on the client: requests
# whose connection the client resets at random moments after writing them
# (a phone on a train) are either not stored, or stored and pushed to the
# other members' sockets and shown in the chat list.  Sockets closed right
# after an event (a send, an edit, a delete, a reaction, a read) lose only
# their ack: the change is stored and pushed.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_LINGER);
use JSON::PP qw(encode_json);
use Time::HiRes qw(sleep);

our $Got;

BEGIN {
    ChatChats::init("637");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 120);
});

# writes the request, waits $delay seconds, and resets the connection
sub main::reset_after {
    my ($who, $method, $path, $body, $delay) = @_;
    my $json = encode_json($body);
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                  PeerPort => $ENV{TEST_NGINX_SERVER_PORT},
                                  Proto => "tcp", Timeout => 5)
        or die "connect: $!";
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Authorization: Bearer $ChatChats::Tok{$who}{accessToken}\r\n"
        . "Content-Type: application/json\r\n"
        . "Content-Length: " . length($json) . "\r\n\r\n$json";
    syswrite($s, $req) == length $req or die "write: $!";
    sleep($delay) if $delay;
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0));
    close $s;
}

# every stored message of a chat (tombstones left out), oldest first
sub main::stored {
    my ($who, $chat) = @_;
    my (@all, $after);
    $after = 0;
    for (;;) {
        my $page = ChatChats::api($who => GET =>
            "/api/chats/$chat/messages?after=$after&limit=100")->{items};
        last unless @$page;
        push @all, @$page;
        $after = $page->[-1]{seq};
    }
    return grep { ($_->{type} // "") ne "tombstone" && !$_->{deleted} } @all;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: sends reset 0 to 150 ms after writing: every stored one is pushed
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $bob = ChatRT::connect("bob");
my $n = 150;
for my $i (1 .. $n) {
    main::reset_after(alice => POST => "/api/messages",
                      { chatId => $chat, tempId => "rs-$i", type => "text",
                        content => "reset $i" },
                      ($i % 3 == 0) ? 0 : rand(0.15));
}
sleep 3;
my %pushed;
for my $e (ChatRT::drain($bob, 2)) {
    $pushed{$e->{data}{message}{tempId}}++ if $e->{event} eq "new_message";
}
my @stored = grep { $_->{tempId} =~ /^rs-/ } main::stored(alice => $chat);
my @lost = grep { !$pushed{$_->{tempId}} } @stored;
my @twice = grep { $pushed{$_} > 1 } keys %pushed;
my $list = ChatChats::api(bob => GET => "/api/chats")->{items};
my ($row) = grep { $_->{id} eq $chat } @$list;
my $last = @stored ? $stored[-1]{tempId} : "";
$main::Got = (@stored ? "stored" : "none stored")
    . " lost:" . scalar(@lost) . " twice:" . scalar(@twice)
    . " extra:" . scalar(grep { my $t = $_; !grep { $_->{tempId} eq $t } @stored } keys %pushed)
    . " list:" . (($row->{lastMessage}{tempId} // "") eq $last ? "last" : "other");
--- response_body
stored lost:0 twice:0 extra:0 list:last



=== TEST 2: edits reset at random moments: every stored edit is pushed
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my @ids;
for my $i (1 .. 40) {
    push @ids, ChatChats::api(alice => POST => "/api/messages",
                              { chatId => $chat, tempId => "ed-$i",
                                type => "text", content => "v1 $i" })
               ->{message}{id};
}
my $bob = ChatRT::connect("bob");
ChatRT::drain($bob, 0.5);
for my $i (0 .. $#ids) {
    main::reset_after(alice => PUT => "/api/messages/$ids[$i]",
                      { content => "v2 $i" }, rand(0.1));
}
sleep 3;
my %edited;
for my $e (ChatRT::drain($bob, 2)) {
    $edited{$e->{data}{message}{id}}++ if $e->{event} eq "message_edited";
}
my @changed = grep { $_->{edited} } main::stored(alice => $chat);
my @lost = grep { !$edited{$_->{id}} } @changed;
$main::Got = (@changed ? "edited" : "none edited") . " lost:" . scalar(@lost)
    . " unknown:" . scalar(grep { my $k = $_; !grep { $_->{id} eq $k } @changed } keys %edited);
--- response_body
edited lost:0 unknown:0



=== TEST 3: members added with a reset: they get the chat, the others the notice
--- init
ChatChats::setup();
my $gid = ChatChats::api(alice => POST => "/api/chats/group",
                         { name => "resets", memberIds => [$ChatChats::Id{bob}] })
          ->{chat}{id};
my $bob = ChatRT::connect("bob");
my $carol = ChatRT::connect("carol");
ChatRT::drain($bob, 0.5);
main::reset_after(alice => POST => "/api/chats/$gid/members",
                  { userIds => [$ChatChats::Id{carol}] }, 0);
sleep 2;
my @b = map { $_->{event} } ChatRT::drain($bob, 1);
my @c = map { $_->{event} } ChatRT::drain($carol, 1);
my $members = ChatChats::api(alice => GET => "/api/chats/$gid")->{chat}{members};
my $in = grep { $_->{userId} eq $ChatChats::Id{carol} } @{$members->{items}};
# the reset may come before the request was read (then nothing happened
# and nothing is pushed); once it was read, all of it happens
$main::Got = ($in ? "carol in" : "carol out")
    . " bob:" . join(",", grep { /new_message|chat_/ } @b)
    . " carol:" . join(",", grep { /chat_created/ } @c);
--- response_body_like
^(carol in bob:new_message carol:chat_created|carol out bob: carol:)$



=== TEST 4: sockets closed right after an event: nothing crashes or leaks
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my $bob = ChatRT::connect("bob");
for my $i (1 .. 30) {
    my $s = ChatRT::connect("alice");
    ChatRT::send_event($s, "send_message",
                       { chatId => $chat, tempId => "cl-$i", type => "text",
                         content => "closed $i" }, $i);
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0)) if $i % 2;
    close $s;
}
# a socket closed (FIN) after its frame: the frame is read and stored; a
# reset one may have its frame dropped by the kernel before it is read,
# but whatever was stored is pushed.  A loaded store may take seconds.
my (@stored, $closed);
for (1 .. 30) {
    sleep 0.5;
    @stored = grep { $_->{tempId} =~ /^cl-/ } main::stored(alice => $chat);
    $closed = grep { $_->{tempId} =~ /^cl-(\d+)$/ && $1 % 2 == 0 } @stored;
    last if $closed == 15;
}
my %pushed;
for my $e (ChatRT::drain($bob, 1)) {
    $pushed{$e->{data}{message}{tempId}}++ if $e->{event} eq "new_message";
}
$main::Got = "closed stored:$closed lost:"
    . scalar(grep { !$pushed{$_->{tempId}} } @stored);
--- response_body
closed stored:15 lost:0



=== TEST 5: sockets closed (FIN) right after edit, delete, react and read: each change stored and pushed
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my @ids = map {
    ChatChats::api(alice => POST => "/api/messages",
                   { chatId => $chat, tempId => "op-$_", type => "text",
                     content => "v1 $_" })->{message}{id} } 1 .. 30;
# one chat per read, so that every read moves a marker whatever the order
my %unread;
for my $i (1 .. 10) {
    my $g = ChatChats::api(alice => POST => "/api/chats/group",
                           { name => "reads $i",
                             memberIds => [$ChatChats::Id{bob}] })->{chat}{id};
    $unread{$g} = ChatChats::api(bob => POST => "/api/messages",
                                 { chatId => $g, tempId => "rd-$i",
                                   type => "text", content => "read me" })
                  ->{message}{id};
}
my $bob = ChatRT::connect("bob");
ChatRT::drain($bob, 0.5);
my @sent;
for my $i (0 .. $#ids) {
    push @sent,
        $i < 10 ? ["edit_message", { messageId => $ids[$i],
                                     newContent => "v2 $i" }]
      : $i < 20 ? ["delete_message", { messageId => $ids[$i],
                                       deleteForEveryone => JSON::PP::true }]
      : ["add_reaction", { messageId => $ids[$i],
                           emoji => "\xF0\x9F\x91\x8D" }];
}
push @sent, ["message_read", { messageId => $unread{$_}, chatId => $_ }]
    for sort keys %unread;
for my $k (0 .. $#sent) {
    my $s = ChatRT::connect("alice");
    # what came already (the others' changes) read first: a close with
    # unread data is a reset, not the FIN this block is about (TEST 9)
    ChatRT::drain($s, 0.01);
    ChatRT::send_event($s, @{ $sent[$k] }, $k);
    close $s;
}
# until every change is stored and its event came, or 30 s: on a loaded
# machine the 40 operations may still be running seconds later
my (%pushed, %stored);
for my $round (1 .. 15) {
    for my $e (ChatRT::drain($bob, $round == 1 ? 3 : 1)) {
        if ($e->{event} =~ /^message_(edited|deleted|reaction)$/) {
            $pushed{"$1:$e->{data}{message}{id}"}++;
        } elsif ($e->{event} eq "message_status_update"
                 && $e->{data}{status} eq "read"
                 && $e->{data}{userId} eq $ChatChats::Id{alice}) {
            $pushed{"read:$e->{data}{chatId}"}++;
        }
    }
    # what the store shows
    %stored = ();
    for my $id (@ids) {
        my $m = ChatChats::api(alice => GET => "/api/messages/$id")->{message};
        $stored{"edited:$id"} = 1 if $m->{edited};
        $stored{"deleted:$id"} = 1 if $m->{type} eq "deleted";
        $stored{"reaction:$id"} = 1 if @{ $m->{reactions} || [] };
    }
    for my $c (@{ ChatChats::api(alice => GET => "/api/chats?limit=50")->{items} }) {
        $stored{"read:$c->{id}"} = 1
            if $unread{$c->{id}} && $c->{unreadCount} == 0;
    }
    last if keys %stored == 40 && !grep { !$pushed{$_} } keys %stored;
}
my %n;
$n{(split /:/)[0]}++ for keys %stored;
$main::Got = join " ", (map { "$_:" . ($n{$_} // 0) }
                            qw(edited deleted reaction read)),
    "lost:" . scalar(grep { !$pushed{$_} } keys %stored),
    "unknown:" . scalar(grep { !$stored{$_} } keys %pushed),
    "twice:" . scalar(grep { $pushed{$_} > 1 } keys %pushed);
--- response_body
edited:10 deleted:10 reaction:10 read:10 lost:0 unknown:0 twice:0



=== TEST 6: a block reset right after it was written: stored, and the blocked user's live sockets follow it
--- init
ChatChats::setup();
for my $who (qw(dave erin)) {
    $ChatChats::Tok{$who} = ChatAuth::sign_in($ChatChats::Twilio,
                                              $ChatChats::Phone{$who}, $who);
    $ChatChats::Id{$who} = $ChatChats::Tok{$who}{user}{id};
}
my ($dave, $erin) = @ChatChats::Id{qw(dave erin)};
my $chat = ChatChats::api(erin => POST => "/api/chats/private",
                          { userId => $dave })->{chat}{id};
my $e = ChatRT::connect("erin");
ChatRT::send_event($e, "subscribe_presence", { userId => $dave }, 1);
my $ack = ChatRT::wait_for($e, "ack", 3, 1);
# a send on the socket before: this worker remembers erin may send here
ChatRT::send_event($e, "send_message", { chatId => $chat, tempId => "bk-1",
                                         type => "text", content => "hi" }, 2);
my $sent = ChatRT::wait_for($e, "ack", 3, 2);
my $d = ChatRT::connect("dave");
my $on = ChatRT::wait_for($e, "user_online", 3);
# the reset may drop a request before it was read (then nothing is
# done): tried until one was read, each judged by what was stored
my $stored = 0;
for my $delay (0, 0, 0.002, 0.005, 0.01, 0.02, 0.05) {
    main::reset_after(dave => POST => "/api/users/$erin/block", {}, $delay);
    sleep 0.5;
    my $list = ChatChats::api(dave => GET => "/api/users/blocked")->{items};
    $stored = grep { $_->{id} eq $erin } @$list;
    last if $stored;
}
# what the block does on live sockets: erin sees no more of dave's
# presence, and her sends in their private chat are refused at once
close $d;
my @pres = grep { $_->{event} =~ /^user_/ } ChatRT::drain($e, 1.5);
ChatRT::send_event($e, "send_message", { chatId => $chat, tempId => "bk-2",
                                         type => "text", content => "hi" }, 3);
my $refused = ChatRT::wait_for($e, "ack", 3, 3);
my ($rest) = ChatChats::call(erin => POST => "/api/messages",
    { chatId => $chat, tempId => "bk-3", type => "text", content => "hi" });
$main::Got = join " ",
    "before:" . ($ack ? "subscribed" : "none") . "," . ($sent->{event} // "none")
        . "," . ($on ? "online" : "none"),
    "block:" . ($stored ? "stored" : "lost"),
    "presence:" . scalar(@pres),
    "ws-send:" . join(",", map { $_ // "none" } $refused->{event},
                      $refused->{status}, $refused->{error}{code}),
    "rest-send:$rest";
--- response_body
before:subscribed,ack,online block:stored presence:0 ws-send:error,403,blocked rest-send:403



=== TEST 7: group changes reset right after writing: each one stored has all its events pushed, the system message first
--- init
ChatChats::setup();
for my $who (qw(dave erin)) {
    next if $ChatChats::Tok{$who};
    $ChatChats::Tok{$who} = ChatAuth::sign_in($ChatChats::Twilio,
                                              $ChatChats::Phone{$who}, $who);
    $ChatChats::Id{$who} = $ChatChats::Tok{$who}{user}{id};
}
my %id = %ChatChats::Id;
# one change per group, so that each one is told apart by its chat
my @kinds = qw(rename add role remove leave);
my @groups;
for my $round (1 .. 4) {
    for my $kind (@kinds) {
        # groups of at most 4 (chat_group_max_size): dave may be added
        my @m = $kind eq "leave" ? qw(bob erin) : qw(bob carol);
        my $g = ChatChats::api(alice => POST => "/api/chats/group",
                               { name => "$kind $round",
                                 memberIds => [@id{@m}] })
                ->{chat}{id};
        push @groups, [$kind, $g];
    }
}
my %s = map { $_ => ChatRT::connect($_) } qw(bob carol dave erin);
ChatRT::drain($s{$_}, 0.3) for keys %s;
my $k = 0;
for my $c (@groups) {
    my ($kind, $g) = @$c;
    my $delay = ($k++ % 2) ? rand(0.05) : 0;
    if ($kind eq "rename") {
        main::reset_after(alice => PUT => "/api/chats/$g",
                          { name => "renamed" }, $delay);
    } elsif ($kind eq "add") {
        main::reset_after(alice => POST => "/api/chats/$g/members",
                          { userIds => [$id{dave}] }, $delay);
    } elsif ($kind eq "role") {
        main::reset_after(alice => PUT => "/api/chats/$g/members/$id{bob}/role",
                          { role => "admin" }, $delay);
    } elsif ($kind eq "remove") {
        main::reset_after(alice => DELETE => "/api/chats/$g/members/$id{carol}",
                          {}, $delay);
    } else {
        main::reset_after(erin => POST => "/api/chats/$g/leave", {}, $delay);
    }
}
sleep 3;
# each socket's events as "<event>:<chat>[:<action>]", in order (all came
# in those 3 s: the first socket is given a second more, the others, read
# after it, a moment)
my %seen;
my $quiet = 1;
for my $who (keys %s) {
    my @events = ChatRT::drain($s{$who}, $quiet);
    $quiet = 0.2;
    for my $e (@events) {
        my $d = $e->{data} || {};
        my $chat = $d->{chatId} // $d->{message}{chatId} // $d->{chat}{id}
                   // "";
        my $what = $e->{event} eq "new_message"
            ? "new_message:" . ($d->{message}{content}{action} // "")
            : $e->{event};
        push @{ $seen{$who}{$chat} }, $what;
    }
}
# what each change must have pushed, in order, to whom
my %want = (
    rename => [bob => "new_message:group_updated", bob => "chat_updated"],
    add    => [bob => "new_message:member_added", dave => "chat_created"],
    role   => [bob => "new_message:admin_promoted", bob => "chat_updated"],
    remove => [carol => "new_message:member_removed", carol => "chat_removed"],
    leave  => [erin => "new_message:member_left", erin => "chat_removed",
               bob => "new_message:member_left"],
);
my ($stored, $lost, $unknown) = (0, 0, 0);
for my $c (@groups) {
    my ($kind, $g) = @$c;
    my $chat = ChatChats::api(alice => GET => "/api/chats/$g")->{chat};
    my %role = map { $_->{userId} => $_->{role} } @{ $chat->{members}{items} };
    my $done = $kind eq "rename" ? $chat->{name} eq "renamed"
             : $kind eq "add"    ? exists $role{$id{dave}}
             : $kind eq "role"   ? $role{$id{bob}} eq "admin"
             : $kind eq "remove" ? !exists $role{$id{carol}}
             :                     !exists $role{$id{erin}};
    my @w = @{ $want{$kind} };
    my %got;
    while (my ($who, $what) = splice @w, 0, 2) {
        my @ev = @{ $seen{$who}{$g} || [] };
        my ($at) = grep { $ev[$_] eq $what } 0 .. $#ev;
        $got{$who} //= [];
        # in its order: after what the same socket had to see before
        my $ok = defined $at && (!@{ $got{$who} } || $at > $got{$who}[-1]);
        push @{ $got{$who} }, $at // -1;
        if ($done) {
            $lost++ unless $ok;
        } elsif (@ev) {
            $unknown++;
        }
    }
    $stored++ if $done;
}
$main::Got = ($stored ? "stored" : "none stored")
    . " lost:$lost unknown:$unknown";
--- response_body
stored lost:0 unknown:0
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 8: forwards reset right after writing: each one makes all its copies or none, each copy pushed
--- init
ChatChats::setup();
for my $who (qw(dave erin)) {
    next if $ChatChats::Tok{$who};
    $ChatChats::Tok{$who} = ChatAuth::sign_in($ChatChats::Twilio,
                                              $ChatChats::Phone{$who}, $who);
    $ChatChats::Id{$who} = $ChatChats::Tok{$who}{user}{id};
}
my @to = qw(bob carol dave erin);
my %chat = map {
    $_ => ChatChats::api(alice => POST => "/api/chats/private",
                         { userId => $ChatChats::Id{$_} })->{chat}{id} } @to;
my @src = map {
    ChatChats::api(alice => POST => "/api/messages",
                   { chatId => $chat{bob}, tempId => "src-$_",
                     type => "text", content => "forward me $_" })
        ->{message}{id} } 1 .. 12;
my %s = map { $_ => ChatRT::connect($_) } @to;
ChatRT::drain($s{$_}, 0.3) for @to;
my $k = 0;
for my $id (@src) {
    main::reset_after(alice => POST => "/api/messages/$id/forward",
                      { chatIds => [@chat{@to}] },
                      ($k++ % 2) ? rand(0.05) : 0);
}
sleep 3;
my %pushed;
my $quiet = 1;
for my $who (@to) {
    my @events = ChatRT::drain($s{$who}, $quiet);
    $quiet = 0.2;
    for my $e (@events) {
        $pushed{$e->{data}{message}{tempId}}++
            if $e->{event} eq "new_message";
    }
}
my %stored;
for my $who (@to) {
    $stored{$_->{tempId}} = 1
        for grep { ($_->{tempId} // "") =~ /^fw/ }
            main::stored(alice => $chat{$who});
}
my ($made, $partial) = (0, 0);
for my $id (@src) {
    my $n = grep { $stored{"fw$id$chat{$_}"} } @to;
    $made++ if $n;
    $partial++ if $n && $n < @to;
}
$main::Got = ($made ? "made" : "none made")
    . " partial:$partial"
    . " lost:" . scalar(grep { !$pushed{$_} } keys %stored)
    . " unknown:" . scalar(grep { /^fw/ && !$stored{$_} } keys %pushed);
--- response_body
made partial:0 lost:0 unknown:0
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 9: sockets closed (FIN or RST) right after join_chat and sync, some while signing in: the server serves the next one
--- init
ChatChats::setup();
my $chat = ChatChats::api(alice => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{bob} })->{chat}{id};
my @seq = map {
    ChatChats::api(alice => POST => "/api/messages",
                   { chatId => $chat, tempId => "sy-$_", type => "text",
                     content => "sync $_" })->{message}{seq} } 1 .. 3;
for my $i (1 .. 30) {
    # every third one goes before its sign-in (profile, chats) is read
    my $s = ChatRT::connect("alice", no_wait => $i % 3 == 0);
    ChatRT::send_event($s, "join_chat", { chatId => $chat }, "j$i");
    ChatRT::send_event($s, "sync", { chats => { $chat => 0 } }, "s$i");
    setsockopt($s, SOL_SOCKET, SO_LINGER, pack("ii", 1, 0)) if $i % 2;
    close $s;
}
sleep 2;
my $s = ChatRT::connect("alice");
ChatRT::send_event($s, "join_chat", { chatId => $chat }, "j");
my $joined = ChatRT::wait_for($s, "ack", 5, "j");
ChatRT::send_event($s, "sync", { chats => { $chat => $seq[0] } }, "s");
my @e;
while (my $e = ChatRT::next_event($s, 5)) {
    push @e, $e;
    last if $e->{event} eq "synced";
}
my @seqs = map { $_->{data}{message}{seq} } grep { $_->{event} eq "new_message" } @e;
my $synced = $e[-1] && $e[-1]{event} eq "synced"
             ? $e[-1]{data}{chats}{$chat}{lastSeq} : "none";
my $ids = ChatChats::api(alice => GET => "/api/chats/ids")->{items};
$main::Got = "joined:" . ($joined && $joined->{event} eq "ack"
                          && $joined->{data}{chat}{id} eq $chat ? 1 : 0)
    . " new:" . (join(",", @seqs) eq join(",", @seq[1, 2]) ? "ok" : "@seqs")
    . " synced:" . ($synced eq $seq[2] ? "ok" : $synced)
    . " ids:" . scalar(grep { $_ eq $chat } @$ids);
--- response_body
joined:1 new:ok synced:ok ids:1

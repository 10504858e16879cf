# The event ledger: three users with two devices each, one on the plain
# WebSocket endpoint and one on Socket.IO (over its WebSocket transport),
# every socket recording everything it receives.  For each operation the
# exact (socket, event) set, with the payload fields that matter, and
# nothing else: reads, failed operations, retries and repeats that change
# nothing deliver nothing; read receipts privacy on and off.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatAuth;
use ChatWS;
use JSON::PP ();
use Time::HiRes ();

our ($Got, $G, $G2, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    ChatChats::init("648");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
});

my $JSON = JSON::PP->new->canonical->utf8;

# A Socket.IO client over the WebSocket transport, by hand: the open
# packet, CONNECT with the token, then EVENT and ACK packets.
sub main::sio_connect {
    my ($who) = @_;
    my ($s, $status) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
    die "socket.io for $who: $status" unless $status == 101;
    my $f = ChatWS::read_frame($s, 3);
    die "no open packet" unless $f && $f->{payload} =~ /^0\{/;
    ChatWS::text($s, "40" . $JSON->encode(
        { token => $ChatChats::Tok{$who}{accessToken} }));
    for (1 .. 10) {
        my $e = main::next_of({ s => $s, sio => 1 }, 3) or last;
        return $s if $e->{event} eq "authenticated";
    }
    die "$who not authenticated over socket.io";
}

# the next event of a device, as {event, data, id?}; pings answered
sub main::next_of {
    my ($d, $timeout) = @_;
    return ChatRT::next_event($d->{s}, $timeout) unless $d->{sio};
    for (;;) {
        my $f = ChatWS::read_frame($d->{s}, $timeout) or return undef;
        next if $f->{opcode} == 9 || $f->{opcode} == 10;
        return { event => "close" } if $f->{opcode} == 8;
        my $p = $f->{payload};
        if ($p eq "2") { ChatWS::text($d->{s}, "3"); next; }
        if ($p =~ /^42(\d*)(\[.*)$/s) {
            my $a = $JSON->decode($2);
            return { event => $a->[0], data => $a->[1] };
        }
        if ($p =~ /^43(\d+)(\[.*)$/s) {
            my $a = $JSON->decode($2)->[0];
            return { event => ($a->{error} ? "error" : "ack"), id => $1,
                     data => $a, status => $a->{status},
                     error => $a->{error} };
        }
        if ($p =~ /^40/) { return { event => "connected" } }
        return { event => "raw:$p" };
    }
}

sub main::emit {
    my ($d, $event, $data, $id) = @_;
    if ($d->{sio}) {
        ChatWS::text($d->{s}, "42$id" . $JSON->encode([$event, $data]));
    } else {
        ChatRT::send_event($d->{s}, $event, $data, $id);
    }
}

our (@Dev, %M);

sub main::devices {
    @Dev = ();
    for my $who (qw(alice bob carol)) {
        my $l = substr $who, 0, 1;
        push @Dev, { name => "${l}1", s => ChatRT::connect($who) };
        push @Dev, { name => "${l}2", s => main::sio_connect($who), sio => 1 };
    }
    main::ledger(0.5);    # whatever the sign-in brought
}

# what every device received since the last ledger, as
# "device:event[detail]" sorted; $show describes an event
sub main::ledger {
    my ($wait, $show) = @_;
    Time::HiRes::sleep($wait // 0.6);
    # then rounds over every device until one brings nothing (each quiet
    # device costs $quiet: longer under the sanitizers' slower server)
    my $quiet = ($ENV{TEST_NGINX_BINARY} // "") =~ /asan/ ? 0.15 : 0.04;
    my @got;
    for (my $more = 1; $more;) {
        $more = 0;
        for my $d (@Dev) {
            while (my $e = main::next_of($d, $quiet)) {
                my $x = $show ? $show->($e) : "";
                push @got, "$d->{name}:$e->{event}"
                           . ($x ne "" ? "[$x]" : "");
                $more = 1;
            }
        }
    }
    return join(" ", sort @got) || "-";
}

sub main::dev { my $n = shift; (grep { $_->{name} eq $n } @Dev)[0] }

sub main::short { my $id = shift // "null";
    for my $k (keys %M) { return $k if $M{$k} eq $id } return $id }

# the fields of a status update that matter
sub main::status {
    my $e = shift;
    return "" unless $e->{event} eq "message_status_update";
    my $d = $e->{data};
    my $who = (grep { $Id{$_} eq $d->{userId} } keys %Id)[0];
    return "$d->{status}:$who:$d->{upToSeq}:" . main::short($d->{messageId})
        . ($d->{chatId} eq $main::G ? "" : ":wrong-chat");
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: messages: send, retry, reads, edit, reaction, deletes, forward
--- init
ChatChats::setup();
my @r;
ChatChats::api(bob => PUT => "/api/users/profile",
               { privacy => { readReceipts => "everyone" } });
ChatChats::api(carol => PUT => "/api/users/profile",
               { privacy => { readReceipts => "everyone" } });
$main::G = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "ledger", memberIds => [$ChatChats::Id{bob}, $ChatChats::Id{carol}] })->{chat}{id};
my $p = ChatChats::api(alice => POST => "/api/chats/private",
                       { userId => $ChatChats::Id{bob} })->{chat}{id};
main::devices();
my $G = $main::G;
my $tag = "l" . time . $$;

# a send: every device of every member, with its tempId
my $m = ChatChats::api(alice => POST => "/api/messages",
    { chatId => $G, tempId => "$tag-1", type => "text", content => "hi" });
$main::M{m1} = $m->{message}{id};
push @r, "send: " . main::ledger(undef, sub {
    my $e = shift;
    ($e->{data}{tempId} // "") eq "$tag-1"
        && $e->{data}{message}{id} eq $main::M{m1} ? "t" : "bad" });

# the same tempId again: answered, nothing pushed
my ($st) = ChatChats::call(alice => POST => "/api/messages",
    { chatId => $G, tempId => "$tag-1", type => "text", content => "hi" });
push @r, "retry $st: " . main::ledger();

# reads: a message, its receipts, the chat, its messages
ChatChats::api(bob => GET => "/api/messages/$main::M{m1}");
ChatChats::api(carol => GET => "/api/messages/$main::M{m1}/receipts");
ChatChats::api(bob => GET => "/api/chats/$G");
ChatChats::api(bob => GET => "/api/chats/$G/messages");
ChatChats::api(bob => GET => "/api/chats");
push @r, "reads: " . main::ledger();

# failures: another's message edited, an unknown message reacted to,
# a chat I am not in read
ChatChats::call(bob => PUT => "/api/messages/$main::M{m1}", { content => "x" });
ChatChats::call(bob => POST => "/api/messages/" . ("0" x 24) . "/react",
                { emoji => "\x{1F44D}" });
ChatChats::call(carol => POST => "/api/chats/$p/read", { upToSeq => 1 });
push @r, "failures: " . main::ledger();

ChatChats::api(alice => PUT => "/api/messages/$main::M{m1}", { content => "hi!" });
push @r, "edit: " . main::ledger(undef, sub {
    $_[0]{data}{message}{content}{text} // "" });

# a reaction by bob's socket.io device: counts without "mine"
main::emit(main::dev("b2"), "add_reaction",
           { messageId => $main::M{m1}, emoji => "\x{1F44D}" }, 7);
push @r, "react: " . main::ledger(undef, sub {
    my $e = shift;
    return "" if $e->{event} ne "message_reaction";
    my $x = $e->{data}{message}{reactions}[0];
    join ",", $x->{count}, (exists $x->{mine} ? "mine" : "nomine"),
        ($e->{data}{userId} eq $ChatChats::Id{bob} ? "bob" : "?") });

# read receipts on: bob reads by messageId, all devices learn it
main::emit(main::dev("b1"), "message_read",
           { messageId => $main::M{m1}, chatId => $G }, 8);
push @r, "read: " . main::ledger(undef, \&main::status);

# not moving the marker: back, the same, past the end
ChatChats::api(bob => POST => "/api/chats/$G/read", { upToSeq => 0 });
ChatChats::api(bob => POST => "/api/chats/$G/read", { upToSeq => 1 });
ChatChats::api(bob => POST => "/api/chats/$G/read", { upToSeq => 99999 });
ChatChats::api(bob => POST => "/api/chats/$G/delivered", { upToSeq => 1 });
push @r, "read again: " . main::ledger();

# delivered by carol's socket.io device
main::emit(main::dev("c2"), "message_delivered", { messageId => $main::M{m1} }, 9);
push @r, "delivered: " . main::ledger(undef, \&main::status);

# read receipts off: carol's read is read on her devices only; to the
# others it is delivered, if that moved (delivered already: nothing)
ChatChats::api(carol => PUT => "/api/users/profile",
               { privacy => { readReceipts => "nobody" } });
$m = ChatChats::api(bob => POST => "/api/messages",
    { chatId => $G, tempId => "$tag-2", type => "text", content => "yo" });
$main::M{m2} = $m->{message}{id};
push @r, "send2: " . main::ledger();
ChatChats::api(carol => POST => "/api/chats/$G/delivered",
               { upToSeq => $m->{message}{seq} });
push @r, "delivered2: " . main::ledger(undef, \&main::status);
ChatChats::api(carol => POST => "/api/chats/$G/read",
               { upToSeq => $m->{message}{seq} });
push @r, "private read: " . main::ledger(undef, \&main::status);
$m = ChatChats::api(alice => POST => "/api/messages",
    { chatId => $G, tempId => "$tag-3", type => "text", content => "z" });
$main::M{m3} = $m->{message}{id};
main::ledger();
ChatChats::api(carol => POST => "/api/chats/$G/read",
               { upToSeq => $m->{message}{seq} });
push @r, "private read, undelivered: " . main::ledger(undef, \&main::status);

# deleted for me: nobody else; for everyone: once
ChatChats::api(alice => DELETE => "/api/messages/$main::M{m2}");
push @r, "delete for me: " . main::ledger();
ChatChats::api(bob => DELETE => "/api/messages/$main::M{m2}?forEveryone=true");
push @r, "delete for everyone: " . main::ledger();
ChatChats::api(bob => DELETE => "/api/messages/$main::M{m2}?forEveryone=true");
main::emit(main::dev("b1"), "delete_message",
           { messageId => $main::M{m2}, deleteForEveryone => JSON::PP::true }, 10);
push @r, "again: " . main::ledger();

# a forward to the private chat, and its retry
($st) = ChatChats::call(bob => POST => "/api/messages/$main::M{m1}/forward",
                        { chatIds => [$p] });
push @r, "forward $st: " . main::ledger(undef, sub {
    exists $_[0]{data}{tempId} ? "t" : "no-tempId" });
($st) = ChatChats::call(bob => POST => "/api/messages/$main::M{m1}/forward",
                        { chatIds => [$p] });
push @r, "forward again $st: " . main::ledger();

$main::Got = join "\n", @r;
--- response_body
send: a1:new_message[t] a2:new_message[t] b1:new_message[t] b2:new_message[t] c1:new_message[t] c2:new_message[t]
retry 200: -
reads: -
failures: -
edit: a1:message_edited[hi!] a2:message_edited[hi!] b1:message_edited[hi!] b2:message_edited[hi!] c1:message_edited[hi!] c2:message_edited[hi!]
react: a1:message_reaction[1,nomine,bob] a2:message_reaction[1,nomine,bob] b1:message_reaction[1,nomine,bob] b2:ack b2:message_reaction[1,nomine,bob] c1:message_reaction[1,nomine,bob] c2:message_reaction[1,nomine,bob]
read: a1:message_status_update[read:bob:1:m1] a2:message_status_update[read:bob:1:m1] b1:ack b1:message_status_update[read:bob:1:m1] b2:message_status_update[read:bob:1:m1] c1:message_status_update[read:bob:1:m1] c2:message_status_update[read:bob:1:m1]
read again: -
delivered: a1:message_status_update[delivered:carol:1:m1] a2:message_status_update[delivered:carol:1:m1] b1:message_status_update[delivered:carol:1:m1] b2:message_status_update[delivered:carol:1:m1] c1:message_status_update[delivered:carol:1:m1] c2:ack c2:message_status_update[delivered:carol:1:m1]
send2: a1:new_message a2:new_message b1:new_message b2:new_message c1:new_message c2:new_message
delivered2: a1:message_status_update[delivered:carol:2:m2] a2:message_status_update[delivered:carol:2:m2] b1:message_status_update[delivered:carol:2:m2] b2:message_status_update[delivered:carol:2:m2] c1:message_status_update[delivered:carol:2:m2] c2:message_status_update[delivered:carol:2:m2]
private read: c1:message_status_update[read:carol:2:m2] c2:message_status_update[read:carol:2:m2]
private read, undelivered: a1:message_status_update[delivered:carol:3:m3] a2:message_status_update[delivered:carol:3:m3] b1:message_status_update[delivered:carol:3:m3] b2:message_status_update[delivered:carol:3:m3] c1:message_status_update[read:carol:3:m3] c2:message_status_update[read:carol:3:m3]
delete for me: -
delete for everyone: a1:message_deleted a2:message_deleted b1:message_deleted b2:message_deleted c1:message_deleted c2:message_deleted
again: b1:ack
forward 201: a1:new_message[t] a2:new_message[t] b1:new_message[t] b2:new_message[t]
forward again 200: -
--- timeout: 90



=== TEST 2: chats: create, add, roles, remove, settings, rename, leave (with a successor), private
--- init
ChatChats::setup();
my @r;
main::devices();
# a chat in an event is the one every member sees: none of the
# requester's own fields
my $shared = sub {
    my $c = shift;
    return "no-chat" unless ref $c eq "HASH";
    my @own = grep { exists $c->{$_} }
              qw(role settings readSeq deliveredSeq unreadCount);
    return @own ? "own:" . join(",", @own) : "shared";
};
my $show = sub {
    my $e = shift;
    my $d = $e->{data};
    return $d->{message}{content}{action} // "" if $e->{event} eq "new_message";
    return join ",", (($d->{chatId} // "no-id") eq $main::G2 ? "id" : "wrong-id"),
        $shared->($d->{chat}), ($d->{chat}{id} // "") eq $main::G2 ? () : "wrong-chat",
        $e->{event} eq "chat_updated" ? $d->{chat}{name} : ()
        if $e->{event} =~ /^chat_(removed|updated)$/;
    return join ",", $shared->($d->{chat}),
        ($d->{chat}{id} // "") eq ($main::G2 // "") ? "g2" : "other"
        if $e->{event} eq "chat_created";
    return (exists $d->{settings}{settings} ? "nested"
            : defined $d->{settings}{muted} ? "flat" : "none")
        if $e->{event} eq "chat_settings_updated";
    return "";
};

# the devices record before the answer: the chat id is known after it
$main::G2 = ChatChats::api(carol => POST => "/api/chats/group",
    { name => "g2", memberIds => [$ChatChats::Id{alice}] })->{chat}{id};
my $G2 = $main::G2;
push @r, "create: " . main::ledger(undef, $show);

ChatChats::api(carol => POST => "/api/chats/$G2/members",
               { userIds => [$ChatChats::Id{bob}] });
push @r, "add: " . main::ledger(undef, $show);
ChatChats::api(carol => POST => "/api/chats/$G2/members",
               { userIds => [$ChatChats::Id{bob}] });
push @r, "add again: " . main::ledger(undef, $show);

# one already in and one new: chat_created to the new one only
$ChatChats::Tok{dave} //= ChatAuth::sign_in($ChatChats::Twilio,
                                            $ChatChats::Phone{dave}, "dave");
$ChatChats::Id{dave} = $ChatChats::Tok{dave}{user}{id};
ChatChats::api(carol => POST => "/api/chats/$G2/members",
               { userIds => [$ChatChats::Id{alice}, $ChatChats::Id{dave}] });
push @r, "add one new: " . main::ledger(undef, $show);

# roles: promoted, demoted, demoted again (it was: nothing)
ChatChats::api(carol => PUT => "/api/chats/$G2/members/$ChatChats::Id{alice}/role",
               { role => "admin" });
push @r, "promote: " . main::ledger(undef, $show);
ChatChats::api(carol => PUT => "/api/chats/$G2/members/$ChatChats::Id{alice}/role",
               { role => "member" });
push @r, "demote: " . main::ledger(undef, $show);
my ($st, $b) = ChatChats::call(carol => PUT =>
    "/api/chats/$G2/members/$ChatChats::Id{alice}/role", { role => "member" });
push @r, "demote again $st " . (exists $b->{message} ? "message" : "no-message")
    . ": " . main::ledger(undef, $show);

ChatChats::api(carol => DELETE => "/api/chats/$G2/members/$ChatChats::Id{bob}");
push @r, "remove: " . main::ledger(undef, $show);
($st) = ChatChats::call(carol => DELETE => "/api/chats/$G2/members/$ChatChats::Id{bob}");
push @r, "remove again $st: " . main::ledger(undef, $show);

ChatChats::api(alice => PUT => "/api/chats/$G2/settings", { muted => JSON::PP::true });
push @r, "settings: " . main::ledger(undef, $show);
ChatChats::api(alice => PUT => "/api/chats/$G2/settings", { muted => JSON::PP::true });
push @r, "settings again: " . main::ledger(undef, $show);

ChatChats::api(carol => PUT => "/api/chats/$G2", { name => "g2b" });
push @r, "rename: " . main::ledger(undef, $show);
# the same name, and a permission as it is: nothing changed
($st, $b) = ChatChats::call(carol => PUT => "/api/chats/$G2",
    { name => "g2b", onlyAdminsCanSend => JSON::PP::false });
push @r, "rename again $st " . (exists $b->{message} ? "message" : "no-message")
    . " $b->{chat}{name}: " . main::ledger(undef, $show);

# the last admin leaves: alice is promoted, in the system message
ChatChats::api(carol => POST => "/api/chats/$G2/leave");
push @r, "leave: " . main::ledger(undef, sub {
    my $e = shift;
    my $c = $e->{data}{message}{content};
    return join ",", $c->{action},
        (($c->{promotedIds} // [])->[0] // "") eq $ChatChats::Id{alice} ? "alice" : "none"
        if $e->{event} eq "new_message";
    $show->($e) });
($st) = ChatChats::call(carol => POST => "/api/chats/$G2/leave");
push @r, "leave again $st: " . main::ledger();

# leave_chat (stop following) for a chat I am not in: 404 on both codecs
main::emit(main::dev("c1"), "leave_chat", { chatId => $G2 }, 11);
main::emit(main::dev("c2"), "leave_chat", { chatId => $G2 }, 12);
push @r, "leave_chat: " . main::ledger(undef, sub {
    $_[0]{status} // "" });

# a private chat: made, then found (nothing)
($st, $b) = ChatChats::call(bob => POST => "/api/chats/private",
                            { userId => $ChatChats::Id{carol} });
$main::G2 = $b->{chat}{id};
push @r, "private $st: " . main::ledger(undef, $show);
($st) = ChatChats::call(carol => POST => "/api/chats/private",
                        { userId => $ChatChats::Id{bob} });
push @r, "private again $st: " . main::ledger(undef, $show);

# its sockets joined it: a message reaches them all
ChatChats::api(carol => POST => "/api/messages",
    { chatId => $main::G2, tempId => "p" . time . $$, type => "text",
      content => "hey" });
push @r, "private send: " . main::ledger();

$main::Got = join "\n", @r;
--- response_body
create: a1:chat_created[shared,g2] a2:chat_created[shared,g2] c1:chat_created[shared,g2] c2:chat_created[shared,g2]
add: a1:new_message[member_added] a2:new_message[member_added] b1:chat_created[shared,g2] b2:chat_created[shared,g2] c1:new_message[member_added] c2:new_message[member_added]
add again: -
add one new: a1:new_message[member_added] a2:new_message[member_added] b1:new_message[member_added] b2:new_message[member_added] c1:new_message[member_added] c2:new_message[member_added]
promote: a1:chat_updated[id,shared,g2] a1:new_message[admin_promoted] a2:chat_updated[id,shared,g2] a2:new_message[admin_promoted] b1:chat_updated[id,shared,g2] b1:new_message[admin_promoted] b2:chat_updated[id,shared,g2] b2:new_message[admin_promoted] c1:chat_updated[id,shared,g2] c1:new_message[admin_promoted] c2:chat_updated[id,shared,g2] c2:new_message[admin_promoted]
demote: a1:chat_updated[id,shared,g2] a1:new_message[admin_demoted] a2:chat_updated[id,shared,g2] a2:new_message[admin_demoted] b1:chat_updated[id,shared,g2] b1:new_message[admin_demoted] b2:chat_updated[id,shared,g2] b2:new_message[admin_demoted] c1:chat_updated[id,shared,g2] c1:new_message[admin_demoted] c2:chat_updated[id,shared,g2] c2:new_message[admin_demoted]
demote again 200 no-message: -
remove: a1:new_message[member_removed] a2:new_message[member_removed] b1:chat_removed[id,shared] b1:new_message[member_removed] b2:chat_removed[id,shared] b2:new_message[member_removed] c1:new_message[member_removed] c2:new_message[member_removed]
remove again 404: -
settings: a1:chat_settings_updated[flat] a2:chat_settings_updated[flat]
settings again: -
rename: a1:chat_updated[id,shared,g2b] a1:new_message[group_updated] a2:chat_updated[id,shared,g2b] a2:new_message[group_updated] c1:chat_updated[id,shared,g2b] c1:new_message[group_updated] c2:chat_updated[id,shared,g2b] c2:new_message[group_updated]
rename again 200 no-message g2b: -
leave: a1:new_message[member_left,alice] a2:new_message[member_left,alice] c1:chat_removed[id,shared] c1:new_message[member_left,alice] c2:chat_removed[id,shared] c2:new_message[member_left,alice]
leave again 404: -
leave_chat: c1:error[404] c2:error[404]
private 201: b1:chat_created[shared,g2] b2:chat_created[shared,g2] c1:chat_created[shared,g2] c2:chat_created[shared,g2]
private again 200: -
private send: b1:new_message b2:new_message c1:new_message c2:new_message
--- timeout: 90



=== TEST 3: a flood of reads by a member delivers nothing to anyone
--- init
ChatChats::setup();
main::devices();
my $G = $main::G;
my $id = ChatChats::api(alice => POST => "/api/messages",
    { chatId => $G, tempId => "flood" . time . $$, type => "text",
      content => "read me" })->{message}{id};
main::ledger();
my $http = HTTP::Tiny->new(keep_alive => 1);
my $ok = 0;
for (1 .. 1000) {
    my $res = $http->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/messages/$id",
        { headers => { Authorization =>
                       "Bearer $ChatChats::Tok{bob}{accessToken}" } });
    $ok++ if $res->{status} == 200;
}
$main::Got = "$ok " . main::ledger(1);
--- response_body
1000 -
--- timeout: 120



=== TEST 4: sync with exactly 100 missing sends them all and no sync_gap; 101 do
--- init
ChatChats::setup();
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "sync", memberIds => [$ChatChats::Id{carol}] })->{chat}{id};
my $tag = "s" . time . $$;
my $sync = sub {
    my $s = ChatRT::connect("carol");
    ChatRT::send_event($s, "sync", { chats => { $g => 0 } }, 1);
    my ($n, $gap, $last) = (0, "no-gap", "");
    while (my $e = ChatRT::next_event($s, 5)) {
        $n++ if $e->{event} eq "new_message";
        $gap = "gap-after-$e->{data}{afterSeq}" if $e->{event} eq "sync_gap";
        if ($e->{event} eq "synced") {
            $last = $e->{data}{chats}{$g}{lastSeq};
            last;
        }
    }
    return "$n $gap last=$last";
};
for my $i (1 .. 100) {
    ChatChats::api(alice => POST => "/api/messages",
        { chatId => $g, tempId => "$tag-$i", type => "text", content => "m$i" });
}
my @r = ($sync->());
ChatChats::api(alice => POST => "/api/messages",
    { chatId => $g, tempId => "$tag-x", type => "text", content => "one more" });
push @r, $sync->();
$main::Got = join "\n", @r;
--- response_body
100 no-gap last=100
100 gap-after-100 last=100
--- timeout: 60



=== TEST 5: realtime errors carry REST's status for the same code, on both codecs
--- init
ChatChats::setup();
my @r;
my $s = ChatRT::connect("alice", anonymous => 1);
ChatRT::send_event($s, "join_chat", { chatId => "0" x 24 }, 1);
my $e = ChatRT::wait_for($s, "error", 3, 1);
push @r, "ws-anonymous:$e->{error}{code}:$e->{status}";
$s = ChatRT::connect("alice");
ChatRT::send_event($s, "join_chat", { chatId => "0" x 24 }, 2);
$e = ChatRT::wait_for($s, "error", 3, 2);
push @r, "ws-join:$e->{error}{code}:$e->{status}";
ChatRT::send_event($s, "typing_start", { chatId => "0" x 24 }, 3);
$e = ChatRT::wait_for($s, "error", 3, 3);
push @r, "ws-typing:$e->{error}{code}:$e->{status}";
ChatRT::send_event($s, "leave_chat", { chatId => "0" x 24 }, 4);
$e = ChatRT::wait_for($s, "error", 3, 4);
push @r, "ws-leave:$e->{error}{code}:$e->{status}";
@main::Dev = ({ name => "x", s => main::sio_connect("alice"), sio => 1 });
main::emit($main::Dev[0], "typing_start", { chatId => "0" x 24 }, 5);
$e = main::next_of($main::Dev[0], 3);
push @r, "sio-typing:$e->{error}{code}:$e->{status}";
my ($st, $b) = ChatChats::call(alice => GET => "/api/chats/" . ("0" x 24));
push @r, "rest:$b->{error}{code}:$st";
$main::Got = join " ", @r;
--- response_body
ws-anonymous:unauthenticated:401 ws-join:not_found:404 ws-typing:not_found:404 ws-leave:not_found:404 sio-typing:not_found:404 rest:not_found:404

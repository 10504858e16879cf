# The chat endpoint (chat_ws): authentication, the seed's events, fan-out
# to every member's sockets (several devices of one user included), acks
# after storage, typing, receipts, pushes of REST changes, new chats
# joined on the fly, and resync after a disconnect.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;

our ($Got, %Id);
*Id = \%ChatChats::Id;

BEGIN {
    ChatChats::init("642", "chat_otp_resend_delay 1s;");
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        chat_ws_auth_timeout 1s;
    }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
});

sub main::private_chat {
    my ($a, $b) = @_;
    return ChatChats::api($a => POST => "/api/chats/private",
                          { userId => $ChatChats::Id{$b} })->{chat}{id};
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a token in the query authenticates the socket
--- init
ChatChats::setup();
my $s = ChatRT::connect("alice", no_wait => 1);
my $e = ChatRT::next_event($s);
$main::Got = "$e->{event} "
    . ($e->{data}{user}{id} eq $ChatChats::Id{alice} ? "alice" : "other");
--- response_body
authenticated alice



=== TEST 2: the authenticate event; a bad token; no token in time
--- init
ChatChats::setup();
my @r;
my $s = ChatRT::connect("bob", anonymous => 1);
ChatRT::send_event($s, "send_message", { chatId => "x" }, 1);
my $e = ChatRT::next_event($s);
push @r, "$e->{event}:$e->{error}{code}:$e->{id}";
ChatRT::send_event($s, "authenticate", { token => "not.a.token" }, 2);
$e = ChatRT::next_event($s);
push @r, "$e->{event}:$e->{id}";
ChatRT::send_event($s, "authenticate",
                   { token => $ChatChats::Tok{bob}{accessToken} }, 3);
$e = ChatRT::next_event($s);
push @r, "$e->{event}:$e->{id}:"
         . ($e->{data}{user}{id} eq $ChatChats::Id{bob} ? "bob" : "?");
my $t = ChatRT::connect("bob", anonymous => 1);
$e = ChatRT::next_event($t, 3);
push @r, $e->{event};
$e = ChatRT::next_event($t, 3);
push @r, "$e->{event}:$e->{code}";
$main::Got = "@r";
--- response_body
error:unauthenticated:1 authentication_error:2 authenticated:3:bob authentication_error close:1008



=== TEST 3: bad events get errors, the socket stays; binary is refused
--- init
ChatChats::setup();
my @r;
my $s = ChatRT::connect("alice");
ChatWS::text($s, "{not json");
my $e = ChatRT::next_event($s);
push @r, $e->{error}{code};
ChatRT::send_event($s, "fly_away", {}, 7);
$e = ChatRT::next_event($s);
push @r, "$e->{error}{code}:$e->{id}";
ChatWS::text($s, '{"event":"join_chat","data":[1]}');
$e = ChatRT::next_event($s);
push @r, $e->{error}{code};
ChatRT::send_event($s, "join_chat", { chatId => { '$gt' => "" } }, 8);
$e = ChatRT::next_event($s);
push @r, $e->{error}{code};
ChatRT::send_event($s, "join_chat", { chatId => "0123456789abcdef01234567" }, 9);
$e = ChatRT::next_event($s);
push @r, "$e->{event}:$e->{status}:$e->{error}{code}";
# every event's own bad data: answered, the socket stays
for my $ev (["sync", { chats => [1] }], ["sync", { chats => { x => 1 } }],
            ["sync", { chats => { "0123456789abcdef01234567" => -1 } }],
            ["typing_start", { chatId => "nope" }],
            ["typing_start", { chatId => "0123456789abcdef01234567" }],
            ["message_read", {}], ["message_delivered", { messageId => 5 }],
            ["edit_message", { messageId => { '$ne' => 0 } }],
            ["delete_message", { messageId => "0123456789ABCDEF01234567" }],
            ["add_reaction", { emoji => "x" }],
            ["leave_chat", { chatId => [] }],
            ["subscribe_presence", {}],
            ["send_message", { chatId => "0123456789abcdef01234567",
                               tempId => "t", type => "text", content => "x" }],
            ["authenticate", { token => "again" }])
{
    ChatRT::send_event($s, $ev->[0], $ev->[1], 20);
    $e = ChatRT::wait_for($s, "error", 3, 20);
    push @r, $e ? "$ev->[0]:$e->{error}{code}" : "$ev->[0]:none";
}
ChatWS::send_frame($s, opcode => 2, payload => "\x01");
$e = ChatRT::next_event($s);
push @r, "$e->{event}:$e->{code}";
$main::Got = join "\n", @r;
--- response_body
malformed_event
unknown_event:7
malformed_event
invalid_value
error:404:not_found
sync:invalid_value
sync:invalid_value
sync:invalid_value
typing_start:invalid_value
typing_start:not_found
message_read:invalid_value
message_delivered:invalid_value
edit_message:invalid_value
delete_message:invalid_value
add_reaction:invalid_value
leave_chat:invalid_value
subscribe_presence:invalid_value
send_message:not_found
authenticate:invalid_token
close:1003



=== TEST 4: send_message is stored, acked to the sender, pushed to both users
--- init
ChatChats::setup();
my @r;
my $chat = main::private_chat("alice", "bob");
my $a = ChatRT::connect("alice");
my $b = ChatRT::connect("bob");
ChatRT::send_event($a, "send_message",
                   { chatId => $chat, tempId => "rt-4",
                     content => { type => "text", text => "hi bob" } }, 41);
my @ae = ChatRT::drain($a, 1);
my @be = ChatRT::drain($b, 1);
my ($ack) = grep { $_->{event} eq "ack" } @ae;
push @r, "ack:$ack->{id}:$ack->{data}{message}{content}{text}:"
         . ($ack->{data}{message}{seq} =~ /^\d+$/ ? "seq" : "noseq");
push @r, join ",", sort map { $_->{event} } @ae;
my ($nm) = grep { $_->{event} eq "new_message" } @be;
push @r, "bob:$nm->{data}{message}{content}{text}:$nm->{data}{tempId}:"
         . ($nm->{data}{message}{seq} == $ack->{data}{message}{seq}
            ? "same" : "differs");
# the same tempId again: the same message, not a second one
ChatRT::send_event($a, "send_message",
                   { chatId => $chat, tempId => "rt-4",
                     content => { type => "text", text => "hi bob" } }, 42);
my $again = ChatRT::wait_for($a, "ack", 3, 42);
push @r, $again->{data}{message}{id} eq $ack->{data}{message}{id}
         ? "idempotent" : "duplicated";
my @more = ChatRT::drain($b, 1);
push @r, "bob-extra:" . scalar(grep { $_->{event} eq "new_message" } @more);
$main::Got = "@r";
--- response_body
ack:41:hi bob:seq ack,new_message bob:hi bob:rt-4:same idempotent bob-extra:0



=== TEST 5: a group with one user on two devices: order, typing, receipts
--- init
ChatChats::setup();
my @r;
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "rt", memberIds => [ $ChatChats::Id{bob}, $ChatChats::Id{carol} ] })
    ->{chat}{id};
my $a1 = ChatRT::connect("alice");
my $a2 = ChatRT::connect("alice");
my $b = ChatRT::connect("bob");
my $c = ChatRT::connect("carol");
for my $i (1 .. 5) {
    ChatRT::send_event($b, "send_message",
        { chatId => $g, tempId => "g5-$i", type => "text", content => "m$i" }, $i);
}
for my $who ([a1 => $a1], [a2 => $a2], [c => $c]) {
    my @e = grep { $_->{event} eq "new_message" } ChatRT::drain($who->[1], 1);
    push @r, "$who->[0]:" . join ",", map { $_->{data}{message}{content}{text} } @e;
}
my @backs = grep { $_->{event} eq "ack" } ChatRT::drain($b, 0.5);
push @r, "acks:" . scalar(@backs);
ChatRT::send_event($b, "typing_start", { chatId => $g });
for my $who ([a1 => $a1], [a2 => $a2], [c => $c], [b => $b]) {
    my @e = grep { $_->{event} eq "user_typing" } ChatRT::drain($who->[1], 0.7);
    push @r, "$who->[0]-typing:" . join ",", map {
        ($_->{data}{userId} eq $ChatChats::Id{bob} ? "bob" : "?")
        . ($_->{data}{isTyping} ? "+" : "-") } @e;
}
my $last = $backs[-1]{data}{message}{id};
ChatRT::send_event($c, "message_read", { messageId => $last, chatId => $g }, 99);
my @ae = ChatRT::drain($a1, 1);
my ($st) = grep { $_->{event} eq "message_status_update" } @ae;
push @r, "status:$st->{data}{status}:"
         . ($st->{data}{userId} eq $ChatChats::Id{carol} ? "carol" : "?")
         . ":$st->{data}{upToSeq}";
my ($cack) = grep { $_->{event} eq "ack" } ChatRT::drain($c, 0.5);
push @r, "carol-ack:" . ($cack ? $cack->{id} : "none");
$main::Got = "@r";
--- response_body
a1:m1,m2,m3,m4,m5 a2:m1,m2,m3,m4,m5 c:m1,m2,m3,m4,m5 acks:5 a1-typing:bob+ a2-typing:bob+ c-typing:bob+ b-typing: status:read:carol:5 carol-ack:99



=== TEST 6: changes made over REST reach the sockets; edit, react, delete
--- init
ChatChats::setup();
my @r;
my $chat = main::private_chat("carol", "bob");
my $b = ChatRT::connect("bob");
my $m = ChatChats::api(carol => POST => "/api/messages",
    { chatId => $chat, tempId => "rest-6", type => "text", content => "from rest" })
    ->{message};
ChatChats::api(carol => PUT => "/api/messages/$m->{id}", { content => "edited" });
ChatChats::api(bob => POST => "/api/messages/$m->{id}/react",
               { emoji => "\x{1F44D}" });
ChatChats::api(carol => DELETE => "/api/messages/$m->{id}?forEveryone=true");
my @e = ChatRT::drain($b, 1);
push @r, join ",", map { $_->{event} } @e;
push @r, $e[0]{data}{message}{content}{text}, $e[1]{data}{message}{content}{text};
$main::Got = "@r";
--- response_body
new_message,message_edited,message_reaction,message_deleted from rest edited



=== TEST 7: a chat made after the socket opened is joined on the fly
--- init
ChatChats::setup();
my @r;
my $c = ChatRT::connect("carol");
my $a = ChatRT::connect("alice");
my $g = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "later", memberIds => [ $ChatChats::Id{carol} ] })->{chat}{id};
my $e = ChatRT::wait_for($c, "chat_created", 3);
push @r, $e && $e->{data}{chat}{id} eq $g ? "created" : "missing";
ChatRT::send_event($a, "send_message",
    { chatId => $g, tempId => "late-1", type => "text", content => "welcome" }, 1);
$e = ChatRT::wait_for($c, "new_message", 3);
push @r, $e ? $e->{data}{message}{content}{text} : "none";
$main::Got = "@r";
--- response_body
created welcome



=== TEST 8: a socket that missed messages resyncs them in order, none lost
--- init
ChatChats::setup();
my @r;
my $chat = main::private_chat("alice", "carol");
my $c = ChatRT::connect("carol");
my $a = ChatRT::connect("alice");
ChatRT::send_event($a, "send_message",
    { chatId => $chat, tempId => "s8-0", type => "text", content => "seen" }, 1);
my $seen = ChatRT::wait_for($c, "new_message", 3);
my $last = $seen->{data}{message}{seq};
close $c;
for my $i (1 .. 4) {
    ChatRT::send_event($a, "send_message",
        { chatId => $chat, tempId => "s8-$i", type => "text", content => "missed$i" }, 1 + $i);
}
ChatRT::drain($a, 1);
$c = ChatRT::connect("carol");
ChatRT::send_event($c, "sync", { chats => { $chat => $last } }, 77);
my @e = ChatRT::drain($c, 1);
push @r, join ",", map {
    $_->{event} eq "new_message" ? $_->{data}{message}{content}{text} : $_->{event} } @e;
my ($done) = grep { $_->{event} eq "synced" } @e;
push @r, $done->{id}, $done->{data}{chats}{$chat}{lastSeq} - $last;
$main::Got = "@r";
--- response_body
missed1,missed2,missed3,missed4,synced 77 4



=== TEST 9: presence: online and offline with last seen, as privacy allows
--- init
ChatChats::setup();
my @r;
my $phone = sprintf("+1628642%04d", ($$ % 10000 + 3) % 10000);
$ChatChats::Tok{dave} = ChatAuth::sign_in($ChatChats::Twilio, $phone, "dave");
my $dave = $ChatChats::Tok{dave}{user}{id};
my $c = ChatRT::connect("carol");
ChatRT::send_event($c, "subscribe_presence", { userId => $dave }, 1);
my $ack = ChatRT::wait_for($c, "ack", 3, 1);
push @r, "before:" . ($ack->{data}{user}{online} ? "on" : "off");
my $d = ChatRT::connect("dave");
my $d2 = ChatRT::connect("dave");
my $e = ChatRT::wait_for($c, "user_online", 3);
push @r, $e && $e->{data}{userId} eq $dave ? "online" : "no-online";
close $d;
my @quiet = grep { $_->{event} =~ /^user_/ } ChatRT::drain($c, 1);
push @r, "one-device-left:" . scalar(@quiet);
close $d2;
$e = ChatRT::wait_for($c, "user_offline", 3);
push @r, $e && $e->{data}{lastSeen} =~ /^\d{4}-\d\d-\d\dT/ ? "offline-at" : "no-offline";
my $u = ChatChats::api(carol => GET => "/api/users/$dave")->{user};
push @r, "rest:" . ($u->{online} ? "on" : "off") . ":" . ($u->{lastSeen} ? "seen" : "unseen");
# online hidden from everyone: no subscription, no events
ChatChats::api(dave => PUT => "/api/users/profile",
               { privacy => { online => "nobody" } });
my $b = ChatRT::connect("bob");
ChatRT::send_event($b, "subscribe_presence", { userId => $dave }, 2);
$ack = ChatRT::wait_for($b, "ack", 3, 2);
push @r, "hidden:" . (exists $ack->{data}{user}{online} ? "shown" : "hidden");
$d = ChatRT::connect("dave");
push @r, "bob-events:" . scalar(grep { $_->{event} =~ /^user_/ } ChatRT::drain($b, 1));
ChatRT::send_event($b, "subscribe_presence", { userId => "nope" }, 3);
$e = ChatRT::wait_for($b, "error", 3, 3);
push @r, $e->{error}{code};
$main::Got = "@r";
--- response_body
before:off online one-device-left:0 offline-at rest:off:seen hidden:hidden bob-events:0 invalid_value



=== TEST 10: a logout closes the sockets of that session, not the others
--- init
ChatChats::setup();
my @r;
# two sessions of one user (two sign-ins of one number)
my $phone = sprintf("+1628642%04d", ($$ % 10000 + 4) % 10000);
$ChatChats::Tok{erin} = ChatAuth::sign_in($ChatChats::Twilio, $phone, "erin");
Time::HiRes::sleep(2.2);
$ChatChats::Tok{erin2} = ChatAuth::sign_in($ChatChats::Twilio, $phone, "erin");
my $s1 = ChatRT::connect("erin2");
my $s2 = ChatRT::connect("erin2");
my $other = ChatRT::connect("erin");
ChatChats::api(erin2 => POST => "/api/auth/logout", {});
for my $s ($s1, $s2) {
    my @e = ChatRT::drain($s, 1);
    push @r, join ",", map { $_->{event} . ($_->{code} ? ":$_->{code}" : "") } @e;
}
push @r, "other:" . scalar(ChatRT::drain($other, 0.5));
$main::Got = "@r";
--- response_body
session_revoked,close:1008 session_revoked,close:1008 other:0



=== TEST 11: a forward reaches the target chat; my chat settings reach my devices only
--- init
ChatChats::setup();
my @r;
my $ab = main::private_chat("alice", "bob");
my $ac = main::private_chat("alice", "carol");
my $m = ChatChats::api(bob => POST => "/api/messages",
    { chatId => $ab, tempId => "f11", type => "text", content => "pass it on" })
    ->{message};
my $a = ChatRT::connect("alice");
my $b = ChatRT::connect("bob");
my $c = ChatRT::connect("carol");
ChatChats::api(alice => POST => "/api/messages/$m->{id}/forward",
               { chatIds => [ $ac ] });
my $e = ChatRT::wait_for($c, "new_message", 3);
push @r, $e ? "$e->{data}{message}{content}{text}:" . ($e->{data}{message}{chatId} eq $ac ? "ac" : "?") : "none";
ChatRT::drain($a, 0.5);
ChatRT::drain($b, 0.5);
ChatChats::api(alice => PUT => "/api/chats/$ab/settings", { archived => JSON::PP::true });
$e = ChatRT::wait_for($a, "chat_settings_updated", 3);
push @r, $e && $e->{data}{chatId} eq $ab ? "mine" : "missing";
push @r, "bob:" . scalar(ChatRT::drain($b, 0.7));
$main::Got = "@r";
--- response_body
pass it on:ac mine bob:0



=== TEST 12: typing ends by itself: after 5 s, when the typer goes, on stop
--- init
ChatChats::setup();
my @r;
my $chat = main::private_chat("alice", "bob");
my $a = ChatRT::connect("alice");
my $b = ChatRT::connect("bob");
my $t0 = Time::HiRes::time();
ChatRT::send_event($b, "typing_start", { chatId => $chat });
my $e = ChatRT::wait_for($a, "user_typing", 3);
push @r, $e->{data}{isTyping} ? "start" : "?";
$e = ChatRT::wait_for($a, "user_typing", 8);
my $after = Time::HiRes::time() - $t0;
push @r, (!$e->{data}{isTyping} && $after > 4.5 && $after < 7) ? "expired" : "not-expired:$after";
ChatRT::send_event($b, "typing_start", { chatId => $chat });
ChatRT::wait_for($a, "user_typing", 3);
ChatRT::send_event($b, "typing_stop", { chatId => $chat });
$e = ChatRT::wait_for($a, "user_typing", 3);
push @r, $e->{data}{isTyping} ? "?" : "stopped";
Time::HiRes::sleep(1.1);
ChatRT::send_event($b, "typing_start", { chatId => $chat });
ChatRT::wait_for($a, "user_typing", 3);
close $b;
$e = ChatRT::wait_for($a, "user_typing", 3);
push @r, $e && !$e->{data}{isTyping} ? "gone" : "stuck";
$main::Got = "@r";
--- timeout: 30
--- response_body
start expired stopped gone

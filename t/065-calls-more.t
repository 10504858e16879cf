# Calls, more: glare (both call each other at once: the call with the
# smaller id wins), a device that goes (dropped after the grace, or kept
# when the user signals from another socket), group calls in a group's
# chat (members only, mesh signalling), and a full flow over Socket.IO.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatWS;
use JSON::PP;
use Time::HiRes ();

BEGIN {
    ChatChats::init("665", "chat_call_ring_timeout 4s;\n"
                           . "    chat_call_grace 1s;");
}

*Id = \%ChatChats::Id;
our (%Id, %Chat, $Got);

sub call { ChatChats::call(@_) }
sub api { ChatChats::api(@_) }

sub setup {
    return if %Chat;
    ChatChats::setup(qw(dave erin));
    $Chat{ab} = api(alice => POST => "/api/chats/private",
                    { userId => $Id{bob} })->{chat}{id};
    $Chat{g} = api(alice => POST => "/api/chats/group",
                   { name => "Team", memberIds => [ $Id{bob}, $Id{carol} ] })->{chat}{id};
}

sub dev { ChatRT::connect($_[0]) }

my $Seq = 0;

sub ask {
    my ($s, $event, $data) = @_;
    my $id = ++$Seq;
    ChatRT::send_event($s, $event, $data, $id);
    for (;;) {
        my $e = ChatRT::next_event($s, 5) or return { event => "timeout" };
        return $e if defined $e->{id} && $e->{id} eq $id;
    }
}

sub ev { ChatRT::wait_for($_[0], $_[1], $_[2] // 5) }

sub heard {
    my ($s, $t) = @_;
    my @e = grep { $_->{event} =~ /^(call|incoming|webrtc)/ }
            ChatRT::drain($s, $t // 0.7);
    return join(",", map { $_->{event} } @e) || "-";
}

sub entry {
    my ($who, $id) = @_;
    my ($e) = grep { $_->{id} eq $id }
              @{ api($who => GET => "/api/calls/history?limit=50")->{items} };
    return $e // {};
}

# Socket.IO by hand over its WebSocket transport
sub sio {
    my ($who) = @_;
    my ($s, $st) = ChatWS::open_ws("/socket.io/?EIO=4&transport=websocket");
    ChatWS::read_frame($s, 3);
    ChatWS::text($s, qq(40{"token":"$ChatChats::Tok{$who}{accessToken}"}));
    while (my $f = ChatWS::read_frame($s, 3)) {
        last if $f->{payload} =~ /^42\["authenticated"/;
    }
    return $s;
}

# an EVENT with an ack id; its ACK's first argument
sub sio_ask {
    my ($s, $event, $data) = @_;
    my $id = ++$Seq;
    ChatWS::text($s, "42$id" . ChatRT::encode([$event, $data]));
    while (my $f = ChatWS::read_frame($s, 5)) {
        ChatWS::text($s, "3") if $f->{payload} eq "2";
        next unless $f->{payload} =~ /^43$id(.*)$/s;
        return JSON::PP::decode_json($1)->[0];
    }
    return {};
}

sub sio_ev {
    my ($s, $name) = @_;
    while (my $f = ChatWS::read_frame($s, 5)) {
        ChatWS::text($s, "3") if $f->{payload} eq "2";
        next unless $f->{payload} =~ /^42(.*)$/s;
        my $p = JSON::PP::decode_json($1);
        return $p->[1] if $p->[0] eq $name;
    }
    return undef;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: glare: alice and bob call each other at once; the call with the smaller id rings, the other is cancelled (reason glare) on both sides; the winner is answered
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
main::setup();
my ($a1, $b1) = map { main::dev($_) } qw(alice bob);
my @r;
# both sent before either is answered
ChatRT::send_event($a1, "call_initiate", { userId => $main::Id{bob}, type => "audio" }, "ga");
ChatRT::send_event($b1, "call_initiate", { userId => $main::Id{alice}, type => "audio" }, "gb");
my (%ack, %cancel, %ring);
for my $p ([a => $a1], [b => $b1]) {
    for my $e (ChatRT::drain($p->[1], 1)) {
        $ack{$p->[0]} = $e->{data}{call} if $e->{event} eq "ack";
        $cancel{$p->[0]}{ $e->{data}{callId} } = $e->{data}{reason}
            if $e->{event} eq "call_cancelled";
        $ring{$p->[0]} = $e->{data}{call}{id} if $e->{event} eq "incoming_call";
    }
}
my ($lo, $hi) = sort { $a cmp $b } map { $_->{id} } @ack{qw(a b)};
my %status = map { $_->{id} => main::entry(alice => $_->{id})->{status} } values %ack;
push @r, "smaller $status{$lo}, larger $status{$hi}";
my $winner = (grep { $_->{id} eq $lo } values %ack)[0];
my ($w, $l) = $winner->{callerId} eq $main::Id{alice} ? qw(a b) : qw(b a);
# the loser rang the winner's caller only if it was stored first: then
# that ringing stops (the cancel may also come to it unrung, harmless)
my $rang = ($ring{$w} // "") eq $hi;
push @r, "the loser's caller told " . ($cancel{$l}{$hi} // "?")
    . ", the winner's caller " . (!$rang || defined $cancel{$w}{$hi}
                                  ? "stops if it rang" : "rings on?");
my $callee = $w eq "a" ? [$b1, "bob"] : [$a1, "alice"];
my $caller = $w eq "a" ? $a1 : $b1;
push @r, "the winner rang " . (($ring{$l} // "") eq $lo ? "its callee" : "?");
my $x = main::ask($callee->[0], "call_accept", { callId => $lo });
push @r, "accept $x->{event} $x->{data}{call}{status}";
$x = main::ask($caller, "call_end", { callId => $lo });
push @r, "end $x->{event}";
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
smaller ringing, larger cancelled
the loser's caller told glare, the winner's caller stops if it rang
the winner rang its callee
accept ack answered
end ack
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: the device in the call goes: after the grace the call ends (answered, reason dropped) for the other side and the user's other devices
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1, $b2) = map { main::dev($_) } qw(alice bob bob);
my @r;
my $c = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "video" })->{data}{call};
main::ask($b2, "call_accept", { callId => $c->{id} });
main::ev($a1, "call_accepted");
my $t0 = Time::HiRes::time();
close $b2;
my $x = main::ev($a1, "call_ended", 6);
my $took = Time::HiRes::time() - $t0;
push @r, "alice $x->{data}{status} $x->{data}{reason} "
    . ($x->{data}{endedBy} eq $main::Id{bob} ? "bob" : "?")
    . ($took >= 0.8 ? " after the grace" : " too soon $took");
$x = main::ev($b1, "call_ended");
push @r, "b1 $x->{data}{status}";
my $h = main::entry(bob => $c->{id});
push @r, "history $h->{status} $h->{reason}";
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
alice answered dropped bob after the grace
b1 answered
history answered dropped
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: the caller's device goes while it rings: failed after the grace, bob's devices stop ringing
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1) = map { main::dev($_) } qw(alice bob);
my @r;
my $c = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "audio" })->{data}{call};
main::ev($b1, "incoming_call");
close $a1;
my $x = main::ev($b1, "call_ended", 6);
push @r, "bob $x->{data}{status} $x->{data}{reason}";
push @r, "history " . main::entry(alice => $c->{id})->{status};
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
bob failed dropped
history failed
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: the device in the call goes but the user signals from another socket within the grace: the call goes on there
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1, $b2) = map { main::dev($_) } qw(alice bob bob);
my @r;
my $c = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "video" })->{data}{call};
main::ask($b2, "call_accept", { callId => $c->{id} });
close $b2;
my $x = main::ask($b1, "webrtc_offer", { callId => $c->{id}, to => $main::Id{alice}, sdp => "restart" });
push @r, "b1 offer $x->{event}";
$x = main::ev($a1, "webrtc_offer");
push @r, "alice got $x->{data}{sdp}";
main::ask($a1, "webrtc_answer", { callId => $c->{id}, to => $main::Id{bob}, sdp => "ok" });
$x = main::ev($b1, "webrtc_answer");
push @r, "b1 got $x->{data}{sdp}";
push @r, "after the grace " . main::heard($a1, 2);
push @r, "status " . main::entry(alice => $c->{id})->{status} . " "
    . (main::entry(alice => $c->{id})->{endedAt} ? "ended" : "live");
main::ask($b1, "call_end", { callId => $c->{id} });
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
b1 offer ack
alice got restart
b1 got ok
after the grace -
status answered live
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 5: a group call: the members ring, a stranger cannot call in the group; two accept, mesh signalling between them, the caller ends it for all
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1, $c1, $d1) = map { main::dev($_) } qw(alice bob carol dave);
my @r;
my $x = main::ask($d1, "call_initiate", { chatId => $main::Chat{g}, type => "audio" });
push @r, "dave $x->{event} $x->{status} $x->{error}{code}";
$x = main::ask($a1, "call_initiate", { chatId => $main::Chat{g}, type => "video" });
my $c = $x->{data}{call};
push @r, "alice $x->{event} $c->{status} " . ($c->{isGroup} ? "group" : "?")
    . " " . scalar(@{ $c->{participants} });
for my $p ([$b1, "bob"], [$c1, "carol"]) {
    $x = main::ev($p->[0], "incoming_call");
    push @r, "$p->[1] rings " . ($x && $x->{data}{call}{chatId} eq $main::Chat{g} ? "in the group" : "?");
}
main::ask($b1, "call_accept", { callId => $c->{id} });
$x = main::ask($c1, "call_accept", { callId => $c->{id} });
push @r, "carol accepts $x->{event} $x->{data}{call}{status}";
$x = main::ev($b1, "call_accepted");
push @r, "bob hears " . ($x->{data}{userId} eq $main::Id{carol} ? "carol" : "?");
$x = main::ask($c1, "webrtc_offer", { callId => $c->{id}, to => $main::Id{bob}, sdp => "c2b" });
$x = main::ev($b1, "webrtc_offer");
push @r, "bob gets $x->{data}{sdp} from " . ($x->{data}{from} eq $main::Id{carol} ? "carol" : "?");
push @r, "dave heard " . main::heard($d1);
main::ask($a1, "call_end", { callId => $c->{id} });
for my $p ([$b1, "bob"], [$c1, "carol"]) {
    $x = main::ev($p->[0], "call_ended");
    push @r, "$p->[1] ended $x->{data}{status}";
}
my $h = main::entry(carol => $c->{id});
push @r, "history carol $h->{direction} $h->{status} " . ($h->{isGroup} ? "group" : "?");
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
dave error 404 not_found
alice ack ringing group 3
bob rings in the group
carol rings in the group
carol accepts ack answered
bob hears carol
bob gets c2b from carol
dave heard -
bob ended answered
carol ended answered
history carol incoming answered group
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 6: over Socket.IO: alice on Socket.IO, bob on a Socket.IO device and a plain one; answered on the Socket.IO device, offer and answer relayed to it only, ended by alice
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
    location /socket.io/ { chat_socketio; }
--- init
my $a1 = main::sio("alice");
my $bs = main::sio("bob");
my $bw = main::dev("bob");
my @r;
my $ack = main::sio_ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "audio" });
my $c = $ack->{call};
push @r, "ack $c->{status} $c->{direction}";
my $x = main::sio_ev($bs, "incoming_call");
push @r, "sio rings " . ($x && $x->{call}{id} eq $c->{id} ? "yes" : "?");
$x = main::ev($bw, "incoming_call");
push @r, "plain rings " . ($x && $x->{data}{call}{id} eq $c->{id} ? "yes" : "?");
$ack = main::sio_ask($bs, "call_accept", { callId => $c->{id} });
push @r, "accept $ack->{call}{status}";
$x = main::ev($bw, "call_answered_elsewhere");
push @r, "plain stops " . ($x ? "yes" : "?");
$x = main::sio_ev($a1, "call_accepted");
push @r, "alice hears " . ($x->{userId} eq $main::Id{bob} ? "bob" : "?");
$ack = main::sio_ask($a1, "webrtc_offer", { callId => $c->{id}, to => $main::Id{bob}, sdp => "sio offer" });
push @r, "offer acked " . ($ack->{callId} eq $c->{id} ? "yes" : "?");
$x = main::sio_ev($bs, "webrtc_offer");
push @r, "bob sio gets $x->{sdp}";
main::sio_ask($bs, "webrtc_answer", { callId => $c->{id}, to => $main::Id{alice}, sdp => "sio answer" });
$x = main::sio_ev($a1, "webrtc_answer");
push @r, "alice gets $x->{sdp}";
$ack = main::sio_ask($bs, "webrtc_offer", { callId => "nope", to => $main::Id{alice}, sdp => "x" });
push @r, "bad $ack->{status} $ack->{error}{code}";
push @r, "plain heard " . main::heard($bw);
main::sio_ask($a1, "call_end", { callId => $c->{id} });
$x = main::sio_ev($bs, "call_ended");
push @r, "bob sio ended $x->{status}";
$x = main::ev($bw, "call_ended");
push @r, "bob plain ended $x->{data}{status}";
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
ack ringing outgoing
sio rings yes
plain rings yes
accept answered
plain stops yes
alice hears bob
offer acked yes
bob sio gets sio offer
alice gets sio answer
bad 400 invalid_request
plain heard -
bob sio ended answered
bob plain ended answered
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 7: a group call running: who is in is shown to the group's members (call_participants); a member who declined joins, one leaves and the others go on, the last but one leaving ends it; a non-member cannot join
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1, $c1, $d1) = map { main::dev($_) } qw(alice bob carol dave);
my @r;
my $roster = sub {
    my ($s) = @_;
    my $x = main::ev($s, "call_participants") or return "?";
    return "$x->{data}{status} " . join(",", map {
        ($_->{userId} eq $main::Id{alice} ? "a" : $_->{userId} eq $main::Id{bob} ? "b" : "c")
        . ":$_->{state}" } @{ $x->{data}{participants} });
};
my $c = main::ask($a1, "call_initiate", { chatId => $main::Chat{g}, type => "audio" })->{data}{call};
push @r, "started, bob sees " . $roster->($b1);
main::ask($b1, "call_accept", { callId => $c->{id} });
$roster->($c1);     # the one of the start
push @r, "bob accepted, carol sees " . $roster->($c1);
main::ask($c1, "call_reject", { callId => $c->{id} });
my $x = main::ask($d1, "call_join", { callId => $c->{id} });
push @r, "dave joins $x->{event} $x->{status} $x->{error}{code}";
$x = main::ask($c1, "call_join", { callId => $c->{id} });
push @r, "carol joins $x->{event} $x->{data}{call}{status}";
# what alice heard so far: the last roster is the one after carol joined
my @heard = ChatRT::drain($a1, 1);
push @r, "alice hears " . join(",", map {
    $_->{data}{userId} eq $main::Id{carol} ? "carol" : "bob" }
    grep { $_->{event} eq "call_accepted" } @heard);
my ($last) = reverse grep { $_->{event} eq "call_participants" } @heard;
push @r, "alice sees " . ($last ? "$last->{data}{status} " . join(",", map {
    ($_->{userId} eq $main::Id{alice} ? "a" : $_->{userId} eq $main::Id{bob} ? "b" : "c")
    . ":$_->{state}" } @{ $last->{data}{participants} }) : "?");
ChatRT::drain($a1, 0.3);
$x = main::ask($b1, "call_leave", { callId => $c->{id} });
push @r, "bob leaves $x->{event}";
push @r, "alice sees " . $roster->($a1);
$x = main::ask($b1, "webrtc_offer", { callId => $c->{id}, to => $main::Id{alice}, sdp => "x" });
push @r, "bob signals $x->{status} $x->{error}{code}";
main::ask($c1, "webrtc_offer", { callId => $c->{id}, to => $main::Id{alice}, sdp => "c2a" });
$x = main::ev($a1, "webrtc_offer");
push @r, "alice gets $x->{data}{sdp}";
$x = main::ask($c1, "call_leave", { callId => $c->{id} });
push @r, "carol leaves $x->{event} $x->{data}{call}{status} " . ($x->{data}{call}{endedAt} ? "ended" : "live");
$x = main::ev($a1, "call_ended");
push @r, "alice ended $x->{data}{status} " . ($x->{data}{endedBy} eq $main::Id{carol} ? "by carol" : "?");
push @r, "dave heard " . main::heard($d1);
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
started, bob sees ringing a:caller,b:ringing,c:ringing
bob accepted, carol sees answered a:caller,b:accepted,c:ringing
dave joins error 404 not_found
carol joins ack answered
alice hears bob,carol
alice sees answered a:caller,b:accepted,c:accepted
bob leaves ack
alice sees answered a:caller,b:left,c:accepted
bob signals 409 not_answered
alice gets c2a
carol leaves ack answered ended
alice ended answered by carol
dave heard -
--- no_error_log
[error]
[alert]
[emerg]

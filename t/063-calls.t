# Calls, one to one: full flows between users with two devices each over
# the plain WebSocket (answered on the second device, rejected, busy,
# cancelled, missed by the ringing timeout with its message in the chat,
# ended by either side), REST initiate then accept over the socket, the
# relay of offer, answer and ICE to the one device in the call, a
# stranger's signalling and a call across a block refused, bad inputs.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatWS;
use JSON::PP;
use Time::HiRes ();

BEGIN {
    ChatChats::init("663", "chat_call_ring_timeout 3s;\n"
                           . "    chat_call_grace 1s;");
}

*Id = \%ChatChats::Id;
our (%Id, %Chat, $Got);

sub call { ChatChats::call(@_) }
sub api { ChatChats::api(@_) }

sub setup {
    return if %Chat;
    ChatChats::setup(qw(dave erin));
    for my $p ([alice => "bob"], [alice => "carol"], [bob => "carol"],
               [dave => "alice"])
    {
        $Chat{"$p->[0]-$p->[1]"} = api($p->[0] => POST => "/api/chats/private",
            { userId => $Id{$p->[1]} })->{chat}{id};
    }
    api(erin => POST => "/api/users/$Id{alice}/block");
}

# a socket of who, signed in
sub dev { ChatRT::connect($_[0]) }

my $Seq = 0;

# an event with an id, and its answer (ack or error)
sub ask {
    my ($s, $event, $data) = @_;
    my $id = ++$Seq;
    ChatRT::send_event($s, $event, $data, $id);
    for (;;) {
        my $e = ChatRT::next_event($s, 5) or return { event => "timeout" };
        return $e if defined $e->{id} && $e->{id} eq $id;
    }
}

# the next event named name on s, or undef
sub ev {
    my ($s, $name, $t) = @_;
    return ChatRT::wait_for($s, $name, $t // 5);
}

# the names of the events s gets in t seconds, call events only
sub heard {
    my ($s, $t) = @_;
    my @e = grep { $_->{event} =~ /^(call|incoming|webrtc)/ }
            ChatRT::drain($s, $t // 0.7);
    return join(",", map { $_->{event} } @e) || "-";
}

sub hist {
    my ($who, $q) = @_;
    return api($who => GET => "/api/calls/history" . ($q // ""));
}

# who's history entry of the call id
sub entry {
    my ($who, $id) = @_;
    my ($e) = grep { $_->{id} eq $id } @{ hist($who, "?limit=50")->{items} };
    return $e // {};
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: answered on bob's second device: both ring, the first stops; offer, answer and ICE reach only the device in the call; ended by bob; history on both sides
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
main::setup();
my ($a1, $a2, $b1, $b2) = map { main::dev($_) } qw(alice alice bob bob);
my @r;
my $x = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "video" });
my $c = $x->{data}{call};
push @r, "ack $x->{event} $c->{status} $c->{direction} $c->{type} "
    . ($c->{chatId} eq $main::Chat{"alice-bob"} ? "chat" : "nochat");
my $i1 = main::ev($b1, "incoming_call");
my $i2 = main::ev($b2, "incoming_call");
push @r, "ring " . ($i1 && $i1->{data}{call}{id} eq $c->{id} ? "b1" : "?")
    . " " . ($i2 && $i2->{data}{call}{id} eq $c->{id} ? "b2" : "?")
    . " $i1->{data}{call}{direction} "
    . ($i1->{data}{call}{callerId} eq $main::Id{alice} ? "alice" : "?");
$x = main::ask($b2, "call_accept", { callId => $c->{id} });
push @r, "accept $x->{event} $x->{data}{call}{status}";
$x = main::ev($b1, "call_answered_elsewhere");
push @r, "b1 " . ($x && $x->{data}{callId} eq $c->{id} ? "stops" : "?");
for my $s ($a1, $a2) {
    $x = main::ev($s, "call_accepted");
    push @r, "accepted " . ($x && $x->{data}{userId} eq $main::Id{bob} ? "bob" : "?");
}
$x = main::ask($a1, "webrtc_offer", { callId => $c->{id}, to => $main::Id{bob}, sdp => "v=0 offer" });
push @r, "offer $x->{event}";
$x = main::ev($b2, "webrtc_offer");
push @r, "b2 offer $x->{data}{sdp} " . ($x->{data}{from} eq $main::Id{alice} ? "alice" : "?");
$x = main::ask($b2, "webrtc_answer", { callId => $c->{id}, to => $main::Id{alice}, sdp => "v=0 answer" });
$x = main::ev($a1, "webrtc_answer");
push @r, "a1 answer $x->{data}{sdp}";
main::ask($a1, "webrtc_ice_candidate", { callId => $c->{id}, to => $main::Id{bob},
    candidate => { candidate => "candidate:1 1 udp 1 127.0.0.1 9 typ host", sdpMid => "0" } });
$x = main::ev($b2, "webrtc_ice_candidate");
push @r, "b2 ice $x->{data}{candidate}{sdpMid}";
main::ask($b2, "webrtc_ice_candidate", { callId => $c->{id}, to => $main::Id{alice},
    candidate => "candidate:2 1 udp 1 127.0.0.1 9 typ host" });
$x = main::ev($a1, "webrtc_ice_candidate");
push @r, "a1 ice " . ($x->{data}{candidate} =~ /^candidate:2/ ? "line" : "?");
push @r, "b1 heard " . main::heard($b1) . " a2 heard " . main::heard($a2);
sleep 1;
$x = main::ask($b2, "call_end", { callId => $c->{id} });
push @r, "end $x->{event} $x->{data}{call}{status}";
for my $s ($a1, $a2, $b1) {
    $x = main::ev($s, "call_ended");
    push @r, "ended $x->{data}{status} " . ($x->{data}{endedBy} eq $main::Id{bob} ? "by bob" : "?")
        . " " . ($x->{data}{duration} >= 1 ? "timed" : "?");
}
my $ha = main::entry(alice => $c->{id});
my $hb = main::entry(bob => $c->{id});
push @r, "history $ha->{direction} $ha->{status} / $hb->{direction} $hb->{status} "
    . ($ha->{id} eq $c->{id} && $ha->{answeredAt} && $ha->{endedAt} && $ha->{startedAt} ? "times" : "?")
    . " " . scalar(@{ $ha->{participants} });
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
ack ack ringing outgoing video chat
ring b1 b2 incoming alice
accept ack answered
b1 stops
accepted bob
accepted bob
offer ack
b2 offer v=0 offer alice
a1 answer v=0 answer
b2 ice 0
a1 ice line
b1 heard - a2 heard -
end ack answered
ended answered by bob timed
ended answered by bob timed
ended answered by bob timed
history outgoing answered / incoming answered times 2
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: rejected on one of bob's devices: the caller's devices hear it, bob's other device stops ringing; too late to accept then
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $a2, $b1, $b2) = map { main::dev($_) } qw(alice alice bob bob);
my @r;
my $c = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "audio" })->{data}{call};
main::ev($b1, "incoming_call");
main::ev($b2, "incoming_call");
my $x = main::ask($b1, "call_reject", { callId => $c->{id} });
push @r, "reject $x->{event} $x->{data}{call}{status}";
for my $s ($a1, $a2, $b2) {
    $x = main::ev($s, "call_rejected");
    push @r, "rejected " . ($x && $x->{data}{callId} eq $c->{id}
                            && $x->{data}{userId} eq $main::Id{bob} ? "bob" : "?");
}
$x = main::ask($b2, "call_accept", { callId => $c->{id} });
push @r, "late $x->{event} $x->{status} $x->{error}{code}";
$x = main::ask($a1, "call_end", { callId => $c->{id} });
push @r, "end $x->{event} $x->{status} $x->{error}{code}";
my $ha = main::entry(alice => $c->{id});
my $hb = main::entry(bob => $c->{id});
push @r, "history $ha->{direction} $ha->{status} $ha->{duration} / $hb->{direction} $hb->{status} "
    . ($ha->{answeredAt} ? "answered?" : "never answered");
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
reject ack rejected
rejected bob
rejected bob
rejected bob
late error 409 call_ended
end error 409 call_ended
history outgoing rejected 0 / incoming rejected never answered
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: busy: bob is in a call with alice; carol's call to him is busy at once and does not ring; alice and bob end theirs
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1, $b2, $c1) = map { main::dev($_) } qw(alice bob bob carol);
my @r;
my $c = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "audio" })->{data}{call};
main::ev($b2, "incoming_call");
main::ask($b2, "call_accept", { callId => $c->{id} });
my $x = main::ask($c1, "call_initiate", { userId => $main::Id{bob}, type => "video" });
my $busy = $x->{data}{call};
push @r, "carol $x->{event} $busy->{status} " . ($busy->{endedAt} ? "ended" : "live?");
$x = main::ev($c1, "call_busy");
push @r, "call_busy " . ($x && $x->{data}{callId} eq $busy->{id}
                         && $x->{data}{userId} eq $main::Id{bob} ? "bob" : "?");
push @r, "b1 heard " . main::heard($b1, 1);
$x = main::ask($a1, "call_end", { callId => $c->{id} });
push @r, "alice ends $x->{event}";
$x = main::ev($b2, "call_ended");
push @r, "b2 ended $x->{data}{status} " . ($x->{data}{endedBy} eq $main::Id{alice} ? "by alice" : "?");
my $hc = main::entry(carol => $busy->{id});
push @r, "history carol $hc->{direction} $hc->{status}; bob "
    . join(" ", map { "$_->{direction}/$_->{status}" }
                main::entry(bob => $busy->{id}), main::entry(bob => $c->{id}));
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
carol ack busy ended
call_busy bob
b1 heard incoming_call,call_answered_elsewhere
alice ends ack
b2 ended answered by alice
history carol outgoing busy; bob incoming/busy incoming/answered
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: cancelled by the caller before an answer: every device of both stops; an answer after it is refused
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $a2, $b1, $b2) = map { main::dev($_) } qw(alice alice bob bob);
my @r;
my $c = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "video" })->{data}{call};
main::ev($b1, "incoming_call");
my $x = main::ask($b1, "call_cancel", { callId => $c->{id} });
push @r, "bob cancels $x->{event} $x->{status} $x->{error}{code}";
$x = main::ask($a1, "call_cancel", { callId => $c->{id} });
push @r, "cancel $x->{event} $x->{data}{call}{status}";
for my $s ($a2, $b1, $b2) {
    $x = main::ev($s, "call_cancelled");
    push @r, "cancelled " . ($x && $x->{data}{callId} eq $c->{id} ? "yes" : "?");
}
$x = main::ask($b2, "call_accept", { callId => $c->{id} });
push @r, "late $x->{event} $x->{status} $x->{error}{code}";
my $ha = main::entry(alice => $c->{id});
my $hb = main::entry(bob => $c->{id});
push @r, "history $ha->{direction} $ha->{status} / $hb->{direction} $hb->{status} "
    . ($ha->{endedBy} eq $main::Id{alice} ? "by alice" : "?");
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
bob cancels error 403 not_caller
cancel ack cancelled
cancelled yes
cancelled yes
cancelled yes
late error 409 call_ended
history outgoing cancelled / incoming cancelled by alice
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 5: missed by the ringing timeout: call_missed on bob's devices, call_ended (missed) on alice's, a message of type call in their chat, the history on both sides
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1, $b2) = map { main::dev($_) } qw(alice bob bob);
my @r;
my $c = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "audio" })->{data}{call};
main::ev($b1, "incoming_call");
my $t0 = Time::HiRes::time();
# the call's message is stored first, then the events: keep what comes
my ($x, $msg);
while (my $e = ChatRT::next_event($b1, 8)) {
    $msg = $e if $e->{event} eq "new_message";
    if ($e->{event} eq "call_missed") { $x = $e; last }
}
my $took = Time::HiRes::time() - $t0;
push @r, "b1 missed " . ($x && $x->{data}{call}{id} eq $c->{id} ? "$x->{data}{call}{status} $x->{data}{call}{direction}" : "?")
    . ($took > 2 ? " after the timeout" : " too soon $took");
$x = main::ev($b2, "call_missed");
push @r, "b2 missed " . ($x ? $x->{data}{call}{status} : "?");
$x = main::ev($a1, "call_ended");
push @r, "alice ended $x->{data}{status} $x->{data}{duration}";
my $m = $msg->{data}{message};
push @r, "message " . ($m->{chatId} eq $main::Chat{"alice-bob"} ? "in the chat" : "?")
    . " $m->{type} $m->{content}{type} $m->{content}{status} $m->{content}{callType} "
    . ($m->{content}{callId} eq $c->{id} && $m->{senderId} eq $main::Id{alice} ? "from alice" : "?");
my $last = main::api(bob => GET => "/api/chats/$main::Chat{'alice-bob'}/messages")->{items};
my ($stored) = grep { $_->{type} eq "call" } @$last;
push @r, "stored " . ($stored && $stored->{content}{callId} eq $c->{id} ? "$stored->{content}{type} $stored->{content}{status}" : "?");
my $ha = main::entry(alice => $c->{id});
my $hb = main::entry(bob => $c->{id});
push @r, "history $ha->{direction} $ha->{status} / $hb->{direction} $hb->{status} "
    . join(",", map { $_->{state} } @{ $hb->{participants} });
$x = main::ask($b1, "call_accept", { callId => $c->{id} });
push @r, "late $x->{event} $x->{status} $x->{error}{code}";
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
b1 missed missed incoming after the timeout
b2 missed missed
alice ended missed 0
message in the chat call call missed audio from alice
stored call missed
history outgoing missed / incoming missed caller,missed
late error 409 call_ended
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 6: started over REST, accepted over the socket; the caller's device is the socket that signals; ended by the caller over REST
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1, $b2) = map { main::dev($_) } qw(alice bob bob);
my @r;
my ($st, $body) = main::call(alice => POST => "/api/calls/initiate",
                             { userId => $main::Id{bob}, type => "audio" });
my $c = $body->{call};
push @r, "initiate $st $c->{status} $c->{direction}";
my $x = main::ev($b1, "incoming_call");
push @r, "ring " . ($x && $x->{data}{call}{id} eq $c->{id} ? "b1" : "?");
$x = main::ask($b1, "call_accept", { callId => $c->{id} });
push @r, "accept $x->{event}";
$x = main::ev($a1, "call_accepted");
push @r, "a1 accepted " . ($x ? "yes" : "?");
# bob's device offers first: alice has no device in the call yet
$x = main::ask($b1, "webrtc_offer", { callId => $c->{id}, to => $main::Id{alice}, sdp => "o" });
push @r, "to nobody $x->{event} $x->{status} $x->{error}{code}";
# alice's socket signals: it becomes her device in the call
$x = main::ask($a1, "webrtc_offer", { callId => $c->{id}, to => $main::Id{bob}, sdp => "v=0 a" });
push @r, "a1 offer $x->{event}";
$x = main::ev($b1, "webrtc_offer");
push @r, "b1 offer $x->{data}{sdp}";
main::ask($b1, "webrtc_answer", { callId => $c->{id}, to => $main::Id{alice}, sdp => "v=0 b" });
$x = main::ev($a1, "webrtc_answer");
push @r, "a1 answer $x->{data}{sdp}";
push @r, "b2 heard " . main::heard($b2);
($st, $body) = main::call(alice => PUT => "/api/calls/$c->{id}/end");
push @r, "end $st $body->{call}{status} " . ($body->{call}{endedBy} eq $main::Id{alice} ? "by alice" : "?");
for my $s ($b1, $a1) {
    $x = main::ev($s, "call_ended");
    push @r, "ended $x->{data}{status}";
}
($st, $body) = main::call(bob => PUT => "/api/calls/$c->{id}/end");
push @r, "again $st $body->{error}{code}";
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
initiate 201 ringing outgoing
ring b1
accept ack
a1 accepted yes
to nobody error 409 not_connected
a1 offer ack
b1 offer v=0 a
a1 answer v=0 b
b2 heard incoming_call,call_answered_elsewhere
end 200 answered by alice
ended answered
ended answered
again 409 call_ended
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 7: a stranger's signalling and answers are refused and learn nothing; bad inputs get their error and store nothing
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $b1, $c1) = map { main::dev($_) } qw(alice bob carol);
my @r;
my $before = scalar @{ main::hist("carol", "?limit=50")->{items} };
my $c = main::ask($a1, "call_initiate", { userId => $main::Id{bob}, type => "audio" })->{data}{call};
main::ask($b1, "call_accept", { callId => $c->{id} });
for my $e (["call_accept", {}], ["call_reject", {}], ["call_cancel", {}], ["call_end", {}],
           ["webrtc_offer", { to => $main::Id{bob}, sdp => "x" }],
           ["webrtc_ice_candidate", { to => $main::Id{alice}, candidate => "c" }])
{
    my $x = main::ask($c1, $e->[0], { callId => $c->{id}, %{ $e->[1] } });
    push @r, "stranger $e->[0] $x->{event} $x->{status} $x->{error}{code}";
}
my ($st, $body) = main::call(carol => PUT => "/api/calls/$c->{id}/end");
push @r, "stranger end $st $body->{error}{code}";
($st, $body) = main::call(carol => POST => "/api/calls/$c->{id}/feedback", { rating => 5 });
push @r, "stranger feedback $st $body->{error}{code}";
push @r, "b1 heard " . main::heard($b1) . " a1 heard " . main::heard($a1);
my $big = "v" x (32 * 1024 + 1);
for my $t (
    [ call_initiate => {} ],
    [ call_initiate => { type => "audio" } ],
    [ call_initiate => { userId => $main::Id{bob}, chatId => $main::Chat{"alice-bob"}, type => "audio" } ],
    [ call_initiate => { userId => $main::Id{bob} } ],
    [ call_initiate => { userId => $main::Id{bob}, type => "fax" } ],
    [ call_initiate => { userId => $main::Id{bob}, type => 1 } ],
    [ call_initiate => { userId => "nothex", type => "audio" } ],
    [ call_initiate => { userId => $main::Id{carol}, type => "audio" } ],
    [ call_initiate => { userId => "0123456789abcdef01234567", type => "audio" } ],
    [ call_initiate => { chatId => $main::Chat{"alice-bob"}, type => "audio" } ],
    [ call_accept => {} ],
    [ call_accept => { callId => "x" } ],
    [ call_accept => { callId => "0123456789abcdef01234567" } ],
    [ webrtc_offer => { callId => $c->{id}, sdp => "x" } ],
    [ webrtc_offer => { callId => $c->{id}, to => $main::Id{bob} } ],
    [ webrtc_offer => { callId => $c->{id}, to => $main::Id{bob}, sdp => 42 } ],
    [ webrtc_offer => { callId => $c->{id}, to => $main::Id{bob}, sdp => "" } ],
    [ webrtc_answer => { callId => $c->{id}, to => $main::Id{bob}, sdp => $big } ],
    [ webrtc_ice_candidate => { callId => $c->{id}, to => $main::Id{bob}, candidate => 7 } ],
    [ webrtc_offer => { callId => $c->{id}, to => $main::Id{alice}, sdp => "self" } ],
    [ webrtc_offer => { callId => $c->{id}, to => $main::Id{carol}, sdp => "x" } ],
) {
    # carol asks, but calling herself is the one thing she cannot do
    my $s = ($t->[1]{userId} // "") eq $main::Id{carol} ? $c1 : $a1;
    my $x = main::ask($s, @$t);
    push @r, "$t->[0] $x->{event} $x->{status} $x->{error}{code}";
}
push @r, "b1 heard " . main::heard($b1);
my $after = scalar @{ main::hist("carol", "?limit=50")->{items} };
push @r, "carol's calls " . ($after - $before);
main::ask($a1, "call_end", { callId => $c->{id} });
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
stranger call_accept error 404 not_found
stranger call_reject error 404 not_found
stranger call_cancel error 404 not_found
stranger call_end error 404 not_found
stranger webrtc_offer error 404 not_found
stranger webrtc_ice_candidate error 404 not_found
stranger end 404 not_found
stranger feedback 404 not_found
b1 heard - a1 heard call_accepted
call_initiate error 400 invalid_request
call_initiate error 400 invalid_request
call_initiate error 400 invalid_request
call_initiate error 400 invalid_request
call_initiate error 400 invalid_request
call_initiate error 400 invalid_request
call_initiate error 400 invalid_request
call_initiate error 422 invalid_value
call_initiate error 404 not_found
call_initiate error 409 in_another_call
call_accept error 400 invalid_request
call_accept error 400 invalid_request
call_accept error 404 not_found
webrtc_offer error 400 invalid_request
webrtc_offer error 400 invalid_request
webrtc_offer error 400 invalid_request
webrtc_offer error 400 invalid_request
webrtc_answer error 422 payload_too_large
webrtc_ice_candidate error 400 invalid_request
webrtc_offer error 422 invalid_value
webrtc_offer error 422 invalid_value
b1 heard -
carol's calls 0
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 8: no call across a block, either way, on both transports; nothing stored
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
my ($a1, $e1) = map { main::dev($_) } qw(alice erin);
my @r;
my $x = main::ask($a1, "call_initiate", { userId => $main::Id{erin}, type => "audio" });
push @r, "alice to erin $x->{event} $x->{status} $x->{error}{code}";
$x = main::ask($e1, "call_initiate", { userId => $main::Id{alice}, type => "video" });
push @r, "erin to alice $x->{event} $x->{status} $x->{error}{code}";
my ($st, $body) = main::call(alice => POST => "/api/calls/initiate",
                             { userId => $main::Id{erin}, type => "audio" });
push @r, "rest alice $st $body->{error}{code}";
($st, $body) = main::call(erin => POST => "/api/calls/initiate",
                          { userId => $main::Id{alice}, type => "audio" });
push @r, "rest erin $st $body->{error}{code}";
push @r, "heard " . main::heard($a1) . " " . main::heard($e1);
push @r, "erin's calls " . scalar @{ main::hist("erin")->{items} };
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
alice to erin error 403 blocked
erin to alice error 403 blocked
rest alice 403 blocked
rest erin 403 blocked
heard - -
erin's calls 0
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 9: history pages by a cursor, newest first, each call once; bad cursor and limit refused
--- config
    location /api/ { chat_api; }
--- init
my @r;
my @made;
for (1 .. 5) {
    my $c = main::api(dave => POST => "/api/calls/initiate",
                      { userId => $main::Id{alice}, type => "audio" })->{call};
    main::api(dave => PUT => "/api/calls/$c->{id}/end");
    unshift @made, $c->{id};
}
my $all = main::hist("dave", "?limit=50")->{items};
my (@seen, $cursor, $pages);
for (;;) {
    my $p = main::hist("dave", "?limit=2" . ($cursor ? "&cursor=$cursor" : ""));
    $pages++;
    push @seen, map { $_->{id} } @{ $p->{items} };
    $cursor = $p->{nextCursor} or last;
    last if $pages > 10;
}
push @r, "pages $pages, " . scalar(@seen) . " calls of " . scalar(@$all)
    . (join(",", @seen) eq join(",", map { $_->{id} } @$all) ? ", in order" : ", not in order");
push @r, "newest first " . (join(",", @seen[0 .. 4]) eq join(",", @made) ? "yes" : "no");
my %once;
$once{$_}++ for @seen;
push @r, "twice " . scalar(grep { $once{$_} > 1 } keys %once);
my ($dir) = map { "$_->{direction} $_->{status}" } $all->[0];
push @r, "dave's $dir, alice's " . main::entry(alice => $made[0])->{direction};
for my $q ("?cursor=nope", "?cursor=1.abc", "?limit=0", "?limit=51", "?limit=x") {
    my ($st, $body) = main::call(dave => GET => "/api/calls/history$q");
    push @r, "$q $st $body->{error}{code}";
}
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
pages 3, 5 calls of 5, in order
newest first yes
twice 0
dave's outgoing cancelled, alice's incoming
?cursor=nope 400 invalid_request
?cursor=1.abc 400 invalid_request
?limit=0 400 invalid_request
?limit=51 400 invalid_request
?limit=x 400 invalid_request
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 10: feedback: one per participant, replaceable; every field's bad input refused with nothing stored
--- config
    location /api/ { chat_api; }
--- init
my @r;
my $c = main::api(alice => POST => "/api/calls/initiate",
                  { userId => $main::Id{carol}, type => "video" })->{call};
main::api(alice => PUT => "/api/calls/$c->{id}/end");
my $u = "/api/calls/$c->{id}/feedback";
my $ok = { rating => 4, issues => ["echo", "poor_video"],
           stats => { rttMs => 120, jitterMs => 8.5, packetLoss => 0.02,
                      bitrateKbps => 900, codec => "video/VP8" } };
for my $bad (
    [ {} ], [ { rating => "5" } ], [ { rating => 4.5 } ], [ { rating => 0 } ],
    [ { rating => 6 } ], [ { rating => 3, issues => "echo" } ],
    [ { rating => 3, issues => [1] } ], [ { rating => 3, issues => ["bad_coffee"] } ],
    [ { rating => 3, issues => ["echo", "echo"] } ], [ { rating => 3, stats => [] } ],
    [ { rating => 3, stats => { rttMs => -1 } } ], [ { rating => 3, stats => { rttMs => "1" } } ],
    [ { rating => 3, stats => { jitterMs => 60001 } } ],
    [ { rating => 3, stats => { packetLoss => 1.5 } } ],
    [ { rating => 3, stats => { packetLoss => -0.1 } } ],
    [ { rating => 3, stats => { bitrateKbps => 1e9 } } ],
    [ { rating => 3, stats => { codec => "" } } ], [ { rating => 3, stats => { codec => 7 } } ],
    [ { rating => 3, stats => { codec => "a b" } } ],
    [ { rating => 3, stats => { codec => "x" x 33 } } ],
    [ { rating => 3, stats => { mos => 4 } } ],
) {
    my ($st, $body) = main::call(alice => POST => $u, $bad->[0]);
    my $f = $body->{error}{details}{field} // "";
    push @r, "$st $body->{error}{code} $f";
}
my ($st, $body) = main::call(alice => POST => $u, $ok);
push @r, "first $st " . join(",", @{ $body->{feedback}{issues} })
    . " $body->{feedback}{stats}{codec} $body->{feedback}{stats}{packetLoss} $body->{feedback}{rating}";
($st, $body) = main::call(alice => POST => $u, { rating => 2 });
push @r, "again $st $body->{feedback}{rating} " . scalar(@{ $body->{feedback}{issues} })
    . " " . (exists $body->{feedback}{stats} ? "stats" : "no stats");
($st, $body) = main::call(carol => POST => $u, { rating => 5 });
push @r, "carol $st";
($st, $body) = main::call(bob => POST => $u, { rating => 5 });
push @r, "bob $st $body->{error}{code}";
($st, $body) = main::call(alice => POST => "/api/calls/0123456789abcdef01234567/feedback", { rating => 5 });
push @r, "none $st $body->{error}{code}";
($st, $body) = main::call(alice => POST => "/api/calls/nope/feedback", { rating => 5 });
push @r, "bad id $st $body->{error}{code}";
$main::Got = join("\n", @r) . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/history");
--- response_body_filters eval
sub { $main::Got }
--- response_body
400 invalid_request rating
400 invalid_request rating
400 invalid_request rating
422 invalid_value rating
422 invalid_value rating
400 invalid_request issues
400 invalid_request issues
422 invalid_value issues
422 invalid_value issues
400 invalid_request stats
422 invalid_value stats.rttMs
400 invalid_request stats.rttMs
422 invalid_value stats.jitterMs
422 invalid_value stats.packetLoss
422 invalid_value stats.packetLoss
422 invalid_value stats.bitrateKbps
422 invalid_value stats.codec
400 invalid_request stats.codec
422 invalid_value stats.codec
400 invalid_request stats.codec
400 invalid_request stats
first 201 echo,poor_video video/VP8 0.02 4
again 200 2 0 no stats
carol 201
bob 404 not_found
none 404 not_found
bad id 404 not_found
--- no_error_log
[error]
[alert]
[emerg]

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
my $ha = main::hist("alice")->{items}[0];
my $hb = main::hist("bob")->{items}[0];
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

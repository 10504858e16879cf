# Push, more: the profile's notifications.preview setting (checked, shown,
# stored), what a push carries with it (the start of a text, to the
# members who allow it, never an image's caption nor to the others), and
# the devices a logout, a removed session or a reused refresh token drop.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatAuth;
use ChatPush;
use JSON::PP;
use HTTP::Tiny;
use Time::HiRes qw(sleep time);

our ($Got, $Group);

BEGIN { ChatPush::start("668", "\n    chat_otp_resend_delay 1;\n    chat_call_ring_timeout 2s;") }

*Id = \%ChatChats::Id;
our %Id;

my $n = 0;

sub send_msg {
    my ($who, $content, $type) = @_;
    $n++;
    return ChatChats::api($who => POST => "/api/messages",
        { chatId => $Group, tempId => "pm-$$-$n", type => $type // "text",
          content => $content })->{message};
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: notifications.preview in the profile: off by default, checked, stored and shown
--- init
ChatChats::setup("dave");
my @r;
push @r, "default " . JSON::PP->new->canonical->encode(
    ChatChats::api(bob => GET => "/api/users/profile")->{user}{notifications});
for my $bad ({ notifications => 1 }, { notifications => { preview => "yes" } },
             { notifications => [] })
{
    my ($s, $b) = ChatChats::call(bob => PUT => "/api/users/profile", $bad);
    push @r, "$s $b->{error}{code} " . ($b->{error}{details}{field} // "-");
}
my $u = ChatChats::api(bob => PUT => "/api/users/profile",
    { notifications => { preview => JSON::PP::true } })->{user};
push @r, "set " . JSON::PP->new->canonical->encode($u->{notifications});
push @r, "read " . JSON::PP->new->canonical->encode(
    ChatChats::api(bob => GET => "/api/users/profile")->{user}{notifications});
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
default {"preview":false}
400 invalid_request notifications
400 invalid_request notifications
400 invalid_request notifications
set {"preview":true}
read {"preview":true}



=== TEST 2: the start of a text only to those who allow it (bob), never an image's caption
--- init
for my $who (qw(alice bob carol dave)) {
    ChatChats::api($who => PUT => "/api/devices",
        { platform => "web", token => "tok-$who", bundleId => "com.example.chat" });
}
$main::Group = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "preview", memberIds => [ map { $main::Id{$_} } qw(bob carol dave) ] })
    ->{chat}{id};
ChatPush::pushes();
my @r;
main::send_msg(alice => "hello there, été");
for my $p (sort { $a->{message}{token} cmp $b->{message}{token} } ChatPush::pushes(3)) {
    push @r, "$p->{message}{token}: "
        . ($p->{message}{notification} ? $p->{message}{notification}{body} : "ids only");
}
my $long = join "", map { chr(0x410 + $_ % 32) } 1 .. 150;
main::send_msg(alice => $long);
my ($b) = grep { $_->{message}{token} eq "tok-bob" } ChatPush::pushes(3);
my $body = $b->{message}{notification}{body};
push @r, "long: " . length($body) . " characters, its start "
    . ($body eq substr($long, 0, 100) ? "yes" : "no");
main::send_msg(alice => { mediaId => "a" x 24, caption => "secret caption" }, "image");
my @p = ChatPush::pushes(3);
push @r, "image: " . join(",", map { $_->{message}{data}{type} } @p)
    . (grep({ JSON::PP::encode_json($_) =~ /secret/ } @p) ? " with text" : " ids only");
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
tok-bob: hello there, été
tok-carol: ids only
tok-dave: ids only
long: 100 characters, its start yes
image: image,image,image ids only



=== TEST 3: a logout drops the session's device, and so does a session removed from another
--- init
my $second = ChatAuth::sign_in($ChatChats::Twilio, $ChatChats::Phone{bob}, "bob2");
$ChatChats::Tok{bob2} = $second;
ChatChats::api(bob2 => PUT => "/api/devices",
    { platform => "android", token => "tok-bob2", bundleId => "com.example.chat" });
my @r;
main::send_msg(alice => "both");
push @r, "both sessions: " . ChatPush::whom(ChatPush::pushes(4));
# bob's second session removes his first: its device goes
my ($first) = grep { !$_->{current} }
    @{ ChatChats::api(bob2 => GET => "/api/auth/sessions")->{items} };
ChatChats::api(bob2 => DELETE => "/api/auth/sessions/$first->{id}");
main::send_msg(alice => "one left");
push @r, "first removed: " . ChatPush::whom(ChatPush::pushes(3));
ChatChats::api(bob2 => POST => "/api/auth/logout");
main::send_msg(alice => "none left");
push @r, "logged out: " . ChatPush::whom(ChatPush::pushes(2));
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
both sessions: bob,carol,dave,tok-bob2
first removed: carol,dave,tok-bob2
logged out: carol,dave



=== TEST 4: a session revoked because its refresh token came back twice drops its device
--- init
my $s = ChatAuth::sign_in($ChatChats::Twilio, $ChatChats::Phone{carol}, "carol2");
$ChatChats::Tok{carol2} = $s;
ChatChats::api(carol2 => PUT => "/api/devices",
    { platform => "android", token => "tok-carol2", bundleId => "com.example.chat" });
my @r;
main::send_msg(alice => "before");
push @r, "before: " . ChatPush::whom(ChatPush::pushes(3));
my $http = HTTP::Tiny->new;
my $url = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth/refresh-token";
my %h = (headers => { 'Content-Type' => 'application/json' },
         content => JSON::PP::encode_json({ refreshToken => $s->{refreshToken} }));
push @r, "refresh " . $http->post($url, { %h })->{status};
push @r, "again " . $http->post($url, { %h })->{status};
main::send_msg(alice => "after");
push @r, "after: " . ChatPush::whom(ChatPush::pushes(2));
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
before: carol,dave,tok-carol2
refresh 200
again 401
after: carol,dave



=== TEST 5: the members a push needs are cached in Redis (pushm:<chat>), dropped by a mute and an unmute, rebuilt after FLUSHALL: each push follows
--- init
my $port = $ENV{TEST_NGINX_REDIS_PORT};
my $cli = sub { my $o = `redis-cli -p $port @_`; chomp $o; $o };
my @r;
main::send_msg(alice => "fill");
ChatPush::pushes(2);
push @r, "cached members: " . $cli->("HLEN pushm:$main::Group");
ChatChats::api(dave => PUT => "/api/chats/$main::Group/settings", { muted => JSON::PP::true });
# the drop follows the mute's commit as its event does, beside the
# answer, not before it: a slow worker (ASan) may answer first
my $exists;
for (1 .. 20) {
    $exists = $cli->("EXISTS pushm:$main::Group");
    last if $exists eq "0";
    select undef, undef, undef, 0.1;
}
push @r, "after a mute: $exists";
main::send_msg(alice => "dave muted");
push @r, "pushed: " . ChatPush::whom(ChatPush::pushes(1));
ChatChats::api(dave => PUT => "/api/chats/$main::Group/settings", { muted => JSON::PP::false });
main::send_msg(alice => "dave back");
push @r, "pushed: " . ChatPush::whom(ChatPush::pushes(2));
$cli->("FLUSHALL");
main::send_msg(alice => "after flush");
push @r, "after FLUSHALL: " . ChatPush::whom(ChatPush::pushes(2));
push @r, "cached again: " . $cli->("HLEN pushm:$main::Group");
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
cached members: 4
after a mute: 0
pushed: carol
pushed: carol,dave
after FLUSHALL: carol,dave
cached again: 4



=== TEST 6: a call pushed to the callee's device: urgent as it rings (an app closed must ring), then a missed call once it timed out; the pushes counted on the metrics page
--- config
    location /api/ { chat_api; }
    location = /metrics { chat_metrics; }
--- init
# bob's first sessions went in TEST 3: a new one
$ChatChats::Tok{bob3} = ChatAuth::sign_in($ChatChats::Twilio, $ChatChats::Phone{bob}, "bob3");
ChatChats::api(bob3 => PUT => "/api/devices",
    { platform => "android", token => "tok-bob", bundleId => "com.example.chat" });
ChatChats::api(alice => POST => "/api/users/add-contact", { userId => $main::Id{bob} });
ChatChats::api(bob3 => POST => "/api/users/add-contact", { userId => $main::Id{alice} });
ChatPush::pushes();
my $sent = sub {
    my $page = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
    return $page =~ /^chat_pushes_total\{provider="fcm",result="sent"\} (\d+)$/m
           ? $1 : -1;
};
my $before = $sent->();
my $call = ChatChats::api(alice => POST => "/api/calls/initiate",
                          { userId => $main::Id{bob}, type => "audio" })->{call};
my @r;
my @p = ChatPush::pushes(1);
push @r, "ring: " . ChatPush::whom(@p),
    join(" ", map { "$_=" . ($p[0]{message}{data}{$_} // "-") } qw(kind type)),
    "callId " . (($p[0]{message}{data}{callId} // "") eq $call->{id} ? "ok" : "bad"),
    "priority " . ($p[0]{message}{android}{priority} // "-");
# no answer within chat_call_ring_timeout 2s: missed
@p = ChatPush::pushes(1);
for (1 .. 30) {
    last if @p;
    sleep 0.2;
    @p = ChatPush::pushes();
}
push @r, "missed: " . ChatPush::whom(@p),
    "kind " . ($p[0]{message}{data}{kind} // "-"),
    "counted " . ($sent->() - $before);
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
ring: bob
kind=call type=call
callId ok
priority high
missed: bob
kind missed_call
counted 2
--- timeout: 30

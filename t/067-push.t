# Push notifications over FCM HTTP v1, against a fake token endpoint and
# a fake FCM started here: a device registered for the session (bad
# inputs refused with the envelope), a message pushed to the members
# with a device and no live socket, not to the sender, to a member who
# muted the chat (unless mentioned), who blocked the sender or who is
# online; the payload's exact fields (ids only); the OAuth token taken
# once with a signed assertion and reused, and taken again once expired;
# gone tokens deleted, retries after Retry-After, a hanging FCM not in the
# way; an iOS device through the fake APNs (HTTP/2 over TLS): its headers,
# its body, the ES256 provider token's claims and signature, reused, and
# its device deleted on 410 and on BadDeviceToken.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatPush;
use JSON::PP;
use MIME::Base64 ();
use Time::HiRes qw(sleep time);

our ($Token, $Fcm, $Dir, $Got, $Group, $Account);

BEGIN {
    ChatPush::start("667", "\n    chat_call_ring_timeout 2s;");
    ($Token, $Fcm, $Dir, $Account) = ($ChatPush::Token, $ChatPush::Fcm,
                                      $ChatPush::Dir, $ChatPush::Account);
}

*Id = \%ChatChats::Id;
our %Id;

my $n = 0;

sub send_msg {
    my ($who, $text, @mentioned) = @_;
    $n++;
    return ChatChats::api($who => POST => "/api/messages",
        { chatId => $Group, tempId => "push-$$-$n", type => "text",
          content => $text,
          (@mentioned ? (mentions => [ map { $Id{$_} } @mentioned ]) : ()) })
        ->{message};
}

sub pushes { ChatPush::pushes(@_) }
sub whom { ChatPush::whom(@_) }

sub b64url {
    my ($s) = @_;
    $s =~ tr{-_}{+/};
    $s .= "=" x ((4 - length($s) % 4) % 4);
    return MIME::Base64::decode_base64($s);
}

# the assertion's claims, and whether its RS256 signature verifies with
# the service account's public key
sub assertion {
    my ($form) = @_;
    my %f = map { my ($k, $v) = split /=/, $_, 2;
                  $v =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge; ($k, $v) }
            split /&/, $form;
    my ($h, $p, $s) = split /\./, $f{assertion};
    open my $d, '>', "$Dir/data" or die;
    print $d "$h.$p";
    close $d;
    open my $g, '>', "$Dir/sig" or die;
    binmode $g;
    print $g b64url($s);
    close $g;
    my $ok = system("openssl dgst -sha256 -verify $Dir/pub.pem "
                    . "-signature $Dir/sig $Dir/data >/dev/null 2>&1") == 0;
    my $c = decode_json(b64url($p));
    my $hd = decode_json(b64url($h));
    return ($f{grant_type}, $hd, $c, $ok);
}

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws { chat_ws; }
_EOC_
    $block->set_value("no_error_log", "[error]\n[alert]\n[emerg]\n")
        unless defined $block->no_error_log;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a device registered for the session, moved to the newest session that registers its token, unregistered; bad inputs refused with the envelope
--- init
ChatChats::setup("dave");
my @r;
my @bad = (
    [ undef, "body" ],
    [ [], "body" ],
    [ { token => "t", bundleId => "a.b" }, "platform" ],
    [ { platform => 1, token => "t", bundleId => "a.b" }, "platform" ],
    [ { platform => "android", bundleId => "a.b" }, "token" ],
    [ { platform => "android", token => "", bundleId => "a.b" }, "token" ],
    [ { platform => "android", token => "a b", bundleId => "a.b" }, "token" ],
    [ { platform => "android", token => "x" x 513, bundleId => "a.b" }, "token" ],
    [ { platform => "android", token => { '$gt' => "" }, bundleId => "a.b" }, "token" ],
    [ { platform => "android", token => "t" }, "bundleId" ],
    [ { platform => "android", token => "t", bundleId => "a b" }, "bundleId" ],
    [ { platform => "ios", token => "t", bundleId => "a.b", voipToken => 5 }, "voipToken" ],
    [ { platform => "symbian", token => "t", bundleId => "a.b" }, "platform" ],
    [ { platform => "android", token => "t", bundleId => "a.b", voipToken => "v" }, "voipToken" ],
);
for my $b (@bad) {
    my ($s, $body) = ChatChats::call(alice => PUT => "/api/devices", $b->[0]);
    push @r, "$s $body->{error}{code} "
             . ($body->{error}{details}{field} // "-")
             . ($b->[1] eq ($body->{error}{details}{field} // "body") ? "" : " (want $b->[1])");
}
my ($s, $body) = ChatChats::call(alice => PUT => "/api/devices",
    { platform => "ios", token => "tok-x", bundleId => "com.example.chat",
      voipToken => "voip-x" });
push @r, "$s " . JSON::PP->new->canonical->encode($body);
# the same token from bob's session: now his; alice's session has none
($s) = ChatChats::call(bob => PUT => "/api/devices",
    { platform => "android", token => "tok-x", bundleId => "com.example.chat" });
push @r, "moved $s";
($s, $body) = ChatChats::call(bob => DELETE => "/api/devices");
push @r, "$s " . JSON::PP->new->canonical->encode($body);
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
400 invalid_json -
400 invalid_json -
400 invalid_request platform
400 invalid_request platform
400 invalid_request token
400 invalid_request token
400 invalid_request token
400 invalid_request token
400 invalid_request token
400 invalid_request bundleId
400 invalid_request bundleId
400 invalid_request voipToken
422 unsupported_platform platform
422 voip_ios_only voipToken
200 {"device":{"bundleId":"com.example.chat","platform":"ios","token":"tok-x","voipToken":"voip-x"}}
moved 200
200 {"success":true}



=== TEST 2: a message pushed to the members away with a device, ids only: not to the sender, not to a member who muted the chat (unless mentioned), who blocked the sender, or who is online; the OAuth token taken once with a signed assertion and reused
--- init
for my $who (qw(alice bob carol dave)) {
    ChatChats::api($who => PUT => "/api/devices",
        { platform => "android", token => "tok-$who",
          bundleId => "com.example.chat" });
}
$main::Group = ChatChats::api(alice => POST => "/api/chats/group",
    { name => "push", memberIds => [ map { $main::Id{$_} } qw(bob carol dave) ] })
    ->{chat}{id};
ChatChats::api(dave => PUT => "/api/chats/$main::Group/settings", { muted => JSON::PP::true });
ChatChats::api(carol => POST => "/api/users/$main::Id{alice}/block");
main::pushes();
$main::Token->clear;
my @r;
my $m = main::send_msg(alice => "secret text");
my @p = main::pushes(1);
push @r, "plain: " . main::whom(@p);
my $enc = JSON::PP->new->canonical;
my %want = (message => {
    token => "tok-bob",
    data => { kind => "message", chatId => $main::Group, messageId => $m->{id},
              senderId => $main::Id{alice}, type => "text" },
    android => { priority => "normal", collapse_key => $main::Group },
    apns => { headers => { "apns-priority" => "5",
                           "apns-collapse-id" => $main::Group } },
    webpush => { headers => { Urgency => "normal", Topic => $main::Group } },
});
my $got = { message => $p[0]{message} };
push @r, $enc->encode($got) eq $enc->encode(\%want) ? "payload exact"
         : "payload " . $enc->encode($got);
push @r, "path $p[0]{_path}", "auth $p[0]{_auth}";
push @r, "no text anywhere: " . (grep({ $enc->encode($_) =~ /secret/ } @p) ? "no" : "yes");
# a mention passes dave's mute
main::send_msg(alice => "dave!", "dave");
push @r, "mention: " . main::whom(main::pushes(2));
# bob online: not pushed
my $ws = ChatRT::connect("bob");
sleep 0.3;
main::send_msg(alice => "bob is here");
push @r, "bob online: " . main::whom(main::pushes());
close $ws;
sleep 0.5;
main::send_msg(alice => "bob left");
push @r, "bob gone: " . main::whom(main::pushes(1));
# bob's message: alice and carol pushed (carol blocked alice, not bob)
main::send_msg(bob => "to all");
push @r, "from bob: " . main::whom(main::pushes(2));
my @t = $main::Token->requests;
push @r, "token requests: " . scalar(@t);
my ($grant, $hd, $c, $ok) = main::assertion($t[0]{body});
push @r, "grant $grant", "alg $hd->{alg}",
    "iss $c->{iss}", "scope $c->{scope}",
    "aud " . ($c->{aud} eq $main::Account->{token_uri} ? "token_uri" : $c->{aud}),
    "exp-iat " . ($c->{exp} - $c->{iat}),
    "iat now " . (abs($c->{iat} - time) < 30 ? "yes" : "no"),
    "signature " . ($ok ? "verified" : "bad");
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
plain: bob
payload exact
path /v1/projects/proj-test/messages:send
auth Bearer ya29.first
no text anywhere: yes
mention: bob,dave
bob online: nobody
bob gone: bob
from bob: alice,carol
token requests: 1
grant urn:ietf:params:oauth:grant-type:jwt-bearer
alg RS256
iss push@proj-test.iam.gserviceaccount.com
scope https://www.googleapis.com/auth/firebase.messaging
aud token_uri
exp-iat 3600
iat now yes
signature verified



=== TEST 3: the OAuth token is taken again once it expired (a short-lived one serves half its life)
--- init
$main::Token->clear;
$main::Token->set_reply(200, '{"access_token":"ya29.short","expires_in":4}');
my @r;
main::send_msg(alice => "one");
push @r, map { "auth $_->{_auth}" } main::pushes(1);
main::send_msg(alice => "two");
push @r, map { "auth $_->{_auth}" } main::pushes(1);
$main::Token->set_reply(200, '{"access_token":"ya29.second","expires_in":3600}');
sleep 2.5;
main::send_msg(alice => "three");
push @r, map { "auth $_->{_auth}" } main::pushes(1);
push @r, "token requests: " . scalar(my @t = $main::Token->requests);
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
auth Bearer ya29.short
auth Bearer ya29.short
auth Bearer ya29.second
token requests: 2



=== TEST 4: a token FCM no longer knows (UNREGISTERED, INVALID_ARGUMENT) deletes its device: no push to it after
--- init
$main::Token->set_reply(200, '{"access_token":"ya29.third","expires_in":3600}');
my @r;
$main::Fcm->set_reply(404, '{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}');
main::send_msg(alice => "to a gone app");
push @r, "refused: " . main::whom(main::pushes(1));
sleep 0.5;
$main::Fcm->set_reply(200, '{"name":"projects/proj-test/messages/2"}');
main::send_msg(alice => "again");
push @r, "after: " . main::whom(main::pushes());
# bob's token again, and dave's: both invalid
ChatChats::api(bob => PUT => "/api/devices",
    { platform => "android", token => "tok-bob", bundleId => "com.example.chat" });
$main::Fcm->set_reply(400, '{"error":{"code":400,"message":"The registration token is not a valid FCM registration token","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}');
main::send_msg(alice => "dave!", "dave");
push @r, "invalid: " . main::whom(main::pushes(2));
sleep 0.5;
$main::Fcm->set_reply(200, '{"name":"projects/proj-test/messages/3"}');
ChatChats::api(bob => PUT => "/api/devices",
    { platform => "android", token => "tok-bob", bundleId => "com.example.chat" });
main::send_msg(alice => "dave?", "dave");
push @r, "after: " . main::whom(main::pushes(1));
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
refused: bob
after: nobody
invalid: bob,dave
after: bob



=== TEST 5: 503 with Retry-After: the push is sent again after the time it says, then stops
--- init
my @r;
$main::Fcm->clear;
$main::Fcm->set_reply(503, '{"error":{"code":503,"status":"UNAVAILABLE"}}', 'Retry-After' => 2);
my $t0 = time;
main::send_msg(alice => "later");
my @q;
for (1 .. 50) { @q = $main::Fcm->requests; last if @q; sleep 0.05 }
my $t1 = time;
$main::Fcm->set_reply(200, '{"name":"projects/proj-test/messages/4"}');
for (1 .. 100) { @q = $main::Fcm->requests; last if @q >= 2; sleep 0.05 }
my $t2 = time;
push @r, "attempts " . scalar(@q);
push @r, "same push " . ($q[0]{body} eq ($q[1]{body} // "") ? "yes" : "no");
# the server's clock of both arrivals: the retry not before Retry-After
my $gap = $q[1] ? $q[1]{at} - $q[0]{at} : 0;
push @r, "waited " . ($gap >= 1.9 ? "the Retry-After" : sprintf("%.2f s", $gap));
sleep 0.5;
push @r, "then " . scalar(my @z = $main::Fcm->requests);
$main::Fcm->clear;
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
attempts 2
same push yes
waited the Retry-After
then 2
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 6: a provider that hangs does not slow a send: POST /api/messages answers at once
--- init
my @r;
$main::Fcm->clear;
$main::Fcm->set_reply(200, '{}', delay => 6);
my $slow = 0;
for my $i (1 .. 5) {
    my $t0 = time;
    main::send_msg(alice => "fast $i");
    $slow++ if time - $t0 > 1;
}
push @r, "slow sends: $slow";
sleep 0.5;
push @r, "pushes in flight: " . (scalar(my @q = $main::Fcm->requests) >= 5 ? "yes" : "no");
$main::Fcm->set_reply(200, '{}');
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
slow sends: 0
pushes in flight: yes



=== TEST 7: an iOS device through APNs over HTTP/2: the headers, the body (ids only), the ES256 provider token (claims, signature) reused; 410 and BadDeviceToken delete the device
--- init
my @r;
ChatChats::api(bob => PUT => "/api/devices",
    { platform => "ios", token => "apns-bob", bundleId => "com.example.chat",
      voipToken => "voip-bob" });
ChatPush::apns_clear();
ChatPush::apns_reply(200, "");
$main::Fcm->clear;
my $m = main::send_msg(alice => "hi ios");
my @a = ChatPush::apns_requests(1);
push @r, "fcm for bob: " . (grep({ $_->{message}{token} =~ /bob/ } main::pushes()) ? "yes" : "no");
my $q = $a[0];
push @r, "apns requests: " . scalar(@a), "$q->{method} $q->{path}";
my $h = $q->{headers};
push @r, map { "$_: $h->{$_}" } qw(apns-push-type apns-priority apns-topic);
push @r, "apns-collapse-id: " . ($h->{"apns-collapse-id"} eq $main::Group ? "the chat" : $h->{"apns-collapse-id"});
push @r, "apns-expiration: " . (abs($h->{"apns-expiration"} - time - 86400) < 60 ? "a day" : $h->{"apns-expiration"});
my $enc = JSON::PP->new->canonical;
my $want = { aps => { alert => { "loc-key" => "NEW_MESSAGE" }, sound => "default",
                      "mutable-content" => 1, "thread-id" => $main::Group },
             kind => "message", chatId => $main::Group, messageId => $m->{id},
             senderId => $main::Id{alice}, type => "text" };
push @r, $enc->encode(JSON::PP::decode_json($q->{body})) eq $enc->encode($want)
    ? "body exact" : "body $q->{body}";
my ($jwt) = $h->{authorization} =~ /^bearer (\S+)$/;
my ($hd, $pl, $sg) = split /\./, $jwt;
my $head = JSON::PP::decode_json(main::b64url($hd));
my $claims = JSON::PP::decode_json(main::b64url($pl));
push @r, "alg $head->{alg} kid $head->{kid}", "iss $claims->{iss}",
    "iat now " . (abs($claims->{iat} - time) < 30 ? "yes" : "no");
# ES256: r || s, 32 bytes each, as DER for openssl
my $raw = main::b64url($sg);
my $int = sub { my $b = shift; $b =~ s/^\x00+//; $b = "\x00$b" if ord($b) & 0x80;
                "\x02" . chr(length $b) . $b };
my $der = $int->(substr($raw, 0, 32)) . $int->(substr($raw, 32, 32));
$der = "\x30" . chr(length $der) . $der;
open my $d, '>', "$main::Dir/adata" or die; print $d "$hd.$pl"; close $d;
open my $g, '>', "$main::Dir/asig" or die; binmode $g; print $g $der; close $g;
push @r, "signature " . (system("openssl dgst -sha256 -verify $main::Dir/ecpub.pem "
    . "-signature $main::Dir/asig $main::Dir/adata >/dev/null 2>&1") == 0 ? "verified" : "bad");
main::send_msg(alice => "again");
my @b = ChatPush::apns_requests(1);
push @r, "provider token reused: " . ($b[0]{headers}{authorization} eq $h->{authorization} ? "yes" : "no");
ChatPush::apns_reply(410, '{"reason":"Unregistered","timestamp":1700000000000}');
main::send_msg(alice => "to a gone app");
push @r, "410: " . scalar(my @c = ChatPush::apns_requests(1));
sleep 0.5;
ChatPush::apns_reply(200, "");
main::send_msg(alice => "after 410");
push @r, "after: " . scalar(my @e = ChatPush::apns_requests());
ChatChats::api(bob => PUT => "/api/devices",
    { platform => "ios", token => "apns-bob", bundleId => "com.example.chat" });
ChatPush::apns_reply(400, '{"reason":"BadDeviceToken"}');
main::send_msg(alice => "bad token");
push @r, "BadDeviceToken: " . scalar(my @f = ChatPush::apns_requests(1));
sleep 0.5;
ChatPush::apns_reply(200, "");
main::send_msg(alice => "after 400");
push @r, "after: " . scalar(my @k = ChatPush::apns_requests());
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
fcm for bob: no
apns requests: 1
POST /3/device/apns-bob
apns-push-type: alert
apns-priority: 5
apns-topic: com.example.chat
apns-collapse-id: the chat
apns-expiration: a day
body exact
alg ES256 kid KEYID12345
iss TEAMID1234
iat now yes
signature verified
provider token reused: yes
410: 1
after: 0
BadDeviceToken: 1
after: 0



=== TEST 8: APNs: 429 with Retry-After, the same push again after it; 403 ExpiredProviderToken, a new provider token for the next attempt
--- init
my @r;
ChatChats::api(bob => PUT => "/api/devices",
    { platform => "ios", token => "apns-bob", bundleId => "com.example.chat" });
ChatPush::apns_clear();
ChatPush::apns_reply(429, '{"reason":"TooManyRequests"}', 'Retry-After' => 2);
main::send_msg(alice => "busy");
my @q = ChatPush::apns_requests(1);
my $t1 = time;
ChatPush::apns_reply(200, "");
my @b;
for (1 .. 100) { @b = ChatPush::_apns_log(); last if @b; sleep 0.05 }
my $t2 = time;
ChatPush::apns_requests();
# the server's clock of both arrivals: the retry not before Retry-After
my $gap = $b[0] ? $b[0]{at} - $q[0]{at} : 0;
push @r, "429 then " . scalar(@b) . ", after " . ($gap >= 1.9 ? "the Retry-After" : sprintf("%.2f s", $gap));
push @r, "same push " . ($b[0] && $b[0]{body} eq $q[0]{body} ? "yes" : "no");
my $old = $q[0]{headers}{authorization};
ChatPush::apns_reply(403, '{"reason":"ExpiredProviderToken"}');
main::send_msg(alice => "expired");
my @c = ChatPush::apns_requests(1);
ChatPush::apns_reply(200, "");
my @d;
for (1 .. 60) { @d = ChatPush::_apns_log(); last if @d; sleep 0.1 }
push @r, "403 with the old token " . ($c[0]{headers}{authorization} eq $old ? "yes" : "no");
push @r, "then a new one " . ($d[0] && $d[0]{headers}{authorization} ne $old ? "yes" : "no");
ChatPush::apns_requests();
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
429 then 1, after the Retry-After
same push yes
403 with the old token yes
then a new one yes



=== TEST 9: an incoming call to an iOS device with a VoIP token: a VoIP push (the app wakes to ring), urgent, to the VoIP token; the missed call after it as an alert to the device token
--- init
my @r;
ChatChats::api(bob => PUT => "/api/devices",
    { platform => "ios", token => "apns-bob2", bundleId => "com.example.chat",
      voipToken => "voip-bob2" });
ChatPush::apns_clear();
ChatPush::apns_reply(200, "");
my $call = ChatChats::api(alice => POST => "/api/calls/initiate",
                          { userId => $main::Id{bob}, type => "video" })->{call};
my @a = ChatPush::apns_requests(1);
my $h = $a[0]{headers} || {};
my $b = $a[0] ? JSON::PP::decode_json($a[0]{body}) : {};
push @r, "ring: " . scalar(@a) . " $a[0]{path}",
    map({ "$_: " . ($h->{$_} // "-") } qw(apns-push-type apns-priority apns-topic)),
    "kind $b->{kind}", "callId " . (($b->{callId} // "") eq $call->{id} ? "ok" : "bad");
my @m;
for (1 .. 40) { @m = ChatPush::_apns_log(); last if @m; sleep 0.1 }
@m = ChatPush::apns_requests(1);
my $mb = $m[0] ? JSON::PP::decode_json($m[0]{body}) : {};
push @r, "missed: " . scalar(@m) . " " . ($m[0]{path} // "-"),
    "type " . ($m[0]{headers}{"apns-push-type"} // "-"),
    "alert " . ($mb->{aps}{alert}{"loc-key"} // "-");
$main::Got = join "\n", @r;
ChatChats::dyn($block, as => "alice", request => "GET /api/chats");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
ring: 1 /3/device/voip-bob2
apns-push-type: voip
apns-priority: 10
apns-topic: com.example.chat.voip
kind call
callId ok
missed: 1 /3/device/apns-bob2
type alert
alert MISSED_CALL
--- timeout: 30

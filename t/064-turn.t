# TURN credentials (GET /api/calls/turn-credentials) and real WebRTC peers
# relayed by Debian's coturn.
#
# The route: the TURN REST API form coturn's use-auth-secret accepts
# (username "<expiry>:<userId>", password base64(HMAC-SHA1(secret,
# username)), checked here with Digest::SHA against the secret this test
# wrote to the file chat_turn_secret_file reads), the expiry one ttl ahead,
# the URIs, iceServers as a browser takes them; the per-user limit (429,
# Retry-After); no token, a bad token, another method, a query that changes
# nothing; no TURN configured (404 turn_not_configured, with the STUN
# servers to fall back to); half a configuration refused at start.
#
# Then a real relay: coturn started here on free ports of 127.0.0.1 with
# use-auth-secret and the same secret, two aiortc peers (t/lib/webrtc_peer.py,
# in tools/bootstrap's virtualenv) each configured with the iceServers OUR
# route gave its user and iceTransportPolicy "relay", so they can meet
# only through coturn: both connect, the nominated pair is relay to relay,
# a data channel message goes each way and audio frames arrive.  With
# credentials of another secret coturn refuses them and they never connect.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatJWT;
use ChatRedis;
use JSON::PP;
use HTTP::Tiny;
use IO::Socket::INET;
use Digest::SHA qw(hmac_sha1_base64);
use File::Temp qw(tempdir);
use POSIX ();
use Time::HiRes ();

our ($Secret, $Dir, $Base, $TurnConf, $LimitConf, $StunConf, $WrongConf,
     $TurnPid, $Got);

BEGIN {
    ChatChats::init("664", "");

    # the secret in a file, with the line end `echo` leaves
    $Secret = "turn-secret-" . $$ . "-0123456789abcdef";
    $Dir = tempdir(CLEANUP => 1);
    open my $fh, ">", "$Dir/turn.secret" or die "turn.secret: $!";
    print $fh "$Secret\n";
    close $fh;
    $ENV{TEST_NGINX_TURN_SECRET_FILE} = "$Dir/turn.secret";
    $ENV{TEST_NGINX_TURN_PORT} = ChatRedis::free_port();

    $Base = ChatTest::chat_http_config() . qq{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:\$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
};

    my $uris = q{
    chat_turn_uris turn:127.0.0.1:$TEST_NGINX_TURN_PORT?transport=udp
                   turn:127.0.0.1:$TEST_NGINX_TURN_PORT?transport=tcp;
    chat_stun_uris stun:127.0.0.1:$TEST_NGINX_TURN_PORT;
};

    $TurnConf = $Base . $uris . q{
    chat_turn_secret_file $TEST_NGINX_TURN_SECRET_FILE;
    chat_turn_ttl 2h;
};

    $LimitConf = $TurnConf . q{
    chat_turn_limit 3 2s;
};

    $WrongConf = $Base . $uris . q{
    chat_turn_secret not-the-secret-coturn-has;
};

    $StunConf = $Base . q{
    chat_stun_uris stun:stun.example.org:3478 stuns:stun.example.org:5349;
};
}

our $Parent = $$;

END {
    kill "TERM", $TurnPid if $TurnPid && $$ == $Parent;
}

our %Id;
*Id = \%ChatChats::Id;

sub call { ChatChats::call(@_) }

sub url { "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}" . shift }

sub req {
    my ($method, $path, %h) = @_;
    my $r = HTTP::Tiny->new->request($method => url($path),
                                     { headers => \%h });
    my $b = eval { decode_json($r->{content}) } // {};
    return ($r->{status}, $b, $r->{headers});
}

# base64 of the 20 bytes, padded as the route (and coturn) writes it
sub password { hmac_sha1_base64($_[0], $_[1]) . "=" }

sub iso {
    POSIX::strftime("%Y-%m-%dT%H:%M:%SZ", gmtime shift);
}

# Debian's turnserver, on 127.0.0.1 only, use-auth-secret with $Secret
sub start_turn {
    return if $TurnPid;
    my $port = $ENV{TEST_NGINX_TURN_PORT};
    my $relay = 50000 + ($$ % 150) * 100;
    open my $fh, ">", "$Dir/turnserver.conf" or die "turnserver.conf: $!";
    print $fh <<"_EOC_";
listening-ip=127.0.0.1
relay-ip=127.0.0.1
listening-port=$port
min-port=$relay
max-port=@{[ $relay + 99 ]}
use-auth-secret
static-auth-secret=$Secret
realm=chat.test
fingerprint
no-tls
no-dtls
no-cli
allow-loopback-peers
no-multicast-peers
userdb=$Dir/turndb
pidfile=$Dir/turnserver.pid
log-file=$Dir/turnserver.log
simple-log
no-stdout-log
_EOC_
    close $fh;

    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, ">", "/dev/null";
        open STDERR, ">", "/dev/null";
        exec "turnserver", "-c", "$Dir/turnserver.conf";
        exit 127;
    }
    $TurnPid = $pid;

    for (1 .. 100) {
        return if IO::Socket::INET->new(PeerAddr => "127.0.0.1",
                                        PeerPort => $port, Proto => "tcp");
        Time::HiRes::sleep(0.1);
    }
    die "turnserver did not start: see $Dir/turnserver.log";
}

# the two peers of t/lib/webrtc_peer.py: (exit code, decoded report)
sub peers {
    my ($mode, $timeout) = @_;
    my $root = $ENV{TEST_NGINX_ROOT} || ".";
    my $python = "$root/.deps/webrtc/bin/python";
    return (-1, { error => "no $python: run tools/bootstrap" })
        unless -x $python;

    my @cmd = ($python, "$root/t/lib/webrtc_peer.py", $mode,
               "--base", url(""),
               "--token-a", $ChatChats::Tok{alice}{accessToken},
               "--token-b", $ChatChats::Tok{bob}{accessToken},
               "--user-b", $Id{bob}, "--timeout", $timeout);
    # no __pycache__ left in t/lib
    local $ENV{PYTHONDONTWRITEBYTECODE} = 1;
    open my $out, "-|", @cmd or die "webrtc_peer.py: $!";
    my $text = do { local $/; <$out> };
    close $out;
    my $rc = $? >> 8;
    my $report = eval { decode_json((split /\n/, $text)[-1] // "") }
                 // { error => "no report: $text" };
    return ($rc, $report);
}

sub peer_line {
    my ($name, $p) = @_;
    return join " ", $name, $p->{state},
        join(",", @{ $p->{candidates} || [] }) || "none",
        join("-", @{ $p->{pair} || [] }) || "nopair",
        $p->{got} // "nothing",
        ($p->{audioFrames} >= 50 ? "audio" : "noaudio:$p->{audioFrames}");
}

no_long_string();
run_tests();

__DATA__

=== TEST 1: credentials: username expiry:userId, password HMAC-SHA1 of the secret, expiry one ttl ahead, the URIs, iceServers as a browser takes them
--- http_config eval: $main::TurnConf
--- init
ChatChats::setup(qw(dave));
my $now = time;
my ($st, $b) = main::call(alice => GET => "/api/calls/turn-credentials");
my ($bst, $bob) = main::call(bob => GET => "/api/calls/turn-credentials");
my ($exp, $uid) = $b->{username} =~ /^(\d+):(.+)$/;
my $port = $ENV{TEST_NGINX_TURN_PORT};
my @turn = ("turn:127.0.0.1:$port?transport=udp",
            "turn:127.0.0.1:$port?transport=tcp");
my $ice = $b->{iceServers};
my @r = ($st,
    $uid eq $main::Id{alice} ? "alice" : "?$uid",
    ($exp - $now >= 7200 && $exp - $now <= 7210) ? "in2h" : "?" . ($exp - $now),
    $b->{ttl},
    $b->{expiresAt} eq main::iso($exp) ? "iso" : "?$b->{expiresAt}",
    $b->{password} eq main::password($b->{username}, $main::Secret)
        ? "hmac" : "?$b->{password}",
    join(",", @{ $b->{uris} }) eq join(",", @turn) ? "uris" : "?",
    scalar(@$ice),
    join(",", @{ $ice->[0]{urls} }) eq join(",", @turn) ? "turn" : "?",
    $ice->[0]{username} eq $b->{username} ? "user" : "?",
    $ice->[0]{credential} eq $b->{password} ? "cred" : "?",
    join(",", @{ $ice->[1]{urls} }),
    exists $ice->[1]{username} ? "?" : "nouser",
    $bst,
    $bob->{username} =~ /^\d+:\Q$main::Id{bob}\E$/ ? "bob" : "?",
    $bob->{password} eq main::password($bob->{username}, $main::Secret)
        ? "hmac" : "?");
$main::Got = "@r\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/turn-credentials");
--- response_body_filters eval
sub { $main::Got }
--- response_body_like
^200 alice in2h 7200 iso hmac uris 2 turn user cred stun:127\.0\.0\.1:\d+ nouser 200 bob hmac$
--- error_code: 200



=== TEST 2: no token, a bad token, a tampered one: 401; another method: 405; a query changes nothing
--- http_config eval: $main::TurnConf
--- init
ChatChats::setup(qw(dave));
my $u = "/api/calls/turn-credentials";
my $auth = "Bearer $ChatChats::Tok{alice}{accessToken}";
my ($none, $nb) = main::req(GET => $u);
my ($bad, $bb) = main::req(GET => $u, Authorization => "Bearer not.a.token");
my ($tam) = main::req(GET => $u, Authorization => "Bearer "
    . ChatJWT::tamper($ChatChats::Tok{alice}{accessToken}));
my ($post, undef, $ph) = main::req(POST => $u, Authorization => $auth);
my ($q, $qb) = main::call(alice => GET => "$u?ttl=99999999&userId=$main::Id{bob}&username=x");
my $now = time;
my ($exp, $uid) = $qb->{username} =~ /^(\d+):(.+)$/;
$main::Got = join(" ", $none, $nb->{error}{code}, $bad, $bb->{error}{code},
    $tam, $post, $ph->{allow}, $q, $qb->{ttl},
    $uid eq $main::Id{alice} ? "mine" : "?",
    $exp - $now <= 7202 ? "ttl" : "?",
    $qb->{password} eq main::password($qb->{username}, $main::Secret)
        ? "hmac" : "?") . "\n";
ChatChats::dyn($block, request => "GET $u");
--- response_body_filters eval
sub { $main::Got }
--- response_body_like
^401 unauthorized 401 invalid_token 401 405 GET, HEAD, OPTIONS 200 7200 mine ttl hmac$
--- error_code: 401



=== TEST 3: over chat_turn_limit: 429 rate_limited with Retry-After and the envelope; another user is not counted with me; allowed again after the window
--- http_config eval: $main::LimitConf
--- init
ChatChats::setup(qw(dave));
my @s = map { (main::call(carol => GET => "/api/calls/turn-credentials"))[0] } 1 .. 3;
my ($over, $ob, $oh) = (main::call(carol => GET => "/api/calls/turn-credentials"))[0, 1];
my ($other) = main::call(dave => GET => "/api/calls/turn-credentials");
Time::HiRes::sleep(2.5);
my ($again) = main::call(carol => GET => "/api/calls/turn-credentials");
# the block's own request is the fourth of this window
main::call(carol => GET => "/api/calls/turn-credentials") for 1 .. 2;
$main::Got = "@s $over $ob->{error}{code} $other $again\n";
ChatChats::dyn($block, as => "carol", request => "GET /api/calls/turn-credentials");
--- response_headers_like
Retry-After: [12]
--- response_body_filters eval
sub { $main::Got }
--- response_body
200 200 200 429 rate_limited 200 200
--- error_code: 429



=== TEST 4: STUN only: 404 turn_not_configured, with the STUN servers to fall back to
--- http_config eval: $main::StunConf
--- init
ChatChats::setup(qw(dave));
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/turn-credentials");
--- response_body_like
^\{"error":\{"code":"turn_not_configured","message":"[^"]+","details":\{"iceServers":\[\{"urls":\["stun:stun.example.org:3478","stuns:stun.example.org:5349"\]\}\]\}\}\}$
--- error_code: 404



=== TEST 5: nothing configured: 404 turn_not_configured, no servers at all
--- init
ChatChats::setup(qw(dave));
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/turn-credentials");
--- response_body_like
^\{"error":\{"code":"turn_not_configured","message":"[^"]+","details":\{"iceServers":\[\]\}\}\}$
--- error_code: 404



=== TEST 6: TURN URIs without a secret: nginx refuses to start
--- http_config eval
$main::Base . q{
    chat_turn_uris turn:127.0.0.1:3478;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_turn_uris" needs "chat_turn_secret" or "chat_turn_secret_file"/



=== TEST 7: a URI of the wrong scheme: nginx refuses to start
--- http_config eval
$main::Base . q{
    chat_turn_secret abc;
    chat_turn_uris stun:127.0.0.1:3478;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_turn_uris": "stun:127.0.0.1:3478" is not a turn: or turns: URI/



=== TEST 8: a secret file that is not there: nginx refuses to start, naming it
--- http_config eval
$main::Base . q{
    chat_turn_secret_file $TEST_NGINX_TURN_SECRET_FILE.missing;
    chat_turn_uris turn:127.0.0.1:3478;
}
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_turn_secret_file" cannot open ".*turn\.secret\.missing"/



=== TEST 9: two aiortc peers, relay candidates only, with the credentials our route gave each user: connected through coturn, a message each way, audio
--- http_config eval: $main::TurnConf
--- init
ChatChats::setup(qw(dave));
main::start_turn();
my ($rc, $r) = main::peers("local", 20);
$main::Got = join("\n", "rc $rc", main::peer_line(a => $r->{a}),
                  main::peer_line(b => $r->{b}), "error " . ($r->{error} // "none"))
           . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/turn-credentials");
--- response_body_filters eval
sub { $main::Got }
--- response_body
rc 0
a connected relay relay-relay hello from b audio
b connected relay relay-relay hello from a audio
error none
--- error_code: 200
--- timeout: 60



=== TEST 10: the same peers with credentials of another secret: coturn refuses them, they never connect
--- http_config eval: $main::WrongConf
--- init
ChatChats::setup(qw(dave));
main::start_turn();
my ($rc, $r) = main::peers("local", 5);
# coturn itself said no to the caller: the MESSAGE-INTEGRITY of no secret
# it has (the callee may not have asked yet: its SDP came with none)
my $log = do { local (@ARGV, $/) = "$main::Dir/turnserver.log"; <> };
$main::Got = join("\n", "rc $rc",
    map { "$_ " . ($r->{$_}{state} eq "connected" ? "connected" : "not connected")
          . " " . ($r->{$_}{got} // "nothing") } qw(a b)) . "\n"
    . ($log =~ /Cannot find credentials of user <\d+:\Q$main::Id{alice}\E>/
       ? "coturn refused alice" : "coturn said nothing") . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/turn-credentials");
--- response_body_filters eval
sub { $main::Got }
--- response_body
rc 1
a not connected nothing
b not connected nothing
coturn refused alice
--- error_code: 200
--- timeout: 60



=== TEST 11: the call through our signalling (call_initiate, call_accept, webrtc_offer/answer over /ws) and coturn's relay
--- http_config eval: $main::TurnConf
--- config
    location /api/ { chat_api; }
    location /ws { chat_ws; }
--- init
ChatChats::setup(qw(dave));
main::start_turn();
# a call needs the callee reachable: contacts both ways
main::call(alice => POST => "/api/users/add-contact", { userId => $main::Id{bob} });
main::call(bob => POST => "/api/users/add-contact", { userId => $main::Id{alice} });
my ($rc, $r) = main::peers("ws", 20);
$main::Got = join("\n", "rc $rc", main::peer_line(a => $r->{a}),
                  main::peer_line(b => $r->{b}), "error " . ($r->{error} // "none"))
           . "\n";
ChatChats::dyn($block, as => "alice", request => "GET /api/calls/turn-credentials");
--- response_body_filters eval
sub { $main::Got }
--- response_body
rc 0
a connected relay relay-relay hello from b audio
b connected relay relay-relay hello from a audio
error none
--- error_code: 200
--- timeout: 60

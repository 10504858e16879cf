# Limits per address on sockets (issue 21): the sockets of one client
# address that have not signed in (chat_ws_unauth_per_address) and all of
# them (chat_ws_conn_per_address) are counted across the workers; over a
# limit the upgrade is refused before it happens: 429 with Retry-After
# and the error envelope (too_many_connections), a Socket.IO polling
# handshake as Engine.IO refuses one ({"code": 4}).  A socket is off the
# first count when it signs in, off both when it ends.  Small limits keep
# the file fast; every socket here comes from 127.0.0.1.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatChats;
use ChatRT;
use ChatSIO;
use ChatWS;
use HTTP::Tiny;
use JSON::PP ();
use Time::HiRes qw(sleep time);

BEGIN { ChatChats::init("686") }

our $Got;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("config", <<'_EOC_') unless defined $block->config;
    location /api/ { chat_api; }
    location /ws {
        chat_ws;
        chat_ws_unauth_per_address 3;
        chat_ws_auth_timeout 20s;
    }
    location /socket.io/ {
        chat_socketio;
        chat_ws_unauth_per_address 2;
    }
    location = /metrics { chat_metrics; }
    location = /t { return 200 "t"; }
_EOC_
    $block->set_value("request", "GET /t");
    $block->set_value("response_body_filters", sub { "$main::Got\n" });
    $block->set_value("timeout", 30);
});

# an anonymous upgrade of $path: (socket, "101") or (undef, the refusal as
# "429 retry:N code") so that a test can say what it was told
sub main::open_anon {
    my ($path) = @_;
    my ($s, $status, $h, $head, $body) = ChatWS::open_ws($path);
    return ($s, "101") if $status == 101;
    my $code = eval { JSON::PP::decode_json($body)->{error}{code} } // "?";
    return (undef, "$status retry:" . ($h->{"retry-after"} // "none")
                   . " $code");
}

# $n anonymous sockets of $path opened at once, as soon as the server let
# go of the ones before (at most 5 s): the sockets, or () if it never did
sub main::open_n {
    my ($path, $n) = @_;
    my $until = time + 5;
    for (;;) {
        my @s;
        while (@s < $n) {
            my ($s) = main::open_anon($path);
            last unless $s;
            push @s, $s;
        }
        return @s if @s == $n;
        close $_ for @s;
        return () if time > $until;
        sleep 0.1;
    }
}

# a counter of the metrics page, summed over its lines
sub main::metric {
    my ($name) = @_;
    my $page = HTTP::Tiny->new(timeout => 5)->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/metrics")->{content};
    my $n = 0;
    $n += $1 while $page =~ /^\Q$name\E(?:\{[^}]*\})? (\d+)$/mg;
    return $n;
}

master_on();
workers(2);
no_shuffle();
run_tests();

__DATA__

=== TEST 1: the 4th socket not signed in from one address is refused 429 before the upgrade; one that signs in makes room, one that closes too; all closed, the address has its 3 again
--- init
ChatChats::setup();
my @r;
$ChatWS::Port = undef;
my @s = main::open_n("/ws", 3);
push @r, "open:" . scalar @s;
my ($x, $said) = main::open_anon("/ws");
push @r, "4th:$said";
# one signs in: it no longer counts among those not signed in
ChatRT::send_event($s[0], "authenticate",
                   { token => $ChatChats::Tok{alice}{accessToken} }, 1);
my $e = ChatRT::wait_for($s[0], "authenticated", 5);
push @r, "signed:" . ($e ? "yes" : "no");
($x, $said) = main::open_anon("/ws");
push @r, "after sign-in:$said";
push @s, $x if $x;
($x, $said) = main::open_anon("/ws");
push @r, "again:$said";
# one not signed in closes: its place comes back
close $s[1];
my @t = main::open_n("/ws", 1);
push @r, "after close:" . (@t ? "101" : "refused");
# all closed: the count is back to nothing (3 open at once)
close $_ for @s, @t;
@s = main::open_n("/ws", 3);
push @r, "all closed:" . scalar @s;
($x, $said) = main::open_anon("/ws");
push @r, "then:$said";
close $_ for @s;
push @r, "counted:"
    . (main::metric("chat_socket_upgrades_refused_total") >= 3 ? "yes" : "no");
$main::Got = "@r";
--- response_body
open:3 4th:429 retry:20 too_many_connections signed:yes after sign-in:101 again:429 retry:20 too_many_connections after close:101 all closed:3 then:429 retry:20 too_many_connections counted:yes
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: signed-in sockets count against chat_ws_conn_per_address: the 4th socket of the address is refused though none waits to sign in; with the limits off, many open
--- config
location /api/ { chat_api; }
location /ws {
    chat_ws;
    chat_ws_unauth_per_address 2;
    chat_ws_conn_per_address 3;
}
location /ws-off {
    chat_ws;
    chat_ws_unauth_per_address off;
    chat_ws_conn_per_address 0;
}
location = /t { return 200 "t"; }
--- init
ChatChats::setup();
my @r;
$ChatWS::Port = undef;
my @s = map { ChatRT::connect($_) } qw(alice bob carol);
push @r, "signed in:" . scalar @s;
my ($x, $said) = main::open_anon("/ws");
push @r, "4th:$said";
close pop @s;
my @t = main::open_n("/ws", 1);
push @r, "after close:" . (@t ? "101" : "refused");
close $_ for @s, @t;
@t = main::open_n("/ws", 2);
push @r, "all closed:" . scalar @t;
my @u = main::open_n("/ws-off", 40);
push @r, "off:" . scalar @u;
close $_ for @t, @u;
$main::Got = "@r";
--- response_body
signed in:3 4th:429 retry:60 too_many_connections after close:101 all closed:2 off:40
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 3: Socket.IO over WebSocket: the 3rd socket not connected is refused 429, a polling handshake too (Engine.IO's {"code": 4}); a CONNECT with a token makes room
--- init
ChatChats::setup();
my @r;
$ChatWS::Port = undef;
my $path = "/socket.io/?EIO=4&transport=websocket";
my @s = main::open_n($path, 2);
push @r, "open:" . scalar @s;
my ($x, $said) = main::open_anon($path);
push @r, "3rd:$said";
my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}"
    . "/socket.io/?EIO=4&transport=polling";
my $http = HTTP::Tiny->new(timeout => 10);
my $res = $http->get($base);
push @r, "polling:$res->{status} retry:"
    . ($res->{headers}{"retry-after"} // "none")
    . " code:" . (eval { JSON::PP::decode_json($res->{content})->{code} }
                  // "?");
# the first socket connects with a token: it is signed in
ChatWS::read_frame($s[0], 5);
ChatWS::text($s[0], "40" . JSON::PP::encode_json(
                  { token => $ChatChats::Tok{alice}{accessToken} }));
my $c = ChatSIO::next_event($s[0], 5);
push @r, "connect:" . ($c ? $c->{event} : "none");
# room for one: a polling session takes it, then nothing more
$res = $http->get($base);
my ($sid) = $res->{content} =~ /^0\{"sid":"([^"]+)"/;
push @r, "polling:" . ($sid ? "open" : $res->{status});
($x, $said) = main::open_anon($path);
push @r, "then:$said";
# its upgrade to a WebSocket is the same session: not refused
my ($u, $st) = ChatWS::open_ws("$path&sid=" . ($sid // "none"));
push @r, "upgrade:$st";
close $_ for grep { $_ } @s, $u;
$main::Got = "@r";
--- response_body
open:2 3rd:429 retry:10 too_many_connections polling:429 retry:10 code:4 connect:connect polling:open then:429 retry:10 too_many_connections upgrade:101
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 4: workers killed with SIGKILL leave no counts behind: their address opens its 3 again once new workers run
--- init
my @r;
$ChatWS::Port = undef;
my @s = main::open_n("/ws", 3);
my ($x, $said) = main::open_anon("/ws");
push @r, "full:$said";
open my $f, "<", "$Test::Nginx::Util::ServRoot/logs/nginx.pid" or die;
chomp(my $master = <$f>);
my @workers = grep { $_ } split /\s+/, `pgrep -P $master`;
kill "KILL", @workers;
push @r, "killed:" . (@workers ? "yes" : "none");
close $_ for @s;
my @t = main::open_n("/ws", 3);
push @r, "after:" . scalar @t;
close $_ for @t;
$main::Got = "@r";
--- response_body
full:429 retry:20 too_many_connections killed:yes after:3
--- no_error_log
[error]
[emerg]

# Redis bounds: the module's Lua scripts run as EVALSHA and survive a
# SCRIPT FLUSH; a stalled Redis answers 503 after chat_redis_command_timeout
# instead of hanging; commands beyond chat_redis_output_buffer fail at once;
# idle connections are not timed out.  A Redis of the test's own, which it
# flushes and stops (SIGSTOP) without disturbing the other suites.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use ChatChats;
use HTTP::Tiny;
use IO::Select;
use IO::Socket::INET;
use JSON::PP qw(encode_json decode_json);
use Time::HiRes qw(time sleep);

our $Redis;

BEGIN {
    $Redis = ChatRedis->new->start;
    # chat_http_config() names $TEST_NGINX_REDIS_PORT, read when a block runs
    $ENV{TEST_NGINX_REDIS_PORT} = $Redis->port;
    ChatChats::init("571", "chat_redis_command_timeout 1s;");
}

END {
    if ($Redis && $Redis->{pid}) {
        kill 'CONT', $Redis->{pid};
        $Redis->stop;
    }
}

*Id = \%ChatChats::Id;
*Tok = \%ChatChats::Tok;
our (%Id, %Tok, $Chat, $Got);

# one command on a connection of its own -> its reply, as text
sub redis {
    my @args = @_;
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:" . $Redis->port,
                                  Timeout => 5) or die "redis: $!";
    print $s "*" . @args . "\r\n",
          map { "\$" . length($_) . "\r\n$_\r\n" } @args;
    my $line = <$s> // die "redis: no reply to @args";
    if ($line =~ /^\$(-?\d+)/) {
        return undef if $1 < 0;
        my $want = $1 + 2;
        my $buf = '';
        while (length $buf < $want) {
            read($s, $buf, $want - length $buf, length $buf) or last;
        }
        return substr($buf, 0, $1);
    }
    $line =~ s/\r\n\z//;
    return $line;
}

# "evalsha" => calls, ... from INFO commandstats
sub command_calls {
    my %n;
    for (split /\r\n/, redis(qw(INFO commandstats))) {
        $n{$1} = $2 if /^cmdstat_([^:]+):calls=(\d+)/;
    }
    return %n;
}

sub send_msg {
    my ($who, $temp) = @_;
    my ($s) = ChatChats::call($who => POST => "/api/messages",
        { chatId => $Chat, tempId => $temp, type => "text",
          content => "via $temp" });
    return $s;
}

# GET /api/users/profile as alice -> (status, error code, seconds)
sub profile {
    my ($timeout) = @_;
    my $t0 = time;
    my $r = HTTP::Tiny->new(timeout => $timeout)->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/users/profile",
        { headers => { Authorization => "Bearer $Tok{alice}{accessToken}" } });
    my $code = eval { decode_json($r->{content})->{error}{code} } // '-';
    return ($r->{status}, $code, time - $t0);
}

# until the module's Redis connection answers again
sub wait_profile_ok {
    for (1 .. 50) {
        my ($s) = profile(2);
        return 1 if $s == 200;
        sleep 0.1;
    }
    return 0;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: scripts run as EVALSHA, never EVAL; after SCRIPT FLUSH a send still works (loaded again, retried once)
--- init
main::redis(qw(SCRIPT FLUSH));
main::redis(qw(CONFIG RESETSTAT));
ChatChats::setup();
$main::Chat = ChatChats::api(alice => POST => "/api/chats/private",
    { userId => $main::Id{bob} })->{chat}{id};
my $s1 = main::send_msg(alice => "f-1");
my $flush = main::redis(qw(SCRIPT FLUSH));
my $s2 = main::send_msg(alice => "f-2");
my %n = main::command_calls();
$main::Got = CORE::join " ", $s1, $flush, $s2,
    "eval:" . ($n{eval} // 0),
    "evalsha:" . (($n{evalsha} // 0) > 0 ? "yes" : "no"),
    "loads:" . (($n{"script|load"} // 0) >= 2 ? "2+" : $n{"script|load"} // 0);
ChatChats::dyn($block, as => "bob",
    request => "GET /api/chats/$main::Chat/messages?limit=10");
--- response_body_filters eval
sub {
    my $items = JSON::PP::decode_json($_[0])->{items};
    "$main::Got " . CORE::join(",", sort map { $_->{tempId} } @$items) . "\n"
}
--- response_body
201 +OK 201 eval:0 evalsha:yes loads:2+ f-1,f-2
--- error_code: 200
--- error_log eval
qr/chat redis: script [0-9a-f]{40} is not in the script cache of 127\.0\.0\.1:\d+, loading it again/
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 2: Redis stopped: a request answers 503 service_unavailable after chat_redis_command_timeout, then works again once Redis is back
--- init
ChatChats::setup();
main::wait_profile_ok() or die "no 200 before the stop";
kill 'STOP', $main::Redis->{pid};
my ($s, $code, $t) = main::profile(5);
kill 'CONT', $main::Redis->{pid};
my $ok = main::wait_profile_ok();
$main::Got = CORE::join " ", $s, $code,
    ($t >= 0.8 && $t < 3 ? "in-bound" : sprintf("took-%.1fs", $t)),
    ($ok ? "back" : "not-back");
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
503 service_unavailable in-bound back
--- error_code: 200
--- error_log eval
[qr/\[error\] .*chat redis: no reply from 127\.0\.0\.1:\d+ in 1000ms/,
 qr/chat redis: lost connection to 127\.0\.0\.1:\d+: command timed out/,
 qr/chat: session check: redis did not answer/]
--- no_error_log
[alert]
[emerg]
exited on signal



=== TEST 3: Redis stopped, 30 requests at once: those over chat_redis_output_buffer fail at once, the others after the timeout; all 503
--- http_config eval
ChatTest::chat_http_config() . "
    chat_redis_command_timeout 1s;
    chat_redis_output_buffer 1k;
"
--- init
ChatChats::setup();
main::wait_profile_ok() or die "no 200 before the stop";
kill 'STOP', $main::Redis->{pid};
my (@socks, %buf, %at);
for (1 .. 30) {
    my $c = IO::Socket::INET->new("127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}")
        or die "connect: $!";
    print $c "GET /api/users/profile HTTP/1.0\r\nHost: localhost\r\n"
        . "Authorization: Bearer $main::Tok{alice}{accessToken}\r\n\r\n";
    push @socks, $c;
}
my $t0 = time;
my $sel = IO::Select->new(@socks);
while ($sel->count && time - $t0 < 5) {
    for my $c ($sel->can_read(0.2)) {
        my $n = sysread($c, my $chunk, 65536);
        if ($n) { $buf{$c} .= $chunk; next }
        $sel->remove($c);
        $at{$c} = time - $t0;
    }
}
kill 'CONT', $main::Redis->{pid};
my ($fast, $slow, $bad) = (0, 0, 0);
for my $c (@socks) {
    if (($buf{$c} // '') !~ m{^HTTP/1\.\d 503 .*"code":"service_unavailable"}s
        || !defined $at{$c})
    {
        $bad++;
    } elsif ($at{$c} < 0.5) {
        $fast++;
    } elsif ($at{$c} >= 0.8) {
        $slow++;
    }
}
$main::Got = CORE::join " ", "bad:$bad", ($fast >= 5 ? "fast:5+" : "fast:$fast"),
    ($slow >= 1 ? "slow:1+" : "slow:0"), ($fast + $slow == 30 ? "all" : "some");
main::wait_profile_ok() or die "Redis not back";
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- config
location /api/ { chat_api; }
--- response_body_filters eval
sub { "$main::Got\n" }
--- response_body
bad:0 fast:5+ slow:1+ all
--- error_code: 200
--- error_log eval
[qr/\[error\] .*chat redis: \d+ bytes of commands to 127\.0\.0\.1:\d+ wait for a reply, not less than chat_redis_output_buffer 1024: failing new commands/,
 qr/chat redis: no reply from 127\.0\.0\.1:\d+ in 1000ms/]
--- no_error_log
[alert]
[emerg]
exited on signal



=== TEST 4: idle connections (commands and pub/sub) are not timed out
--- http_config eval
ChatTest::chat_http_config() . "
    chat_redis_command_timeout 200ms;
"
--- init
ChatChats::setup();
main::wait_profile_ok() or die "no 200";
sleep 1.5;
ChatChats::dyn($block, as => "alice", request => "GET /api/users/profile");
--- config
location /api/ { chat_api; }
--- response_body_like: "phone":"\+1628571
--- error_code: 200
--- no_error_log
[error]
[alert]
[emerg]
lost connection

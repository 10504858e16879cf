# MongoDB through the thread pool: a slow database never blocks the event
# loop, and a client that leaves while its query runs harms nothing.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use DelayProxy;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);
use File::Temp qw(tempdir);

# FerretDB behind a proxy that holds each command for 0.7 s
our ($ProxyPid, $ProxyPort) = DelayProxy::start($ENV{TEST_NGINX_MONGO_PORT},
                                                0.7);
$ENV{TEST_NGINX_SLOW_MONGO_PORT} = $ProxyPort;
END { DelayProxy::stop($ProxyPid) if $ProxyPid }

our $ResultDir = tempdir(CLEANUP => 1);
our ($T0, $Prober);

# Runs in a child while the main request waits on the slow database:
# 50 fresh connections to /healthz, each timed.
sub probe_healthz {
    $T0 = time;
    $Prober = fork;
    return if $Prober;

    sleep 0.2;
    my @lat;

    for (1 .. 50) {
        my $start = time;
        my $s = IO::Socket::INET->new(
            PeerAddr => "127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}",
            Timeout => 2) or next;
        print $s "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n";
        my $resp = do { local $/; <$s> };
        push @lat, time - $start if $resp =~ m{^HTTP/1\.1 200 };
    }

    open my $out, '>', "$ResultDir/probe" or POSIX::_exit(1);
    printf $out "%d %.4f %.4f\n", scalar @lat,
           (sort { $b <=> $a } @lat)[0] // 99, time - $T0;
    close $out;
    POSIX::_exit(0);
}

$ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

no_shuffle();
run_tests();

# the probe's verdict, read after the slow request finished
waitpid $Prober, 0 if $Prober;
open my $in, '<', "$ResultDir/probe" or die "no probe result";
my ($n, $max, $done) = split ' ', <$in>;
is($n, 50, "every /healthz probe answered 200 during the slow query");
cmp_ok($max, '<', 0.1, "the slowest /healthz took under 100 ms ($max s)");
cmp_ok($done, '<', 1.0, "the probes ran while the query was in flight");

__DATA__

=== TEST 1: /healthz stays fast on the only worker while Mongo is slow
--- http_config
    chat_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_SLOW_MONGO_PORT/?serverSelectionTimeoutMS=10000&connectTimeoutMS=10000&socketTimeoutMS=10000";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location = /healthz { chat_healthz; }
    location = /readyz { chat_readyz; }
--- init
main::probe_healthz();
--- request
GET /readyz
--- timeout: 10
--- response_body_like: "mongo":\{"status":"up","ms":[1-9]\d{3}\}
--- error_code: 200



=== TEST 2: a client that leaves during a slow query: the task finishes alone
--- http_config
    chat_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_SLOW_MONGO_PORT/?serverSelectionTimeoutMS=10000&connectTimeoutMS=10000&socketTimeoutMS=10000";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- timeout: 0.3
--- abort
--- ignore_response
--- wait: 3
--- error_log
client prematurely closed connection
chat readyz: request gone, checks go on
--- no_error_log
[error]
[alert]
[emerg]
exited on signal



=== TEST 3: after aborted requests the worker still serves Mongo queries
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- response_body_like: "mongo":\{"status":"up"
--- error_code: 200



=== TEST 4: Mongo down: readyz says so with 503, quickly
--- http_config
    chat_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    chat_mongo_uri "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=500";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- response_body_like: ^\{"status":"unavailable","checks":\{"redis":\{"status":"up","ms":\d+\},"mongo":\{"status":"down","ms":\d+,"error":"[^"]+"\}\}\}
--- error_code: 503
--- no_error_log
[alert]
[emerg]

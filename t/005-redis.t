# Redis on the event loop: when Redis goes away the module says so, and
# when it comes back the module reconnects by itself, without a reload.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatRedis;
use IO::Socket::INET;
use Time::HiRes qw(time sleep);

our $Redis = ChatRedis->new->start;
$ENV{TEST_NGINX_OWN_REDIS_PORT} = $Redis->port;
END { $Redis->stop if $Redis }

our @Seen;

sub redis_state {
    my $s = IO::Socket::INET->new(
        PeerAddr => "127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}", Timeout => 5)
        or return "no-connect";
    print $s "GET /readyz HTTP/1.0\r\nHost: localhost\r\n\r\n";
    my $resp = do { local $/; <$s> } // '';
    return $resp =~ /"redis":\{"status":"(\w+)"/ ? $1 : "no-answer";
}

sub wait_for {
    my ($want, $limit) = @_;
    my $start = time;
    while (time - $start < $limit) {
        my $got = redis_state();
        return ($got, time - $start) if $got eq $want;
        sleep 0.1;
    }
    return (redis_state(), time - $start);
}

# Redis up, killed, started again, all under one running NGINX
sub outage {
    push @Seen, [redis_state(), 0];
    $Redis->stop;
    push @Seen, [wait_for('down', 5)];
    sleep 2;    # long enough for the backoff to reach its 1 s cap
    $Redis->start;
    push @Seen, [wait_for('up', 5)];
}

$ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

no_shuffle();
run_tests();

is_deeply([map { $_->[0] } @Seen], [qw(up down up)],
          "Redis seen up, then down, then up again");
cmp_ok($Seen[2][1], '<', 1.5,
       "reconnected within the backoff cap after Redis returned "
       . "($Seen[2][1] s)");

__DATA__

=== TEST 1: Redis killed and started again: back without a reload
--- http_config
    chat_redis 127.0.0.1:$TEST_NGINX_OWN_REDIS_PORT;
    chat_redis_backoff_max 1s;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_MONGO_PORT/";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location = /readyz { chat_readyz; }
--- init
main::outage();
--- request
GET /readyz
--- response_body_like: "redis":\{"status":"up"
--- error_code: 200
--- error_log eval
[qr/\[error\] .*chat redis: lost connection to 127\.0\.0\.1:\d+/,
 qr/chat redis: (re)?connected to 127\.0\.0\.1:\d+/]
--- no_error_log
[alert]
[emerg]
exited on signal



=== TEST 2: Redis never there: readyz is 503 and names it
--- http_config
    chat_redis 127.0.0.1:1;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_MONGO_PORT/";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- response_body_like: ^\{"status":"unavailable","checks":\{"redis":\{"status":"down","ms":\d+,"error":"not connected"\},"mongo":\{"status":"up"
--- error_code: 503
--- no_error_log
[alert]
[emerg]

# Outbound HTTP through libcurl's multi interface on NGINX events: the
# readiness checks of chat_ready_check against local fake upstreams.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use IO::Socket::INET;

# a server that accepts connections (the kernel does) but never answers
our $BlackHole = IO::Socket::INET->new(Listen => 8, LocalAddr => '127.0.0.1',
                                       LocalPort => 0) or die "listen: $!";
$ENV{TEST_NGINX_BLACKHOLE_PORT} = $BlackHole->sockport;

add_block_preprocessor(sub {
    my $block = shift;

    # the fake upstream: a server of the same NGINX, which logs what it got
    if ($block->fake_upstream) {
        $block->set_value("http_config", ChatTest::chat_http_config() . q{
    log_format fake 'fake got "$request" ua="$http_user_agent"';
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1;
        access_log logs/access.log fake;
        location = /health { return 200 "ok\n"; }
        location = /broken { return 503 "down\n"; }
    }
} . $block->fake_upstream);
    }
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an upstream that answers 200 is up, and got our request
--- fake_upstream
    chat_ready_check http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/health;
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- response_body_like: "upstreams":\[\{"status":"up","ms":\d+,"url":"http://127.0.0.1:\d+/health","httpStatus":200\}\]
--- access_log
fake got "GET /health HTTP/1.1" ua="ngx_chat_module"
--- error_code: 200



=== TEST 2: an upstream that answers 503 is down
--- fake_upstream
    chat_ready_check http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/broken;
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- response_body_like: "upstreams":\[\{"status":"down","ms":\d+,"error":"HTTP status 503","url":"http://127.0.0.1:\d+/broken","httpStatus":503\}\]
--- error_code: 503
--- no_error_log
[alert]
[emerg]



=== TEST 3: an upstream that never answers times out on time
--- http_config eval
ChatTest::chat_http_config() . q{
    chat_upstream_timeout 300ms;
    chat_ready_check http://127.0.0.1:$TEST_NGINX_BLACKHOLE_PORT/health;
}
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- timeout: 3
--- response_body_like: "upstreams":\[\{"status":"down","ms":(2[5-9]\d|[3-9]\d\d),"error":"[^"]*[Tt]imed out[^"]*"
--- error_code: 503
--- no_error_log
[alert]
[emerg]



=== TEST 4: an upstream that refuses connections is down
--- http_config eval
ChatTest::chat_http_config() . q{
    chat_ready_check http://127.0.0.1:1/health;
}
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- response_body_like: "upstreams":\[\{"status":"down","ms":\d+,"error":"[^"]*(Failed to connect|Couldn't connect)[^"]*"
--- error_code: 503
--- no_error_log
[alert]
[emerg]



=== TEST 5: several checks run side by side, each reported
--- fake_upstream
    chat_ready_check http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/health;
    chat_ready_check http://127.0.0.1:1/refused;
    chat_ready_check http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/broken;
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- response_body_like: "upstreams":\[\{"status":"up",[^\]]*"httpStatus":200\},\{"status":"down",[^\]]*/refused"\},\{"status":"down",[^\]]*"httpStatus":503\}\]
--- error_code: 503
--- no_error_log
[alert]
[emerg]



=== TEST 6: many readiness requests at once share the worker fine
--- fake_upstream
    chat_ready_check http://127.0.0.1:$TEST_NGINX_RAND_PORT_1/health;
--- config
    location = /readyz { chat_readyz; }
--- pipelined_requests eval
[("GET /readyz") x 20]
--- response_body_like eval
[("\"status\":\"ready\"") x 20]
--- error_code eval
[(200) x 20]

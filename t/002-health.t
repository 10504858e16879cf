# /healthz and /readyz with Redis and MongoDB up.

use Test::Nginx::Socket 'no_plan';
use ChatTest;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: healthz answers with a JSON status
--- config
    location = /healthz { chat_healthz; }
--- request
GET /healthz
--- response_headers
Content-Type: application/json; charset=utf-8
X-Content-Type-Options: nosniff
Cache-Control: no-store
--- response_body_like: ^\{"status":"ok","version":"[0-9.]+"\}$
--- error_code: 200



=== TEST 2: readyz reports Redis and MongoDB up
--- config
    location = /readyz { chat_readyz; }
--- request
GET /readyz
--- response_body_like: ^\{"status":"ready","checks":\{"redis":\{"status":"up","ms":\d+\},"mongo":\{"status":"up","ms":\d+\}\}\}$
--- error_code: 200



=== TEST 3: HEAD on healthz has headers and no body
--- config
    location = /healthz { chat_healthz; }
--- request
HEAD /healthz
--- response_body
--- error_code: 200



=== TEST 4: POST to healthz is refused with 405 and Allow
--- config
    location = /healthz { chat_healthz; }
--- request
POST /healthz
hello
--- response_headers
Allow: GET, HEAD, OPTIONS
--- response_body
{"error":{"code":"method_not_allowed","message":"this method is not allowed here"}}
--- error_code: 405

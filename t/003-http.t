# What every API route shares: the JSON error envelope, 404/405/413/415/400,
# security headers, HSTS over TLS, CORS, and the request id.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use File::Temp qw(tempdir);

# a self-signed certificate for the TLS block, made for this run only
our $CertDir = tempdir(CLEANUP => 1);
system("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
       . "-keyout $CertDir/key.pem -out $CertDir/cert.pem 2>/dev/null") == 0
    or die "openssl failed";
$ENV{TEST_NGINX_CERT_DIR} = $CertDir;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: an unknown API route is a JSON 404
--- config
    location /api/ { chat_api; }
--- request
GET /api/nothing/here
--- response_headers
Content-Type: application/json; charset=utf-8
--- response_body
{"error":{"code":"not_found","message":"no such API route"}}
--- error_code: 404



=== TEST 2: a known route with the wrong method is a 405 with Allow
--- config
    location /api/ { chat_api; }
--- request
GET /api/auth/send-otp
--- response_headers
Allow: POST, OPTIONS
--- response_body
{"error":{"code":"method_not_allowed","message":"this method is not allowed here"}}
--- error_code: 405



=== TEST 3: Allow lists every method of a path with parameters
--- config
    location /api/ { chat_api; }
--- request
PATCH /api/messages/64b7f0c2a1b2c3d4e5f60718
--- response_headers
Allow: GET, HEAD, PUT, DELETE, OPTIONS
--- error_code: 405



=== TEST 4: a JSON route refuses a text body with 415
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: text/plain
--- request
POST /api/auth/send-otp
{"phone":"+14155550100"}
--- response_body
{"error":{"code":"unsupported_media_type","message":"the body must be application/json"}}
--- error_code: 415



=== TEST 5: a JSON route refuses a body without a content type
--- config
    location /api/ { chat_api; }
--- request
POST /api/auth/send-otp
{"phone":"+14155550100"}
--- response_body_like: "code":"unsupported_media_type"
--- error_code: 415



=== TEST 6: "application/jsonp" is not JSON
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/jsonp
--- request
POST /api/auth/send-otp
{"phone":"+14155550100"}
--- response_body_like: "code":"unsupported_media_type"
--- error_code: 415



=== TEST 7: a body over chat_max_body_size is a 413 before it is read
--- config
    location /api/ { chat_api; chat_max_body_size 100; }
--- more_headers
Content-Type: application/json
--- request eval
"POST /api/auth/send-otp\n{\"phone\":\"" . ("1" x 200) . "\"}"
--- response_body
{"error":{"code":"payload_too_large","message":"the request body is too large"}}
--- error_code: 413



=== TEST 8: a chunked body over chat_max_body_size is a 413 too
--- config
    location /api/ { chat_api; chat_max_body_size 100; }
--- raw_request eval
"POST /api/auth/send-otp HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Transfer-Encoding: chunked\r
Connection: close\r
\r
c8\r
" . ("x" x 200) . "\r
0\r
\r
"
--- response_body_like: "code":"payload_too_large"
--- error_code: 413



=== TEST 9: malformed JSON is a 400
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
{"phone": "+1415555
--- response_body
{"error":{"code":"invalid_json","message":"the body is not valid JSON"}}
--- error_code: 400



=== TEST 10: a JSON array is not an object
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json; charset=utf-8
--- request
POST /api/auth/send-otp
["+14155550100"]
--- response_body
{"error":{"code":"invalid_json","message":"the body must be a JSON object"}}
--- error_code: 400



=== TEST 11: invalid UTF-8 inside a JSON string is a 400
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request eval
"POST /api/auth/send-otp\n{\"phone\":\"\xff\xfe\"}"
--- response_body_like: "code":"invalid_json"
--- error_code: 400



=== TEST 12: duplicate keys are refused
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
{"phone":"+14155550100","phone":"+14155550101"}
--- response_body_like: "code":"invalid_json"
--- error_code: 400



=== TEST 13: an empty body is a 400
--- config
    location /api/ { chat_api; }
--- more_headers
Content-Type: application/json
--- request
POST /api/auth/send-otp
--- response_body
{"error":{"code":"invalid_json","message":"the request body is empty"}}
--- error_code: 400



=== TEST 14: a route that needs a token refuses a request without one
--- config
    location /api/ { chat_api; }
--- request
GET /api/chats
--- response_headers
WWW-Authenticate: Bearer
--- response_body
{"error":{"code":"unauthorized","message":"an access token is required"}}
--- error_code: 401



=== TEST 15: security headers on every answer, errors included
--- config
    location /api/ { chat_api; }
--- request
GET /api/nothing
--- response_headers
X-Content-Type-Options: nosniff
X-Frame-Options: DENY
Referrer-Policy: no-referrer
Content-Security-Policy: default-src 'none'; frame-ancestors 'none'
Cache-Control: no-store
Strict-Transport-Security:
--- error_code: 404



=== TEST 16: HSTS only over TLS
--- config
    location /api/ { chat_api; }
    location = /t {
        proxy_pass https://127.0.0.1:$TEST_NGINX_RAND_PORT_1/api/nothing;
    }
--- http_config eval
ChatTest::chat_http_config() . q{
    server {
        listen 127.0.0.1:$TEST_NGINX_RAND_PORT_1 ssl;
        ssl_certificate $TEST_NGINX_CERT_DIR/cert.pem;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/key.pem;
        chat_hsts_max_age 3600;
        location /api/ { chat_api; }
    }
}
--- request
GET /t
--- response_headers
Strict-Transport-Security: max-age=3600; includeSubDomains
--- error_code: 404



=== TEST 17: security headers can be turned off
--- config
    location /api/ { chat_api; chat_security_headers off; }
--- request
GET /api/nothing
--- response_headers
X-Frame-Options:
X-Content-Type-Options:
--- error_code: 404



=== TEST 18: a good X-Request-Id is kept, sent back, and logged
--- http_config eval
ChatTest::chat_http_config() . q{
    log_format chat '$request_uri request_id=$chat_request_id';
}
--- config
    location /api/ { chat_api; access_log logs/access.log chat; }
--- more_headers
X-Request-Id: client-42.abc_def:1
--- request
GET /api/nothing
--- response_headers
X-Request-Id: client-42.abc_def:1
--- access_log
/api/nothing request_id=client-42.abc_def:1
--- error_code: 404



=== TEST 19: a bad X-Request-Id is replaced by a fresh random one
--- config
    location /api/ { chat_api; }
--- more_headers
X-Request-Id: <script>alert(1)</script>
--- request
GET /api/nothing
--- response_headers_like
X-Request-Id: ^[0-9a-f]{32}$
--- error_code: 404



=== TEST 20: the request id is in the error log lines of the request
--- http_config
    chat_redis 127.0.0.1:1;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_MONGO_PORT/";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location = /readyz { chat_readyz; }
--- more_headers
X-Request-Id: trace-me-123
--- request
GET /readyz
--- error_log eval
qr/\[warn\] .*chat: not ready.*request_id: "trace-me-123"/
--- no_error_log
[alert]
[emerg]
--- error_code: 503



=== TEST 21: CORS: an allowed origin is echoed, with Vary
--- config
    location /api/ { chat_api; chat_cors_origin https://app.example.com; }
--- more_headers
Origin: https://app.example.com
--- request
GET /api/nothing
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Vary: Origin
--- error_code: 404



=== TEST 22: CORS: another origin gets no CORS header
--- config
    location /api/ { chat_api; chat_cors_origin https://app.example.com; }
--- more_headers
Origin: https://evil.example.com
--- request
GET /api/nothing
--- response_headers
Access-Control-Allow-Origin:
--- error_code: 404



=== TEST 23: CORS: a preflight from an allowed origin
--- config
    location /api/ { chat_api; chat_cors_origin https://app.example.com; }
--- more_headers
Origin: https://app.example.com
Access-Control-Request-Method: POST
Access-Control-Request-Headers: authorization, content-type
--- request
OPTIONS /api/auth/send-otp
--- response_headers
Access-Control-Allow-Origin: https://app.example.com
Access-Control-Allow-Methods: POST, OPTIONS
Access-Control-Allow-Headers: Authorization, Content-Type, X-Request-Id
Access-Control-Max-Age: 600
--- response_body
--- error_code: 204



=== TEST 24: CORS: a preflight from another origin is refused
--- config
    location /api/ { chat_api; chat_cors_origin https://app.example.com; }
--- more_headers
Origin: https://evil.example.com
Access-Control-Request-Method: POST
--- request
OPTIONS /api/auth/send-otp
--- response_body
{"error":{"code":"cors_origin_denied","message":"this origin may not use the API"}}
--- error_code: 403



=== TEST 25: CORS: "*" allows any origin
--- config
    location /api/ { chat_api; chat_cors_origin *; }
--- more_headers
Origin: https://anyone.example.com
--- request
GET /api/nothing
--- response_headers
Access-Control-Allow-Origin: *
--- error_code: 404



=== TEST 26: a trailing slash reaches the same route
--- config
    location /api/ { chat_api; }
--- request
GET /api/auth/send-otp/
--- response_headers
Allow: POST, OPTIONS
--- error_code: 405



=== TEST 27: an empty path parameter does not match
--- config
    location /api/ { chat_api; }
--- request
GET /api/chats//messages/search
--- error_code: 404
--- response_body_like: "code":"not_found"



=== TEST 28: a malformed chunked body closes the connection: no smuggling
--- config
    location /api/ { chat_api; }
    location = /secret { return 200 "SMUGGLED\n"; }
--- raw_request eval
"POST /api/auth/send-otp HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Transfer-Encoding: chunked\r
\r
GET /secret HTTP/1.1\r
Host: localhost\r
\r
"
--- response_headers
Connection: close
--- response_body_like: "code":"bad_request"
--- no_access_log
GET /secret
--- error_code: 400
--- no_error_log
[alert]
[emerg]



=== TEST 29: "Expect: 100-continue" with an oversized body gets no 100
--- config
    lingering_timeout 100ms;
    location /api/ { chat_api; chat_max_body_size 100; }
--- raw_request eval
"POST /api/auth/send-otp HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Content-Length: 5000\r
Expect: 100-continue\r
Connection: close\r
\r
"
--- raw_response_headers_like: ^HTTP/1.1 413 
--- response_body_like: "code":"payload_too_large"
--- error_code: 413



=== TEST 30: an error page that leads back into a chat location logs fine
--- http_config
    chat_redis 127.0.0.1:1;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_MONGO_PORT/";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location /api/ { chat_api; error_page 400 = /readyz; }
    location = /readyz { chat_readyz; }
--- raw_request eval
["POST /api/auth/send-otp HTTP/1.1\r
Host: localhost\r
Content-Type: application/json\r
Transfer-Encoding: chunked\r
X-Request-Id: redirected-1\r
Connection: close\r
\r
", "zz\r\n"]
--- raw_request_middle_delay: 0.2
--- error_code: 503
--- response_body_like: "status":"unavailable"
--- error_log eval
qr/\[warn\] .*chat: not ready, client: 127\.0\.0\.1, .*request_id: "redirected-1"$/
--- no_error_log
[alert]
[emerg]
exited on signal

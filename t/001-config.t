# Configuration: every mistake fails `nginx -t` with a message that names
# the directive and the problem.

use Test::Nginx::Socket 'no_plan';
use ChatTest;

no_shuffle();
run_tests();

__DATA__

=== TEST 1: a complete configuration starts
--- config
    location = /healthz { chat_healthz; }
    location /api/ { chat_api; }
--- request
GET /healthz
--- error_code: 200



=== TEST 2: chat_redis with a bad port
--- http_config
    chat_redis 127.0.0.1:notaport;
    chat_mongo_uri "mongodb://127.0.0.1:1/";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid address "127.0.0.1:notaport" in "chat_redis": invalid port/



=== TEST 3: chat_redis missing where a location needs it
--- http_config
    chat_mongo_uri "mongodb://127.0.0.1:1/";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_redis" is required when a location uses the chat module/



=== TEST 4: a malformed MongoDB URI
--- http_config
    chat_redis 127.0.0.1:6379;
    chat_mongo_uri "mongo://127.0.0.1/";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid URI in "chat_mongo_uri": Invalid URI Schema/



=== TEST 5: chat_mongo_uri missing
--- http_config
    chat_redis 127.0.0.1:6379;
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_mongo_uri" is required/



=== TEST 6: a JWT secret that is too short for HS256
--- http_config
    chat_redis 127.0.0.1:6379;
    chat_mongo_uri "mongodb://127.0.0.1:1/";
    chat_jwt_secret "short";
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_jwt_secret" of at least 32 bytes is required for "chat_jwt_algorithm HS256"/



=== TEST 7: an unknown JWT algorithm
--- http_config
    chat_redis 127.0.0.1:6379;
    chat_mongo_uri "mongodb://127.0.0.1:1/";
    chat_jwt_algorithm none;
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "none" in "chat_jwt_algorithm": expected one of HS256/



=== TEST 8: RS256 without key files
--- http_config
    chat_redis 127.0.0.1:6379;
    chat_mongo_uri "mongodb://127.0.0.1:1/";
    chat_jwt_algorithm RS256;
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_jwt_private_key" and "chat_jwt_public_key" are required for "chat_jwt_algorithm RS256"/



=== TEST 9: a key file that does not exist
--- http_config
    chat_redis 127.0.0.1:6379;
    chat_mongo_uri "mongodb://127.0.0.1:1/";
    chat_jwt_algorithm ES256;
    chat_jwt_private_key /nonexistent/key.pem;
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_jwt_private_key" cannot open "\/nonexistent\/key.pem"/



=== TEST 10: an unknown thread pool
--- http_config
    chat_redis 127.0.0.1:6379;
    chat_mongo_uri "mongodb://127.0.0.1:1/";
    chat_jwt_secret "test-secret-0123456789abcdef0123456789";
    chat_thread_pool nosuchpool;
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*unknown thread pool "nosuchpool"/



=== TEST 11: a pool size out of bounds
--- http_config eval
ChatTest::chat_http_config() . "chat_mongo_pool_size 0;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "0" in "chat_mongo_pool_size": must be between 1 and 1024/



=== TEST 12: two handlers in one location
--- config
    location /api/ { chat_api; chat_readyz; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_readyz" directive conflicts with another chat handler in this location/



=== TEST 13: a ready check that is not an HTTP URL
--- http_config eval
ChatTest::chat_http_config() . "chat_ready_check ftp://example.com/;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid URL "ftp:\/\/example.com\/" in "chat_ready_check": expected http:\/\/ or https:\/\//



=== TEST 14: a CORS origin without a scheme
--- http_config eval
ChatTest::chat_http_config()
--- config
    location /api/ { chat_api; chat_cors_origin example.com; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid origin "example.com" in "chat_cors_origin": expected "\*" or scheme:\/\/host\[:port\]/



=== TEST 15: a directive in the wrong context
--- config
    location /api/ { chat_api; chat_redis 127.0.0.1:6379; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_redis" directive is not allowed here/



=== TEST 16: healthz alone needs no back ends
--- http_config
--- config
    location = /healthz { chat_healthz; }
--- request
GET /healthz
--- error_code: 200



=== TEST 17: a key file that is not PEM
--- http_config
    chat_redis 127.0.0.1:6379;
    chat_mongo_uri "mongodb://127.0.0.1:1/";
    chat_jwt_algorithm ES256;
    chat_jwt_private_key ../html/not-a-key.txt;
--- user_files
>>> not-a-key.txt
this is not a key
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_jwt_private_key" key file ".*not-a-key.txt" is not a PEM file/



=== TEST 18: a group size out of bounds
--- http_config eval
ChatTest::chat_http_config() . "chat_group_max_size 1;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "1" in "chat_group_max_size": must be between 2 and 100000/



=== TEST 19: a one-time code that lives too long
--- http_config eval
ChatTest::chat_http_config() . "chat_otp_ttl 30m;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_otp_ttl" must be between 5m and 10m/



=== TEST 20: access tokens that live too long
--- http_config eval
ChatTest::chat_http_config() . "chat_jwt_ttl 7d;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_jwt_ttl" must be between 1m and 1d/



=== TEST 21: Twilio without its credentials
--- http_config eval
ChatTest::chat_http_config() . "chat_sms_provider twilio;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_sms_provider twilio" requires "chat_twilio_account_sid", "chat_twilio_auth_token" and "chat_twilio_from"/



=== TEST 22: an unknown SMS provider
--- http_config eval
ChatTest::chat_http_config() . "chat_sms_provider pigeon;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid value "pigeon" in "chat_sms_provider": expected "log" or "twilio"/



=== TEST 23: a media URL secret that is too short
--- http_config eval
ChatTest::chat_http_config() . "chat_media_url_secret short;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_media_url_secret" of at least 32 bytes is required/



=== TEST 24: an edit window that is not a time
--- http_config eval
ChatTest::chat_http_config() . "chat_edit_window soon;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_edit_window" directive invalid value/



=== TEST 25: an avatar URL host with a scheme
--- http_config eval
ChatTest::chat_http_config() . "chat_avatar_url_host https://cdn.example.com;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid host "https:\/\/cdn.example.com" in "chat_avatar_url_host": expected a lowercase host name, no scheme or path/



=== TEST 26: an avatar URL host with a path or capitals
--- http_config eval
ChatTest::chat_http_config() . "chat_avatar_url_host CDN.example.com/avatars;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid host "CDN.example.com\/avatars" in "chat_avatar_url_host"/



=== TEST 27: chat_redis_shards with a bad address
--- http_config eval
ChatTest::chat_http_config()
. "chat_redis_shards 127.0.0.1:6380 127.0.0.1:notaport;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*invalid address "127.0.0.1:notaport" in "chat_redis_shards": invalid port/



=== TEST 28: chat_redis_shards with one address twice
--- http_config eval
ChatTest::chat_http_config()
. "chat_redis_shards 127.0.0.1:6380 127.0.0.1:6381 127.0.0.1:6380;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"127.0.0.1:6380" is twice in "chat_redis_shards"/



=== TEST 29: chat_redis_shards with more than 32 servers
--- http_config eval
ChatTest::chat_http_config() . "chat_redis_shards"
. join("", map { " 127.0.0.1:" . (7000 + $_) } 1 .. 33) . ";"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*at most 32 servers in "chat_redis_shards"/



=== TEST 30: chat_redis_shards twice
--- http_config eval
ChatTest::chat_http_config()
. "chat_redis_shards 127.0.0.1:6380;\nchat_redis_shards 127.0.0.1:6381;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_redis_shards" directive is duplicate/



=== TEST 31: chat_memory_trim that is not a time
--- http_config eval
ChatTest::chat_http_config() . "chat_memory_trim often;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_memory_trim" directive invalid value/



=== TEST 32: chat_active_walk under a second
--- http_config eval
ChatTest::chat_http_config() . "chat_active_walk 500ms;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_active_walk" must be at least 1s/



=== TEST 33: chat_active_walk that is not a time
--- http_config eval
ChatTest::chat_http_config() . "chat_active_walk often;"
--- config
    location /api/ { chat_api; }
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_active_walk" directive invalid value/

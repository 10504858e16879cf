# Sign-in refuses what it must: a table of bad inputs, limits, and forged
# tokens, each with the answer a client would see.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use ChatAuth;
use ChatJWT;
use FakeHTTP;
use JSON::PP;
use HTTP::Tiny;
use MIME::Base64 ();
use Time::HiRes qw(sleep);

our $Twilio = FakeHTTP->new;
$Twilio->set_reply(201, '{"sid":"SM1","status":"queued"}');
$ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Twilio->port;
$ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

our $Secret = "test-secret-0123456789abcdef0123456789";

# an ES256 key pair for the blocks that switch the algorithm
use File::Temp qw(tempdir);
our $KeyDir = tempdir(CLEANUP => 1);
system("openssl ecparam -name prime256v1 -genkey -noout -out $KeyDir/es.key"
       . " 2>/dev/null && openssl ec -in $KeyDir/es.key -pubout"
       . " -out $KeyDir/es.pub 2>/dev/null") == 0 or die "openssl failed";
$ENV{TEST_NGINX_KEY_DIR} = $KeyDir;
our $Run = sprintf "%04d", $$ % 10000;
our $N = 0;
our %Tok;

# a fresh valid US mobile-or-fixed number for each use
sub phone { sprintf "+1628555%04d", ($Run * 7 + $N++) % 10000 }

sub post { my ($path, $data) = @_; "POST $path\n" . encode_json($data) }

sub redis_cli {
    system("redis-cli", "-p", $ENV{TEST_NGINX_REDIS_PORT}, @_) == 0
        or die "redis-cli @_ failed";
}

sub send_otp {
    my ($p) = @_;
    my $r = HTTP::Tiny->new->post(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth/send-otp",
        { headers => { 'Content-Type' => 'application/json' },
          content => encode_json({ phone => $p }) });
    return $r->{status};
}

sub dyn {
    my ($block, %v) = @_;
    for my $k (qw(request response_body_like error_code)) {
        $block->set_value($k, $v{$k}) if defined $v{$k};
    }
    $block->set_value("more_headers", "Content-Type: application/json\n"
                      . "Authorization: Bearer $v{token}")
        if defined $v{token};
}

# GET /api/auth/sessions with a token: "200 ok" (the user's list), or
# the status and the error's message
sub sessions_with {
    my ($tok) = @_;
    my $r = HTTP::Tiny->new->get(
        "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth/sessions",
        { headers => { Authorization => "Bearer $tok" } });
    return "$r->{status} " . ($r->{content} =~ /"message":"([^"]*)"/ ? $1
                              : $r->{content} =~ /"device":"errors"/ ? "ok"
                              : $r->{content});
}

sub user_token {
    $Tok{user} //= ChatAuth::sign_in($Twilio, phone(), 'errors');
    return $Tok{user}{accessToken};
}

add_block_preprocessor(sub {
    my $block = shift;

    my $extra = $block->extra_http_config // '';
    my $conf = ChatTest::chat_http_config() . q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
};

    # the block's own settings replace these defaults
    for my $d ("chat_otp_resend_delay 1s;", "chat_otp_ip_limit 1000;") {
        my ($name) = $d =~ /^(\S+)/;
        $conf .= "    $d\n" unless $extra =~ /\b$name\b/;
    }

    $block->set_value("http_config", $conf . $extra)
        unless defined $block->http_config;

    $block->set_value("config", "location /api/ { chat_api; }")
        unless defined $block->config;

    my $h = $block->more_headers // '';
    $block->set_value("more_headers", "Content-Type: application/json\n$h")
        unless $h =~ /Content-Type/;
});

no_shuffle();
run_tests();

__DATA__

=== TEST 1: send-otp: phone of the wrong type
--- request
POST /api/auth/send-otp
{"phone":14155550100}
--- response_body
{"error":{"code":"invalid_request","message":"phone must be a string","details":{"field":"phone"}}}
--- error_code: 400



=== TEST 2: send-otp: phone missing
--- request
POST /api/auth/send-otp
{"countryCode":"US"}
--- response_body
{"error":{"code":"invalid_request","message":"phone is required","details":{"field":"phone"}}}
--- error_code: 400



=== TEST 3: send-otp: an overlong phone
--- request eval
main::post("/api/auth/send-otp", { phone => "+1" . ("5" x 70) })
--- response_body
{"error":{"code":"invalid_request","message":"phone is too long","details":{"field":"phone"}}}
--- error_code: 400



=== TEST 4: send-otp: a calling code that does not exist
--- request
POST /api/auth/send-otp
{"phone":"+999 123 4567"}
--- response_body_like: ^\{"error":\{"code":"invalid_phone","message":"[^"]+"\}\}$
--- error_code: 422



=== TEST 5: send-otp: a national number without a country
--- request
POST /api/auth/send-otp
{"phone":"(415) 555-0100"}
--- response_body_like: "code":"invalid_phone"
--- error_code: 422



=== TEST 6: send-otp: too short for its country
--- request
POST /api/auth/send-otp
{"phone":"+44 7400 1234"}
--- response_body_like: "code":"invalid_phone"
--- error_code: 422



=== TEST 7: send-otp: a German landline cannot get SMS
--- request
POST /api/auth/send-otp
{"phone":"030 12345678","countryCode":"DE"}
--- response_body_like: "code":"phone_not_mobile"
--- error_code: 422



=== TEST 8: send-otp: a US toll-free number cannot get SMS
--- request
POST /api/auth/send-otp
{"phone":"+1 800 555 0199"}
--- response_body_like: "code":"phone_not_mobile"
--- error_code: 422



=== TEST 9: send-otp: an unknown country
--- request
POST /api/auth/send-otp
{"phone":"0612345678","countryCode":"ZZ"}
--- response_body_like: "code":"invalid_country"
--- error_code: 422



=== TEST 10: send-otp: countryCode of the wrong type
--- request
POST /api/auth/send-otp
{"phone":"0612345678","countryCode":33}
--- response_body_like: "message":"countryCode must be a string"
--- error_code: 400



=== TEST 11: verify-otp: code missing, short, numeric, not digits
--- request eval
[ main::post("/api/auth/verify-otp", { phone => "+16285550000" }),
  main::post("/api/auth/verify-otp", { phone => "+16285550000", code => "12345" }),
  main::post("/api/auth/verify-otp", { phone => "+16285550000", code => 123456 }),
  main::post("/api/auth/verify-otp", { phone => "+16285550000", code => "12a456" }),
  main::post("/api/auth/verify-otp", { phone => "+16285550000", code => "1234567" }) ]
--- more_headers
Content-Type: application/json
--- response_body eval
[ qq{{"error":{"code":"invalid_request","message":"code is required","details":{"field":"code"}}}\n},
  qq{{"error":{"code":"invalid_request","message":"code must be 6 digits","details":{"field":"code"}}}\n},
  qq{{"error":{"code":"invalid_request","message":"code must be a string","details":{"field":"code"}}}\n},
  qq{{"error":{"code":"invalid_request","message":"code must be 6 digits","details":{"field":"code"}}}\n},
  qq{{"error":{"code":"invalid_request","message":"code is too long","details":{"field":"code"}}}\n} ]
--- error_code eval
[400, 400, 400, 400, 400]



=== TEST 12: verify-otp: no code was ever sent
--- request eval
main::post("/api/auth/verify-otp", { phone => main::phone(), code => "123456" })
--- response_body
{"error":{"code":"code_expired","message":"no valid code for this number, request a new one"}}
--- error_code: 410



=== TEST 13: five wrong codes void the code: the right one then fails
--- init
my $p = main::phone();
my $st = main::send_otp($p);
die "send-otp $st" unless $st == 200;
my $code = ChatAuth::code_for($main::Twilio, $p);
my $wrong = sprintf "%06d", ($code + 1) % 1000000;
main::dyn($block,
    request => [ (map { main::post("/api/auth/verify-otp", { phone => $p, code => $wrong }) } 1 .. 5),
                 main::post("/api/auth/verify-otp", { phone => $p, code => "$code" }) ],
    response_body_like => [ (map { qr/"code":"invalid_code".*"attemptsLeft":$_\}/ } 4, 3, 2, 1, 0),
                            qr/"code":"code_expired"/ ],
    error_code => [ 422, 422, 422, 422, 422, 410 ]);
--- request
GET /placeholder



=== TEST 14: an expired code is refused
--- init
my $p = main::phone();
my $st = main::send_otp($p);
die "send-otp $st" unless $st == 200;
# the 5 minutes pass: Redis lets the code go, as it would at its TTL
main::redis_cli("PEXPIRE", "otp:$p", 1);
Time::HiRes::sleep(0.05);
main::dyn($block, request => main::post("/api/auth/verify-otp",
    { phone => $p, code => ChatAuth::code_for($main::Twilio, $p) }));
--- request
GET /placeholder
--- response_body_like: "code":"code_expired"
--- error_code: 410



=== TEST 15: a resend before the delay: 429 with Retry-After
--- extra_http_config
    chat_otp_resend_delay 30s;
--- init
my $p = main::phone();
main::dyn($block, request => [ map { main::post("/api/auth/send-otp", { phone => $p }) } 1, 2 ],
    response_body_like => [ qr/"retryAfter":30\}$/,
        qr/^\{"error":\{"code":"rate_limited","message":"too many requests, try again later","details":\{"retryAfter":(30|29)\}\}\}$/ ],
    error_code => [200, 429]);
--- request
GET /placeholder
--- raw_response_headers_like eval
[ qr/^HTTP\/1.1 200/, qr/Retry-After: (30|29)\r\n/ ]



=== TEST 16: too many requests from one IP
--- extra_http_config
    chat_otp_ip_limit 3;
--- init
main::redis_cli("DEL", "rl:otp:ip:127.0.0.1");
main::dyn($block, request => [ map { main::post("/api/auth/send-otp", { phone => main::phone() }) } 1 .. 4 ],
    error_code => [200, 200, 200, 429],
    response_body_like => [ qr/"success":true/, qr/"success":true/, qr/"success":true/,
                            qr/"code":"rate_limited"/ ]);
--- request
GET /placeholder
--- raw_response_headers_like eval
[ qr/^HTTP/, qr/^HTTP/, qr/^HTTP/, qr/Retry-After: \d+\r\n/ ]



=== TEST 17: the daily cap of one number
--- extra_http_config
    chat_otp_daily_limit 2;
--- init
my $p = main::phone();
my @st;
for (1 .. 2) {
    push @st, main::send_otp($p);
    Time::HiRes::sleep(2.1);    # past the resend delay (1 s, then 2 s)
}
die "first sends: @st" unless "@st" eq "200 200";
main::dyn($block, request => main::post("/api/auth/send-otp", { phone => $p }));
--- request
GET /placeholder
--- response_body_like: "code":"rate_limited"
--- error_code: 429



=== TEST 18: an SMS that fails is not counted against the user
--- init
my $p = main::phone();
$main::Twilio->set_reply(500, '{"code":20500,"message":"Internal Server Error"}');
my $st = main::send_otp($p);
die "the failed send gave $st" unless $st == 503;
$main::Twilio->set_reply(201, '{"sid":"SM1","status":"queued"}');
main::dyn($block, request => main::post("/api/auth/send-otp", { phone => $p }));
--- request
GET /placeholder
--- response_body_like: "success":true
--- error_code: 200
--- error_log
chat sms: twilio failed
--- no_error_log
[alert]



=== TEST 19: a number the provider refuses: 502, and the number may retry
--- init
my $p = main::phone();
$main::Twilio->set_reply(400, '{"code":21211,"message":"Invalid To Phone Number"}');
my $st = main::send_otp($p);
die "the refused send gave $st" unless $st == 502;
$main::Twilio->set_reply(201, '{"sid":"SM1","status":"queued"}');
main::dyn($block, request => main::post("/api/auth/send-otp", { phone => $p }));
--- request
GET /placeholder
--- response_body_like: "success":true
--- error_code: 200
--- error_log
chat sms: twilio refused
--- no_error_log
[alert]



=== TEST 20: a protected route without Authorization
--- request
GET /api/auth/sessions
--- response_headers
WWW-Authenticate: Bearer
--- response_body_like: "code":"unauthorized"
--- error_code: 401



=== TEST 21: not a bearer token
--- more_headers
Authorization: Basic dXNlcjpwYXNz
--- request
GET /api/auth/sessions
--- response_headers
WWW-Authenticate: Bearer error="invalid_token"
--- response_body_like: "code":"invalid_token"
--- error_code: 401



=== TEST 22: a tampered token
--- init
main::dyn($block, token => ChatJWT::tamper(main::user_token()));
--- request
GET /api/auth/sessions
--- response_headers
WWW-Authenticate: Bearer error="invalid_token"
--- response_body
{"error":{"code":"invalid_token","message":"bad signature"}}
--- error_code: 401



=== TEST 23: an alg:none token
--- init
main::dyn($block, token => ChatJWT::none({ sub => "0123456789abcdef01234567",
    sid => "0123456789abcdef01234567", jti => "x", typ => "access", iss => "ngx_chat_module", aud => "chat",
    iat => time() - 10, exp => time() + 600 }));
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"algorithm not allowed"}}
--- error_code: 401



=== TEST 24: an expired token, signed with the right key
--- init
main::dyn($block, token => ChatJWT::hs256($main::Secret, undef, {
    sub => "0123456789abcdef01234567", sid => "0123456789abcdef01234567",
    jti => "expired1", typ => "access", iss => "ngx_chat_module",
    aud => "chat", iat => time() - 7200,
    exp => time() - 3600 }));
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"token expired"}}
--- error_code: 401



=== TEST 25: a token signed with another key
--- init
main::dyn($block, token => ChatJWT::hs256("another-secret-0123456789abcdef0123", undef, {
    sub => "0123456789abcdef01234567", sid => "0123456789abcdef01234567",
    jti => "other1", typ => "access", iss => "ngx_chat_module", aud => "chat",
    iat => time(), exp => time() + 600 }));
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"bad signature"}}
--- error_code: 401



=== TEST 26: a valid signature on a session that never existed
--- init
main::dyn($block, token => ChatJWT::hs256($main::Secret, undef, {
    sub => "0123456789abcdef01234567", sid => "0123456789abcdef01234567",
    jti => "ghost1", typ => "access", iss => "ngx_chat_module", aud => "chat",
    iat => time(), exp => time() + 600 }));
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"the token was revoked"}}
--- error_code: 401



=== TEST 27: a token of one user on another user's session is refused
--- init
my $a = ChatAuth::sign_in($main::Twilio, main::phone(), 'a');
my $b = ChatAuth::sign_in($main::Twilio, main::phone(), 'b');
my $ca = JSON::PP::decode_json(MIME::Base64::decode_base64url((split /\./, $a->{accessToken})[1]));
my $cb = JSON::PP::decode_json(MIME::Base64::decode_base64url((split /\./, $b->{accessToken})[1]));
# signed with the real key: only the session owner check can catch it
$ca->{sid} = $cb->{sid};
main::dyn($block, token => ChatJWT::hs256($main::Secret, undef, $ca));
--- request
GET /api/auth/sessions
--- response_body_like: "message":"the token was revoked"
--- error_code: 401



=== TEST 28: refresh-token: malformed, unknown, of the wrong type
--- request eval
[ main::post("/api/auth/refresh-token", { refreshToken => "nope" }),
  main::post("/api/auth/refresh-token", { refreshToken => "0123456789abcdef01234567." . ("A" x 43) }),
  main::post("/api/auth/refresh-token", { refreshToken => 42 }),
  main::post("/api/auth/refresh-token", {}) ]
--- more_headers
Content-Type: application/json
--- response_body_like eval
[ qr/"code":"invalid_refresh_token"/, qr/"code":"invalid_refresh_token"/,
  qr/"message":"refreshToken must be a string"/, qr/"message":"refreshToken is required"/ ]
--- error_code eval
[401, 401, 400, 400]



=== TEST 29: complete-profile: every bad field
--- init
my $t = main::user_token();
my @bad = (
    [ {}, "name is required" ],
    [ { name => "" }, "name must not be empty" ],
    [ { name => "   " }, "name must not be blank" ],
    [ { name => "x" x 65 }, "name is too long" ],
    [ { name => "a\x{7}b" }, "name has control characters" ],
    [ { name => "Ann", bio => "y" x 501 }, "bio is too long" ],
    [ { name => "Ann", bio => "tab\there" }, "bio has control characters" ],
    [ { name => "Ann", username => "ab" }, "username must be 3 to 32" ],
    [ { name => "Ann", username => "1abc" }, "username must be 3 to 32" ],
    [ { name => "Ann", username => "an n" }, "username must be 3 to 32" ],
    [ { name => "Ann", username => "a" x 33 }, "username is too long" ],
    [ { name => "Ann", avatar => "javascript:alert(1)" }, "avatar must be a media id or a URL" ],
    [ { name => ["Ann"] }, "name must be a string" ],
);
main::dyn($block, token => $t,
    request => [ map { main::post("/api/auth/complete-profile", $_->[0]) } @bad ],
    response_body_like => [ map { qr/^\{"error":\{"code":"invalid_request","message":"\Q$_->[1]\E/ } @bad ],
    error_code => [ map { 400 } @bad ]);
--- request
GET /placeholder



=== TEST 30: a wrong HTTP method on an auth route
--- request
GET /api/auth/verify-otp
--- response_headers
Allow: POST, OPTIONS
--- error_code: 405



=== TEST 31: ES256 by directive: tokens are ES256 and work
--- http_config
    chat_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_MONGO_PORT/";
    chat_mongo_database chat_test;
    chat_jwt_algorithm ES256;
    chat_jwt_private_key $TEST_NGINX_KEY_DIR/es.key;
    chat_jwt_public_key $TEST_NGINX_KEY_DIR/es.pub;
    chat_jwt_issuer https://chat.test;
    chat_jwt_audience chat-app;
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
--- init
my $tok = ChatAuth::sign_in($main::Twilio, main::phone(), 'es256');
my ($h, $c) = map { JSON::PP::decode_json(MIME::Base64::decode_base64url($_)) }
              (split /\./, $tok->{accessToken})[0, 1];
die "alg $h->{alg}" unless $h->{alg} eq 'ES256';
die "iss/aud" unless $c->{iss} eq 'https://chat.test' && $c->{aud} eq 'chat-app';
$main::Tok{es} = $tok;
main::dyn($block, token => $tok->{accessToken});
--- request
GET /api/auth/sessions
--- response_body_like: "device":"es256"
--- error_code: 200



=== TEST 32: ES256 server: an HS256 token made with its public key is refused
--- http_config
    chat_redis 127.0.0.1:$TEST_NGINX_REDIS_PORT;
    chat_mongo_uri "mongodb://127.0.0.1:$TEST_NGINX_MONGO_PORT/";
    chat_mongo_database chat_test;
    chat_jwt_algorithm ES256;
    chat_jwt_private_key $TEST_NGINX_KEY_DIR/es.key;
    chat_jwt_public_key $TEST_NGINX_KEY_DIR/es.pub;
    chat_jwt_issuer https://chat.test;
    chat_jwt_audience chat-app;
--- init
my $pub = do { local $/; open my $f, '<', "$main::KeyDir/es.pub" or die; <$f> };
my $c = JSON::PP::decode_json(MIME::Base64::decode_base64url(
            (split /\./, $main::Tok{es}{accessToken})[1]));
main::dyn($block, token => ChatJWT::hs256($pub, undef, $c));
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"algorithm not allowed"}}
--- error_code: 401



=== TEST 33: 128 emoji as a device name come back whole
--- init
my $p = main::phone();
die "send" unless main::send_otp($p) == 200;
main::dyn($block, request => main::post("/api/auth/verify-otp",
    { phone => $p, code => "" . ChatAuth::code_for($main::Twilio, $p),
      device => "\x{1F600}" x 128 }));
--- request
GET /placeholder
--- response_body_filters eval
sub { $main::Tok{emoji} = JSON::PP::decode_json($_[0]); $_[0] }
--- error_code: 200
--- response_body_like: "isNewUser":true



=== TEST 34: ... listed with all 128
--- init
main::dyn($block, token => $main::Tok{emoji}{accessToken},
    response_body_like => qr/"device":"(\xf0\x9f\x98\x80){128}"/);
--- request
GET /api/auth/sessions
--- error_code: 200



=== TEST 35: HS512 by directive: tokens are HS512 and work
--- extra_http_config
    chat_jwt_algorithm HS512;
--- init
my $tok = ChatAuth::sign_in($main::Twilio, main::phone(), 'hs512');
my ($h) = map { JSON::PP::decode_json(MIME::Base64::decode_base64url($_)) }
          (split /\./, $tok->{accessToken})[0];
die "alg $h->{alg}" unless $h->{alg} eq 'HS512';
# 64 bytes of HMAC: 86 characters of base64url
die "sig" unless length((split /\./, $tok->{accessToken})[2]) == 86;
$main::Tok{hs512} = $tok;
main::dyn($block, token => $tok->{accessToken});
--- request
GET /api/auth/sessions
--- response_body_like: "device":"hs512"
--- error_code: 200



=== TEST 36: HS512 server: the same token tampered with is refused
--- extra_http_config
    chat_jwt_algorithm HS512;
--- init
main::dyn($block, token => ChatJWT::tamper($main::Tok{hs512}{accessToken}));
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"bad signature"}}
--- error_code: 401



=== TEST 37: HS512 server: an HS256 token with the same secret is refused
--- extra_http_config
    chat_jwt_algorithm HS512;
--- init
my $c = JSON::PP::decode_json(MIME::Base64::decode_base64url(
            (split /\./, $main::Tok{hs512}{accessToken})[1]));
main::dyn($block, token => ChatJWT::hs256($main::Secret, undef, $c));
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"algorithm not allowed"}}
--- error_code: 401



=== TEST 38: HS512 server: its signature cut short, or one bit off, is refused
--- extra_http_config
    chat_jwt_algorithm HS512;
--- init
my ($h, $c, $s) = split /\./, $main::Tok{hs512}{accessToken};
# the last character carries 2 bits of the HMAC and 4 unused ones: a
# different character with the same HMAC bits is not the canonical form
my $last = substr $s, -1;
my $alt = ($last =~ /[A-Za-z0-9]/ && $last ne '9') ? chr(ord($last) + 1) : 'A';
my %t = (short => "$h.$c." . substr($s, 0, 84),
         bits => "$h.$c." . substr($s, 0, 85) . $alt);
$main::Tok{bad512} = \%t;
main::dyn($block, token => $t{short});
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"bad signature"}}
--- error_code: 401



=== TEST 39: ... and the one with its last character changed
--- extra_http_config
    chat_jwt_algorithm HS512;
--- init
main::dyn($block, token => $main::Tok{bad512}{bits});
--- request
GET /api/auth/sessions
--- response_body
{"error":{"code":"invalid_token","message":"bad signature"}}
--- error_code: 401



=== TEST 40: HS256 (the default): a valid token still works after them
--- init
main::dyn($block, token => main::user_token());
--- request
GET /api/auth/sessions
--- response_body_like: "device":"errors"
--- error_code: 200



=== TEST 41: HS384 by directive: tokens are HS384 (48 bytes of HMAC) and work
--- extra_http_config
    chat_jwt_algorithm HS384;
--- init
my $tok = ChatAuth::sign_in($main::Twilio, main::phone(), 'hs384');
my ($h, $c, $s) = split /\./, $tok->{accessToken};
$h = JSON::PP::decode_json(MIME::Base64::decode_base64url($h));
die "alg $h->{alg}" unless $h->{alg} eq 'HS384';
die "sig" unless length($s) == 64;
main::dyn($block, token => $tok->{accessToken});
--- request
GET /api/auth/sessions
--- response_body_like: "device":"hs384"
--- error_code: 200



=== TEST 42: after valid tokens (their header remembered by the worker), a critical header extension, alg:none and HS384 (a header of the same length) are refused, and the valid token still works
--- init
my $ok = main::user_token();
my $get = \&main::sessions_with;
my @seen = map { $get->($ok) } 1 .. 4;
my %claims = (sub => "0123456789abcdef01234567",
    sid => "0123456789abcdef01234567", jti => "crit1", typ => "access",
    iss => "ngx_chat_module", aud => "chat", iat => time() - 10,
    exp => time() + 600);
# the same length as the remembered header, one byte apart
my $h384 = ChatJWT::hs256($main::Secret, { alg => "HS384" }, \%claims);
die "header lengths" unless length((split /\./, $h384)[0])
                            == length((split /\./, $ok)[0]);
push @seen, $get->(ChatJWT::hs256($main::Secret, { crit => [ "exp" ] },
                                  \%claims)),
            $get->(ChatJWT::none(\%claims)), $get->($h384);
$main::Got = join ", ", @seen;
main::dyn($block, token => $ok);
--- request
GET /api/auth/sessions
--- response_body_filters eval
sub { $_[0] =~ /"device":"errors"/ ? "$main::Got\n" : $_[0] }
--- response_body
200 ok, 200 ok, 200 ok, 200 ok, 401 unsupported token header, 401 algorithm not allowed, 401 algorithm not allowed
--- error_code: 200
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 43: claims the in-place reader leaves to jansson (an escape, a real, an audience array, spaces, a UTF-8 name) decide as before; a name twice, a leading zero, an object after the claims are malformed
--- init
# a user's own token's claims, written out by hand and signed with the
# server's secret, so that only the claims' text differs
my $ok = main::user_token();
my $c = JSON::PP::decode_json(MIME::Base64::decode_base64url((split /\./, $ok)[1]));
my $h = (split /\./, $ok)[0];
my $sign = sub {
    my ($text) = @_;
    my $in = "$h." . MIME::Base64::encode_base64url($text);
    return "$in." . MIME::Base64::encode_base64url(
                        Digest::SHA::hmac_sha256($in, $main::Secret));
};
my $get = \&main::sessions_with;
my $rest = qq("sub":"$c->{sub}","sid":"$c->{sid}","jti":"$c->{jti}","iss":"$c->{iss}","iat":$c->{iat});
my @seen = map { $get->($sign->($_)) } (
    # read in place: ours, and with whitespace everywhere
    qq({"typ":"access","aud":"$c->{aud}","exp":$c->{exp},$rest}),
    qq( {\n\t"typ" : "access" ,"aud":"$c->{aud}", "exp": $c->{exp} ,$rest , "x":true,"y":null,"z":false}\r\n),
    # jansson: an escape, a real, an array, a name in UTF-8
    qq({"typ":"acc\\u0065ss","aud":"$c->{aud}","exp":$c->{exp},$rest}),
    qq({"typ":"access","aud":"$c->{aud}","exp":$c->{exp}.5,$rest}),
    qq({"typ":"access","aud":["other","$c->{aud}"],"exp":$c->{exp},$rest}),
    qq({"typ":"access","aud":"$c->{aud}","exp":$c->{exp},$rest,"n\xc3\xa9":1}),
    # refused: the wrong audience among many; a name twice; a leading
    # zero; a 19-digit number; something after the object; not an object
    qq({"typ":"access","aud":["other"],"exp":$c->{exp},$rest}),
    qq({"typ":"access","typ":"access","aud":"$c->{aud}","exp":$c->{exp},$rest}),
    qq({"typ":"access","aud":"$c->{aud}","exp":0$c->{exp},$rest}),
    qq({"typ":"access","aud":"$c->{aud}","exp":$c->{exp},$rest,"big":1234567890123456789012}),
    qq({"typ":"access","aud":"$c->{aud}","exp":$c->{exp},$rest}{}),
    qq(["typ","access"]),
    # a value the reader stops at, and one it does not know
    qq({"typ":"access","aud":"$c->{aud}","exp":$c->{exp}x,$rest}),
    qq({"typ":"access","aud":"$c->{aud}","exp":$c->{exp},$rest,"o":{"a":1}}),
    # "exp" as a string, "typ" a number
    qq({"typ":"access","aud":"$c->{aud}","exp":"$c->{exp}",$rest}),
    qq({"typ":1,"aud":"$c->{aud}","exp":$c->{exp},$rest}),
);
$main::Got = join ", ", @seen;
main::dyn($block, token => $ok);
--- request
GET /api/auth/sessions
--- response_body_filters eval
sub { $_[0] =~ /"device":"errors"/ ? "$main::Got\n" : $_[0] }
--- response_body
200 ok, 200 ok, 200 ok, 200 ok, 200 ok, 200 ok, 401 wrong audience, 401 malformed token, 401 malformed token, 401 malformed token, 401 malformed token, 401 malformed token, 401 malformed token, 200 ok, 401 malformed token, 401 not an access token
--- error_code: 200
--- no_error_log
[error]
[alert]
[emerg]

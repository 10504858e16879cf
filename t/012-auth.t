# Phone sign-in end to end over HTTP, against real Redis and FerretDB, with
# a fake Twilio that records every SMS: the code it got is the code the
# test types in.  Blocks run in order and share what they learned.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use FakeHTTP;
use ChatAuth;
use JSON::PP;
use HTTP::Tiny;
use MIME::Base64 ();
use utf8;
use Time::HiRes qw(sleep);

our $Twilio = FakeHTTP->new;
$Twilio->set_reply(201, '{"sid":"SM00000000000000000000000000000000",'
                        . '"status":"queued"}');
$ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Twilio->port;

# numbers of this run only: FerretDB keeps users between runs
our $Run = sprintf "%04d", $$ % 10000;
our %Phone = (alice => "+1415555$Run", bob => "+1650555$Run");
$Phone{alice} =~ s/^\+14155550(\d)/+14155551$1/;

our (%Last, %Tok);

sub json_of { decode_json($_[0]) }

sub code_for { ChatAuth::code_for($Twilio, $_[0]) }

sub keep { my ($name) = @_; sub { $Last{$name} = $_[0]; $_[0] } }

sub body {
    my ($path, $data) = @_;
    return "POST $path\n" . encode_json($data);
}

sub bearer { "Authorization: Bearer " . $Tok{$_[0]}{accessToken} }

sub sid_of { $Tok{$_[0]}{refreshToken} =~ s/\..*//r }

# Test::Nginx reads every block before it runs the first, so what depends
# on an earlier answer (a code, a token) is filled in by --- init, which
# runs just before the block's request.
sub dyn {
    my ($block, %v) = @_;
    $block->set_value("request", $v{request}) if defined $v{request};
    $block->set_value("more_headers", "Content-Type: application/json\n"
                      . "Authorization: Bearer $Tok{$v{bearer}}{accessToken}")
        if defined $v{bearer};
    $block->set_value("response_body_like", $v{like}) if defined $v{like};
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", ChatTest::chat_http_config() . q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_resend_delay 1s;
    chat_otp_ip_limit 1000;
}) unless defined $block->http_config;

    $block->set_value("config", "location /api/ { chat_api; }")
        unless defined $block->config;

    my $h = $block->more_headers // '';
    $block->set_value("more_headers",
                      "Content-Type: application/json\n$h")
        unless $h =~ /Content-Type/;
});

# Bob signs in on two devices, for the blocks that need a second user
sub sign_in_bob {
    $Tok{bob} = ChatAuth::sign_in($Twilio, $Phone{bob}, 'bob');
    sleep 1.1;    # the resend delay
    $Tok{bob2} = ChatAuth::sign_in($Twilio, $Phone{bob}, 'bob2');
}

$ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

no_shuffle();
run_tests();

# what the fake Twilio got for the first sign-in
my ($first) = $Twilio->requests;
my %form = FakeHTTP::parse_form($first->{body} // '');
is($first->{method}, 'POST', 'Twilio: a POST');
is($first->{path}, '/2010-04-01/Accounts/ACtest/Messages.json',
   'Twilio: the Messages resource of the account');
is($first->{headers}{authorization}, 'Basic QUN0ZXN0OnNlY3JldA==',
   'Twilio: basic auth with the account SID and token');
is($form{To}, $Phone{alice}, 'Twilio: to the number, in E.164');
is($form{From}, '+15005550006', 'Twilio: from the configured sender');
like($form{Body}, qr/^\d{6} is your verification code\. It expires in 5 minutes\.$/,
     'Twilio: a 6-digit code and its lifetime');

__DATA__

=== TEST 1: send-otp: the code goes to Twilio, the answer tells nothing more
--- request eval
main::body("/api/auth/send-otp", { phone => $main::Phone{alice} })
--- response_body_like eval
qr/^\{"success":true,"phone":"\Q$main::Phone{alice}\E","channel":"sms","expiresIn":300,"retryAfter":1\}$/
--- error_code: 200



=== TEST 2: a wrong code is refused and counts an attempt
--- init
main::dyn($block, request => do {
my $c = main::code_for($main::Phone{alice});
main::body("/api/auth/verify-otp", { phone => $main::Phone{alice},
    code => sprintf("%06d", ($c + 1) % 1000000) })
});
--- request
GET /placeholder
--- response_body_like: ^\{"error":\{"code":"invalid_code","message":"the code is not correct","details":\{"attemptsLeft":4\}\}\}$
--- error_code: 422



=== TEST 3: the right code signs a new user in
--- init
main::dyn($block, request => do {
main::body("/api/auth/verify-otp", { phone => $main::Phone{alice},
    code => main::code_for($main::Phone{alice}),
    device => { name => "Alice's phone", platform => "android" } })
});
--- request
GET /placeholder
--- response_body_filters eval
sub { $main::Tok{alice} = main::json_of($_[0]); $_[0] }
--- response_body_like eval
qr/^\{"user":\{"id":"[0-9a-f]{24}","phone":"\Q$main::Phone{alice}\E","createdAt":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","updatedAt":"[^"]+"\},"isNewUser":true,"accessToken":"[\w-]+\.[\w-]+\.[\w-]+","refreshToken":"[0-9a-f]{24}\.[\w-]{43}","expiresIn":900,"tokenType":"Bearer"\}$/
--- error_code: 200



=== TEST 4: a code works only once
--- init
main::dyn($block, request => do {
main::body("/api/auth/verify-otp", { phone => $main::Phone{alice},
    code => main::code_for($main::Phone{alice}) })
});
--- request
GET /placeholder
--- response_body_like: "code":"code_expired"
--- error_code: 410



=== TEST 5: the access token opens the session list, this device marked
--- init
main::dyn($block, bearer => "alice",
    like => do {
my $sid = main::sid_of("alice");
qr/^\{"items":\[\{"id":"$sid","current":true,"device":"Alice's phone","ip":"127\.0\.0\.1","createdAt":"[^"]+","lastUsedAt":"[^"]+"\}\]\}$/
});
--- request
GET /api/auth/sessions
--- response_body_like: placeholder
--- error_code: 200



=== TEST 6: complete-profile stores the profile
--- init
main::dyn($block, bearer => "alice");
--- request eval
main::body("/api/auth/complete-profile", { name => "Alice Ñúñez",
    bio => "hello\nthere", username => "Alice_$main::Run" })
--- response_body_like eval
qr/^\{"user":\{"id":"[0-9a-f]{24}","phone":"\Q$main::Phone{alice}\E",.*"name":"Alice \xc3\x91\xc3\xba\xc3\xb1ez","username":"Alice_$main::Run","privacy":\{"lastSeen":"everyone","online":"everyone","profilePhoto":"everyone","about":"everyone","readReceipts":"everyone","groups":"everyone","phone":"contacts","searchable":true\},"notifications":\{"preview":false\}\}\}$/
--- error_code: 200



=== TEST 7: refresh rotates the refresh token
--- init
main::dyn($block, request => do {
main::body("/api/auth/refresh-token",
           { refreshToken => $main::Tok{alice}{refreshToken} })
});
--- request
GET /placeholder
--- response_body_filters eval
sub { $main::Tok{alice2} = main::json_of($_[0]); $_[0] }
--- response_body_like: ^\{"accessToken":"[\w-]+\.[\w-]+\.[\w-]+","refreshToken":"[0-9a-f]{24}\.[\w-]{43}","expiresIn":900,"tokenType":"Bearer"\}$
--- error_code: 200



=== TEST 8: the new access token works
--- init
main::dyn($block, bearer => "alice2");
--- request
GET /api/auth/sessions
--- response_body_like: "current":true
--- error_code: 200



=== TEST 9: replaying the old refresh token revokes the whole session
--- init
main::dyn($block, request => do {
main::body("/api/auth/refresh-token",
           { refreshToken => $main::Tok{alice}{refreshToken} })
});
--- request
GET /placeholder
--- response_body_like: ^\{"error":\{"code":"refresh_token_reused",
--- error_code: 401
--- error_log
chat: refresh token reused, session
--- no_error_log
[error]
[alert]



=== TEST 10: so the newest refresh token is dead too
--- init
main::dyn($block, request => do {
main::body("/api/auth/refresh-token",
           { refreshToken => $main::Tok{alice2}{refreshToken} })
});
--- request
GET /placeholder
--- response_body_like: "code":"invalid_refresh_token"
--- error_code: 401



=== TEST 11: and so is its access token
--- init
main::dyn($block, bearer => "alice2");
--- request
GET /api/auth/sessions
--- response_headers
WWW-Authenticate: Bearer error="invalid_token"
--- response_body
{"error":{"code":"invalid_token","message":"the token was revoked"}}
--- error_code: 401



=== TEST 12: signing in again: the same user, not a new one
--- request eval
main::body("/api/auth/send-otp", { phone => $main::Phone{alice} =~ s/^\+1(\d{3})(\d{3})(\d{4})$/($1) $2-$3/r, countryCode => "US" })
--- response_body_like eval
qr/^\{"success":true,"phone":"\Q$main::Phone{alice}\E","channel":"sms","expiresIn":300,"retryAfter":2\}$/
--- error_code: 200
--- wait: 0.1



=== TEST 13: verify: isNewUser false, the profile is there
--- init
main::dyn($block, request => do {
main::body("/api/auth/verify-otp", { phone => $main::Phone{alice},
    code => main::code_for($main::Phone{alice}), device => "Alice's tablet" })
});
--- request
GET /placeholder
--- response_body_filters eval
sub { $main::Tok{alice3} = main::json_of($_[0]); $_[0] }
--- response_body_like eval
qr/"username":"Alice_$main::Run".*"isNewUser":false/
--- error_code: 200



=== TEST 14: the same username for another user is taken, whatever its case
--- init
main::sign_in_bob();
main::dyn($block, bearer => "bob");
--- request eval
main::body("/api/auth/complete-profile",
           { name => "Bob", username => "alice_$main::Run" })
--- response_body
{"error":{"code":"username_taken","message":"this username is taken"}}
--- error_code: 409



=== TEST 15: logout revokes the session and its access token
--- init
main::dyn($block, bearer => "alice3");
--- request
POST /api/auth/logout
--- response_body
{"success":true}
--- error_code: 200



=== TEST 16: the logged-out access token is refused
--- init
# the token's own id is refused until it expires, besides its session
my ($c) = JSON::PP::decode_json(MIME::Base64::decode_base64url(
              (split /\./, $main::Tok{alice3}{accessToken})[1]));
my $ttl = `redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} TTL 'jti:{$c->{sid}}:$c->{jti}'`;
die "jti:{$c->{sid}}:$c->{jti} TTL $ttl" unless $ttl > 800 && $ttl <= 930;
main::dyn($block, bearer => "alice3");
--- request
GET /api/auth/sessions
--- response_body_like: "message":"the token was revoked"
--- error_code: 401



=== TEST 17: a user revokes another of their devices
--- init
main::dyn($block, bearer => "bob",
    request => do {
"DELETE /api/auth/sessions/" . main::sid_of("bob2")
});
--- request
GET /placeholder
--- response_body
{"success":true}
--- error_code: 200



=== TEST 18: that device's tokens are refused, the remaining one is listed
--- init
my $http = HTTP::Tiny->new;
my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth";
my $r = $http->get("$base/sessions", { headers => { Authorization =>
    "Bearer $main::Tok{bob2}{accessToken}" } });
die "bob2's access token: $r->{status}" unless $r->{status} == 401;
$r = $http->post("$base/refresh-token", { headers => { 'Content-Type' => 'application/json' },
    content => JSON::PP::encode_json({ refreshToken => $main::Tok{bob2}{refreshToken} }) });
die "bob2's refresh token: $r->{status}" unless $r->{status} == 401;
my $sid = main::sid_of("bob");
main::dyn($block, bearer => "bob",
    like => qr/^\{"items":\[\{"id":"$sid","current":true,"device":"bob",[^\]]*\}\]\}$/);
--- request
GET /api/auth/sessions
--- response_body_like: placeholder
--- error_code: 200



=== TEST 19: nobody revokes the sessions of somebody else
--- init
main::dyn($block, bearer => "bob",
    request => do {
"DELETE /api/auth/sessions/" . main::sid_of("alice3")
});
--- request
GET /placeholder
--- response_body_like: "code":"not_found"
--- error_code: 404



=== TEST 20: the calls' routes are behind the gate too (bob has none)
--- init
main::dyn($block, bearer => "bob");
--- request
GET /api/calls/history
--- response_body
{"items":[]}
--- error_code: 200



=== TEST 21: a session Redis lost is still listed, and its tokens work
--- init
sleep 2.2;    # past the resend delays of bob's number
$main::Tok{bob3} = ChatAuth::sign_in($main::Twilio, $main::Phone{bob}, 'bob3');
my $sid = main::sid_of("bob3");
# Redis loses the session's key (evicted, flushed): MongoDB holds the record
system("redis-cli", "-p", $ENV{TEST_NGINX_REDIS_PORT}, "DEL", "sess:{$sid}") == 0
    or die "redis-cli";
my $mine = main::sid_of("bob");
main::dyn($block, bearer => "bob3",
    like => qr/^\{"items":\[\{"id":"$sid","current":true,"device":"bob3",[^\]]*\},\{"id":"$mine","current":false,"device":"bob",[^\]]*\}\]\}$/);
--- request
GET /api/auth/sessions
--- response_body_like: placeholder
--- error_code: 200



=== TEST 22: a session idle past chat_refresh_ttl is neither listed nor refreshed
--- http_config eval
ChatTest::chat_http_config() . q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_resend_delay 1s;
    chat_otp_ip_limit 1000;
    chat_refresh_ttl 2s;
}
--- init
sleep 4.5;    # past the resend delays of bob's number
$main::Tok{bob4} = ChatAuth::sign_in($main::Twilio, $main::Phone{bob}, 'bob4');
sleep 2.5;
my $r = HTTP::Tiny->new->post(
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth/refresh-token",
    { headers => { 'Content-Type' => 'application/json' },
      content => JSON::PP::encode_json({ refreshToken => $main::Tok{bob4}{refreshToken} }) });
die "bob4's idle refresh token: $r->{status} $r->{content}"
    unless $r->{status} == 401 && $r->{content} =~ /invalid_refresh_token/;
my $sid = main::sid_of("bob4");
main::dyn($block, bearer => "bob",
    like => qr/^\{"items":\[(?!.*$sid).*"device":"bob".*\]\}$/);
--- request
GET /api/auth/sessions
--- response_body_like: placeholder
--- error_code: 200



=== TEST 23: an access token whose own id is revoked is refused while its session lives
--- init
# the token's jti alone, by hand: the session's cache says nothing
my ($c) = JSON::PP::decode_json(MIME::Base64::decode_base64url(
              (split /\./, $main::Tok{bob}{accessToken})[1]));
system("redis-cli", "-p", $ENV{TEST_NGINX_REDIS_PORT}, "SET",
       "jti:{$c->{sid}}:$c->{jti}", "1", "EX", "60") == 0 or die "redis-cli";
my $uid = `redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} HGET 'sess:{$c->{sid}}' uid`;
my $rev = `redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} HEXISTS 'sess:{$c->{sid}}' revoked`;
die "bob's session: uid '$uid' revoked '$rev'" unless $uid =~ /^[0-9a-f]{24}$/
                                                    && $rev =~ /^0/;
main::dyn($block, bearer => "bob");
--- request
GET /api/auth/sessions
--- response_body_like: "message":"the token was revoked"
--- error_code: 401
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 24: a token whose session Redis holds for another user is refused; the same token works once that is undone
--- init
my ($c) = JSON::PP::decode_json(MIME::Base64::decode_base64url(
              (split /\./, $main::Tok{bob}{accessToken})[1]));
my $rc = sub { my $o = `redis-cli -p $ENV{TEST_NGINX_REDIS_PORT} @_`; chomp $o; $o };
$rc->("DEL", "'jti:{$c->{sid}}:$c->{jti}'");
my $uid = $rc->("HGET", "'sess:{$c->{sid}}'", "uid");
$rc->("HSET", "'sess:{$c->{sid}}'", "uid", "0123456789abcdef01234567");
my $r = HTTP::Tiny->new->get(
    "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth/sessions",
    { headers => { Authorization => "Bearer $main::Tok{bob}{accessToken}" } });
die "another user's session: $r->{status} $r->{content}"
    unless $r->{status} == 401 && $r->{content} =~ /the token was revoked/;
$rc->("HSET", "'sess:{$c->{sid}}'", "uid", $uid);
main::dyn($block, bearer => "bob",
    like => qr/^\{"items":\[.*"device":"bob".*\]\}$/);
--- request
GET /api/auth/sessions
--- response_body_like: placeholder
--- error_code: 200
--- no_error_log
[error]
[alert]
[emerg]

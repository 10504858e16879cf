# SMS delivery through POST /api/auth/send-otp: Twilio's Messages API
# against a fake Twilio (t/lib/FakeHTTP.pm) that logs what it got, and the
# development "log" provider.
#
# Provider results map to: SENT -> 200, REJECTED (Twilio 4xx) -> 502
# sms_rejected, UNAVAILABLE (5xx, timeout, no connection) -> 503
# sms_unavailable.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use FakeHTTP;
use List::Util qw(shuffle);
use MIME::Base64 qw(encode_base64);

our $Fake = FakeHTTP->new;
$ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Fake->port;

# each number has its own resend limits: one per block, fresh for each run
# so that a rerun against the same Redis is not held back by the last one
our @Numbers = shuffle(100 .. 199);
our %Phone = map { $_ => sprintf("+1415555%04d", shift @Numbers) }
             qw(ok rejected failed slow refused service logged left throttled);

our $TwilioOK = '{"sid":"SM0123456789abcdef0123456789abcdef",'
                . '"status":"queued","error_code":null}';

sub sms_http_config {
    my ($block) = @_;

    my $provider = $block->sms_provider // 'twilio';
    my $url = $block->twilio_url
              // 'http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT';
    my $from = $block->twilio_from // '+15005550006';

    return ChatTest::chat_http_config() . qq{
    chat_sms_provider $provider;
    chat_twilio_base_url $url;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from $from;
    chat_otp_ip_limit 1000;
    chat_upstream_timeout 1s;
};
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config", sms_http_config($block))
        unless defined $block->http_config;

    $block->set_value("config", "    location /api/ { chat_api; }\n")
        unless defined $block->config;

    if (defined $block->phone) {
        my $phone = $Phone{$block->phone} // die "no phone " . $block->phone;

        $block->set_value("request", "POST /api/auth/send-otp\n"
                          . qq{{"phone":"$phone"}});
        $block->set_value("more_headers", "Content-Type: application/json")
            unless defined $block->more_headers;
    }

    # what the fake Twilio answers to this block's request
    if (defined $block->fake_status) {
        $Fake->set_reply($block->fake_status, $block->fake_body // '',
                         delay => $block->fake_delay // 0);
    }
});

no_shuffle();
run_tests();

# what the fake Twilio got, per number

sub twilio_requests_to {
    my ($to) = @_;
    return grep {
        my %f = FakeHTTP::parse_form($_->{body});
        ($f{To} // '') eq $to;
    } $Fake->requests;
}

my ($req) = twilio_requests_to($Phone{ok});
my %form = FakeHTTP::parse_form($req ? $req->{body} : '');

is(scalar(() = twilio_requests_to($Phone{ok})), 1,
   "Twilio got one request for the number");
is($req->{method}, 'POST', "a POST");
is($req->{path}, '/2010-04-01/Accounts/ACtest/Messages.json',
   "to the account's Messages resource");
is($req->{headers}{authorization},
   'Basic ' . encode_base64('ACtest:secret', ''),
   "with basic auth: account SID and auth token");
like($req->{headers}{'content-type'} // '',
     qr{^application/x-www-form-urlencoded\b}, "a form");
is($form{To}, $Phone{ok}, "To is the number");
is($form{From}, '+15005550006', "From is chat_twilio_from");
ok(!exists $form{MessagingServiceSid}, "no MessagingServiceSid with a number");
like($form{Body} // '',
     qr/^\d{6} is your verification code\. It expires in 5 minutes\.$/,
     "Body is the code and its lifetime");

is(scalar(() = twilio_requests_to($Phone{rejected})), 1,
   "the rejected message was sent once, not retried");

my ($svc) = twilio_requests_to($Phone{service});
my %sform = FakeHTTP::parse_form($svc ? $svc->{body} : '');
is($sform{MessagingServiceSid}, 'MG0123456789abcdef0123456789abcdef',
   "an MG... sender goes as MessagingServiceSid");
ok(!exists $sform{From}, "and not as From");

is(scalar(() = twilio_requests_to($Phone{logged})), 0,
   "the log provider calls no one");

$Fake->stop;

__DATA__

=== TEST 1: Twilio accepts the message: 200 with the number and timings
--- phone: ok
--- fake_status: 201
--- fake_body eval: $::TwilioOK
--- response_body_like eval
qr/^(?=.*"success":true)(?=.*"phone":"\Q$::Phone{ok}\E")(?=.*"expiresIn":300\b)(?=.*"retryAfter":\d+)\{.*\}$/
--- error_code: 200
--- no_error_log eval
["[error]", "[alert]", "[emerg]", qr/is your verification code/]



=== TEST 2: Twilio refuses the number: 502 sms_rejected, logged masked
--- phone: rejected
--- fake_status: 400
--- fake_body: {"code":21211,"message":"Invalid 'To' Phone Number","more_info":"https://www.twilio.com/docs/errors/21211","status":400}
--- response_body_like: ^\{"error":\{"code":"sms_rejected","message":"[^"]+"\}\}$
--- error_code: 502
--- error_log eval
qr/\[error\] .*chat sms: twilio refused the message to \+\*{7}\d{4}: 21211 Invalid 'To' Phone Number/
--- no_error_log eval
["[alert]", "[emerg]", qr/is your verification code/]



=== TEST 3: Twilio fails with 500: 503 sms_unavailable
--- phone: failed
--- fake_status: 500
--- fake_body: {"code":20500,"message":"Internal Server Error","status":500}
--- response_body_like: ^\{"error":\{"code":"sms_unavailable","message":"[^"]+"\}\}$
--- error_code: 503
--- error_log eval
qr/\[error\] .*chat sms: twilio failed on the message to \+\*{7}\d{4}: 20500 /
--- no_error_log
[alert]
[emerg]



=== TEST 4: Twilio throttles our account (429): 503, not the number's fault
--- phone: throttled
--- fake_status: 429
--- fake_body: {"code":20429,"message":"Too Many Requests","status":429}
--- response_body_like: ^\{"error":\{"code":"sms_unavailable","message":"[^"]+"\}\}$
--- error_code: 503
--- error_log eval
qr/\[error\] .*chat sms: twilio failed on the message to \+\*{7}\d{4}: 20429 /
--- no_error_log
[alert]
[emerg]



=== TEST 5: Twilio answers after chat_upstream_timeout: 503 in time
--- phone: slow
--- fake_status: 201
--- fake_body eval: $::TwilioOK
--- fake_delay: 3
--- timeout: 5
--- response_body_like: ^\{"error":\{"code":"sms_unavailable","message":"[^"]+"\}\}$
--- error_code: 503
--- error_log eval
qr/\[error\] .*chat sms: twilio unreachable, the message to \+\*{7}\d{4} was not sent: .*[Tt]imed? ?out/
--- no_error_log
[alert]
[emerg]



=== TEST 6: nothing listens where Twilio should be: 503
--- phone: refused
--- twilio_url: http://127.0.0.1:1
--- response_body_like: ^\{"error":\{"code":"sms_unavailable","message":"[^"]+"\}\}$
--- error_code: 503
--- error_log eval
qr/\[error\] .*chat sms: twilio unreachable, the message to \+\*{7}\d{4} was not sent/
--- no_error_log
[alert]
[emerg]



=== TEST 7: a Messaging Service SID as sender
--- phone: service
--- twilio_from: MG0123456789abcdef0123456789abcdef
--- fake_status: 201
--- fake_body eval: $::TwilioOK
--- response_body_like: "success":true
--- error_code: 200



=== TEST 8: the log provider writes the message to the error log
--- phone: logged
--- sms_provider: log
--- response_body_like: "success":true
--- error_code: 200
--- error_log eval
qr/\[notice\] .*chat sms: to \Q$::Phone{logged}\E: \d{6} is your verification code\. It expires in 5 minutes\./
--- no_error_log
[error]
[alert]
[emerg]



=== TEST 9: the client leaves while Twilio is slow: the send is cancelled
--- phone: left
--- fake_status: 201
--- fake_body eval: $::TwilioOK
--- fake_delay: 2
--- timeout: 0.3
--- abort
--- ignore_response
--- no_error_log
[alert]
[emerg]

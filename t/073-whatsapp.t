# One-time codes over WhatsApp: POST /api/auth/send-otp with
# "channel":"whatsapp" goes through Twilio's Messages API with whatsapp:
# addresses, as a content template (ContentSid, ContentVariables) when
# one is configured, else as a Body.  A fake Twilio (t/lib/FakeHTTP.pm)
# records the form; the code it got signs the user in through verify-otp.
# The number's limits are the same whichever channel carries its code;
# unknown channels, and WhatsApp where no sender is configured, are 400;
# bad directive values stop nginx -t.

use Test::Nginx::Socket 'no_plan';
use ChatTest;
use FakeHTTP;
use JSON::PP qw(encode_json decode_json);

our $Twilio = FakeHTTP->new;
$Twilio->set_reply(201, '{"sid":"SM00000000000000000000000000000000",'
                        . '"status":"queued"}');
$ENV{TEST_NGINX_FAKE_TWILIO_PORT} = $Twilio->port;

our $Template = 'HX' . ('0123456789abcdef' x 2);
our $Sender = '+14155238886';

# numbers of this run only: FerretDB keeps users between runs
our $Run = $$ % 10000;
our %Phone = map { $_->[0] => sprintf("+1628730%04d", ($Run + $_->[1]) % 10000) }
             [template => 0], [body => 1], [shared => 2], [logged => 3],
             [service => 4];

our %Got;    # the form the fake Twilio got, per kind of number

sub form_to {
    my ($to) = @_;
    my %form;
    for my $req ($Twilio->requests) {
        my %f = FakeHTTP::parse_form($req->{body});
        %form = %f if ($f{To} // '') eq $to;
    }
    return \%form;
}

sub send_otp {
    my ($who, %more) = @_;
    return "POST /api/auth/send-otp\n"
           . encode_json({ phone => $Phone{$who}, %more });
}

sub wa_config {
    my (%o) = @_;
    my $c = ChatTest::chat_http_config() . q{
    chat_sms_provider twilio;
    chat_twilio_base_url http://127.0.0.1:$TEST_NGINX_FAKE_TWILIO_PORT;
    chat_twilio_account_sid ACtest;
    chat_twilio_auth_token secret;
    chat_twilio_from +15005550006;
    chat_otp_ip_limit 1000;
};
    $c .= "    chat_twilio_whatsapp_from $o{from};\n" if $o{from};
    $c .= "    chat_twilio_whatsapp_content_sid $o{sid};\n" if $o{sid};
    return $c;
}

add_block_preprocessor(sub {
    my $block = shift;

    $block->set_value("http_config",
                      wa_config(from => $Sender, sid => $Template))
        unless defined $block->http_config;

    $block->set_value("config", "    location /api/ { chat_api; }\n")
        unless defined $block->config;

    $block->set_value("more_headers", "Content-Type: application/json")
        unless defined $block->more_headers;
});

$ENV{TEST_NGINX_SERVER_PORT} ||= $ENV{TEST_NGINX_PORT} || 1984;

no_shuffle();
run_tests();

my $t = form_to("whatsapp:$Phone{template}");
is($t->{From}, "whatsapp:$Sender", "template: From is the WhatsApp sender");
is($t->{ContentSid}, $Template, "template: ContentSid is the template");
like($t->{ContentVariables} // '', qr/^\{"1":"\d{6}"\}$/,
     "template: the code is its variable 1");
ok(!exists $t->{Body}, "template: no Body");

my $b = form_to("whatsapp:$Phone{body}");
is($b->{From}, "whatsapp:$Sender", "body: From is the WhatsApp sender");
like($b->{Body} // '',
     qr/^\d{6} is your verification code\. It expires in 5 minutes\.$/,
     "body: without a template the code goes as the SMS text");
ok(!exists $b->{ContentSid}, "body: no ContentSid");

my $s = form_to("whatsapp:$Phone{service}");
is($s->{MessagingServiceSid}, 'MG' . ('0123456789abcdef' x 2),
   "service: an MG... sender goes as MessagingServiceSid");
ok(!exists $s->{From}, "service: and not as From");

is(scalar(grep { my %f = FakeHTTP::parse_form($_->{body});
                 ($f{To} // '') =~ /^(?:whatsapp:)?\Q$Phone{shared}\E$/ }
           $Twilio->requests), 1,
   "shared limits: one message only, by SMS, to the number");
is(form_to($Phone{shared})->{From}, '+15005550006',
   "shared limits: the SMS went from the SMS sender");
is(scalar(() = grep { ($_->{body} // '') =~ /\Q$Phone{logged}\E/ }
                    $Twilio->requests),
   0, "the log provider calls no one");

$Twilio->stop;

__DATA__

=== TEST 1: WhatsApp with a content template: 200, the channel in the answer
--- request eval
main::send_otp("template", channel => "whatsapp")
--- response_body_like eval
qr/^\{"success":true,"phone":"\Q$main::Phone{template}\E","channel":"whatsapp","expiresIn":300,"retryAfter":\d+\}$/
--- error_code: 200



=== TEST 2: the code of the template's variable signs the user in
--- init
my ($code) = (main::form_to("whatsapp:$main::Phone{template}")
              ->{ContentVariables} // '') =~ /(\d{6})/;
$block->set_value("request", "POST /api/auth/verify-otp\n"
    . JSON::PP::encode_json({ phone => $main::Phone{template},
                              code => $code // "none", device => "wa" }));
--- request
GET /placeholder
--- response_body_like: ^\{"user":\{"id":"[0-9a-f]{24}".*"accessToken":"[\w-]+\.[\w-]+\.[\w-]+"
--- error_code: 200



=== TEST 3: the number's resend delay holds across channels: an SMS first
--- request eval
main::send_otp("shared")
--- response_body_like: "channel":"sms"
--- error_code: 200



=== TEST 4: then WhatsApp to the same number is held back like a resend
--- request eval
main::send_otp("shared", channel => "whatsapp")
--- response_body_like: ^\{"error":\{"code":"rate_limited","message":"[^"]+","details":\{"retryAfter":\d+\}\}\}$
--- response_headers_like
Retry-After: \d+
--- error_code: 429



=== TEST 5: an unknown channel is refused, the field named
--- request eval
main::send_otp("body", channel => "telegram")
--- response_body
{"error":{"code":"invalid_request","message":"channel must be \"sms\" or \"whatsapp\"","details":{"field":"channel"}}}
--- error_code: 400



=== TEST 6: a channel that is not a string is refused
--- request eval
main::send_otp("body", channel => 1)
--- response_body
{"error":{"code":"invalid_request","message":"channel must be a string","details":{"field":"channel"}}}
--- error_code: 400



=== TEST 7: an empty channel is refused
--- request eval
main::send_otp("body", channel => "")
--- response_body_like: "code":"invalid_request".*"details":\{"field":"channel"\}
--- error_code: 400



=== TEST 8: without a template the code goes as a Body
--- http_config eval
main::wa_config(from => $main::Sender)
--- request eval
main::send_otp("body", channel => "whatsapp")
--- response_body_like: "channel":"whatsapp"
--- error_code: 200



=== TEST 9: a Messaging Service as the WhatsApp sender
--- http_config eval
main::wa_config(from => 'MG' . ('0123456789abcdef' x 2))
--- request eval
main::send_otp("service", channel => "whatsapp")
--- response_body_like: "channel":"whatsapp"
--- error_code: 200



=== TEST 10: no WhatsApp sender configured: 400 channel_unavailable, SMS offered
--- http_config eval
main::wa_config()
--- request eval
main::send_otp("body", channel => "whatsapp")
--- response_body
{"error":{"code":"channel_unavailable","message":"one-time codes are not sent over WhatsApp here, use \"sms\"","details":{"field":"channel","channels":["sms"]}}}
--- error_code: 400



=== TEST 11: the log provider writes the WhatsApp message to the error log
--- http_config eval
ChatTest::chat_http_config() . qq{
    chat_sms_provider log;
    chat_otp_ip_limit 1000000;
    chat_twilio_whatsapp_from $main::Sender;
}
--- request eval
main::send_otp("logged", channel => "whatsapp")
--- response_body_like: "channel":"whatsapp"
--- error_code: 200
--- error_log eval
qr/\[notice\] .*chat whatsapp: to \Q$main::Phone{logged}\E: \d{6} is your verification code/



=== TEST 12: nginx -t: a WhatsApp sender given with its "whatsapp:" prefix
--- http_config eval
main::wa_config(from => "whatsapp:$main::Sender")
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_twilio_whatsapp_from" must be an E\.164 number/



=== TEST 13: nginx -t: a content SID that is not a template's
--- http_config eval
main::wa_config(from => $main::Sender, sid => "MG0123")
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_twilio_whatsapp_content_sid" must be a Content Template SID/



=== TEST 14: nginx -t: a template without a WhatsApp sender
--- http_config eval
main::wa_config(sid => $main::Template)
--- must_die
--- error_log eval
qr/\[emerg\] .*"chat_twilio_whatsapp_content_sid" requires "chat_twilio_whatsapp_from"/

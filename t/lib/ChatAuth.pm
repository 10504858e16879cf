package ChatAuth;

# Signs a user in over HTTP, for tests that need a token before their own
# request: send-otp, the code as the fake Twilio got it (or as another
# source gives it), verify-otp.

use strict;
use warnings;

use FakeHTTP;
use HTTP::Tiny;
use JSON::PP qw(encode_json decode_json);

# the code that a fake Twilio was last asked to send to a number, by SMS
# or WhatsApp (as its text, or as the template's variable)
sub code_for {
    my ($twilio, $phone) = @_;
    my $code;
    for my $req ($twilio->requests) {
        my %form = FakeHTTP::parse_form($req->{body});
        next unless ($form{To} // '') =~ /^(?:whatsapp:)?\Q$phone\E$/;
        ($code) = ($form{Body} // '') =~ /^(\d{6}) is your verification code/;
        ($code) = ($form{ContentVariables} // '') =~ /^\{"1":"(\d{6})"\}$/
            unless defined $code;
    }
    return $code // 'none';
}

# $source: a fake Twilio, or sub { my ($phone) = @_; ...; return $code }
# %opt: channel ("sms", "whatsapp")
# -> the verify-otp answer as a hash: accessToken, refreshToken, user...
sub sign_in {
    my ($source, $phone, $device, %opt) = @_;

    my $http = HTTP::Tiny->new;
    my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth";
    my %h = (headers => { 'Content-Type' => 'application/json' });

    my $r = $http->post("$base/send-otp", { %h,
        content => encode_json({ phone => $phone,
            (defined $opt{channel} ? (channel => $opt{channel}) : ()) }) });
    die "send-otp: $r->{status} $r->{content}" unless $r->{success};

    my $code = ref $source eq 'CODE' ? $source->($phone)
                                     : code_for($source, $phone);

    $r = $http->post("$base/verify-otp", { %h,
        content => encode_json({ phone => $phone, code => $code,
                                 device => $device // 'test' }) });
    die "verify-otp: $r->{status} $r->{content}" unless $r->{success};

    return decode_json($r->{content});
}

1;

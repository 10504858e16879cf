package ChatAuth;

# Signs a user in over HTTP, for tests that need a token before their own
# request: send-otp, the code as the fake Twilio got it, verify-otp.

use strict;
use warnings;

use FakeHTTP;
use HTTP::Tiny;
use JSON::PP qw(encode_json decode_json);

# the code that a fake Twilio was last asked to send to a number
sub code_for {
    my ($twilio, $phone) = @_;
    my $code;
    for my $req ($twilio->requests) {
        my %form = FakeHTTP::parse_form($req->{body});
        next unless ($form{To} // '') eq $phone;
        ($code) = ($form{Body} // '') =~ /^(\d{6}) is your verification code/;
    }
    return $code // 'none';
}

# -> the verify-otp answer as a hash: accessToken, refreshToken, user...
sub sign_in {
    my ($twilio, $phone, $device) = @_;

    my $http = HTTP::Tiny->new;
    my $base = "http://127.0.0.1:$ENV{TEST_NGINX_SERVER_PORT}/api/auth";
    my %h = (headers => { 'Content-Type' => 'application/json' });

    my $r = $http->post("$base/send-otp", { %h,
        content => encode_json({ phone => $phone }) });
    die "send-otp: $r->{status} $r->{content}" unless $r->{success};

    $r = $http->post("$base/verify-otp", { %h,
        content => encode_json({ phone => $phone,
                                 code => code_for($twilio, $phone),
                                 device => $device // 'test' }) });
    die "verify-otp: $r->{status} $r->{content}" unless $r->{success};

    return decode_json($r->{content});
}

1;

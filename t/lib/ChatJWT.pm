package ChatJWT;

# Forges compact JWTs for tests, in pure Perl.
#
#   ChatJWT::hs256($secret, \%header, \%claims)  HMAC-SHA256 token; the
#       header defaults to {alg => 'HS256', typ => 'JWT'}, keys of \%header
#       override (e.g. alg => 'RS256' for algorithm confusion) and a key
#       set to undef is left out; \%header may be undef
#   ChatJWT::none(\%claims)      {"alg":"none","typ":"JWT"}, no signature
#   ChatJWT::tamper($token)      the same token with one character of the
#       payload flipped (the last of "sub" if there is one, else of the
#       first string value): still valid JSON, so only the signature fails
#
# JSON is canonical (sorted keys).  Numbers must be Perl numbers (time() +
# 60), not strings, to come out as JSON numbers.

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256);
use JSON::PP;
use MIME::Base64 qw(encode_base64url decode_base64url);

my $json = JSON::PP->new->canonical->utf8;

sub _segment {
    my ($data) = @_;
    return encode_base64url($json->encode($data));
}

sub hs256 {
    my ($secret, $header, $claims) = @_;

    my %h = (alg => 'HS256', typ => 'JWT', %{ $header || {} });
    delete $h{$_} for grep { !defined $h{$_} } keys %h;

    my $input = _segment(\%h) . '.' . _segment($claims || {});

    return $input . '.' . encode_base64url(hmac_sha256($input, $secret));
}

sub none {
    my ($claims) = @_;

    return _segment({ alg => 'none', typ => 'JWT' }) . '.'
           . _segment($claims || {}) . '.';
}

sub tamper {
    my ($token) = @_;

    my ($head, $payload, $sig) = split /\./, $token, -1;
    die "tamper: not a compact JWT\n" unless defined $sig;

    my $text = decode_base64url($payload);
    my $flip = sub { $_[0] eq 'a' ? 'b' : 'a' };

    $text =~ s/("sub"\s*:\s*"[^"\\]*)([^"\\])"/$1 . $flip->($2) . '"'/e
        or $text =~ s/(:\s*"[^"\\]*)([^"\\])"/$1 . $flip->($2) . '"'/e
        or $text =~ s/^\s*\{\s*\}\s*$/{"tampered":1}/
        or $text =~ s/\}\s*$/,"tampered":1}/
        or die "tamper: payload is not a JSON object\n";

    return join '.', $head, encode_base64url($text), $sig;
}

1;
